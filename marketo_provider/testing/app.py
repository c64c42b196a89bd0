"""The sandbox's HTTP face: Marketo's documented calls routed over a :class:`MarketoBackend`.

:class:`SandboxApp` routes on the path table in ``spec.py`` (the spec's own path templates),
checks the token a call carries and answers it: the identity call and the checking of credentials
in ``credentials.py``, the create import calls in ``upload.py``, describe, a batch's status and its
result files here. :func:`create_app` puts :class:`~marketo_provider.testing.asgi.SandboxASGI` in
front of it (the call record, faults, body and instance-wide limits). The rules live in the
backend's rooms. Calls that may move the queue on (and so check a finished job's rows) run in a
worker thread, so the event loop keeps answering other calls meanwhile, as Marketo does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from marketo_provider.testing import spec
from marketo_provider.testing.asgi import Receive, SandboxASGI, Scope, Send
from marketo_provider.testing.backend import MarketoBackend
from marketo_provider.testing.credentials import authorize, token_request
from marketo_provider.testing.envelope import envelope_error, envelope_ok
from marketo_provider.testing.errors import HTTPError, SandboxError
from marketo_provider.testing.parameters import check_query, path_int, path_pattern
from marketo_provider.testing.spec import ObjectType, Route
from marketo_provider.testing.upload import create_request


@dataclass(frozen=True)
class _CompiledRoute:
    route: Route
    pattern: re.Pattern[str]


def _compile(route: Route) -> _CompiledRoute:
    return _CompiledRoute(route, path_pattern(route.path))


class SandboxApp:
    """Routes a request to the documented operation it names and parses its parameters."""

    def __init__(self, backend: MarketoBackend) -> None:
        self.backend = backend
        self.routes = [_compile(r) for r in spec.ROUTES]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = await self.answer(request)
        await response(scope, receive, send)

    async def answer(self, request: Request) -> Response:
        try:
            return await self.dispatch(request)
        except SandboxError as exc:
            call = request.scope.get("marketo_call")
            if call is not None:
                call.error_code = exc.code
            return JSONResponse(envelope_error(exc.code, exc.message))
        except HTTPError as exc:
            if isinstance(exc.body, dict):
                return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)
            return Response(exc.body, status_code=exc.status, media_type="text/html", headers=exc.headers)

    def route_for(self, method: str, path: str) -> Route | None:
        """The documented operation a method and path name, or None."""
        return next(
            (c.route for c in self.routes if c.route.method == method and c.pattern.match(path)), None
        )

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """The documented operation of a call; 610 for a path Marketo does not have, 605 for a
        method the path does not take (the error codes page: "the URI did not match a resource
        type" and "HTTP Method not supported")."""
        found = [(c.route, m.groupdict()) for c in self.routes if (m := c.pattern.match(path))]
        if not found:
            raise SandboxError("610")
        for route, params in found:
            if route.method == method:
                return route, params
        raise SandboxError("605", f"{method} is not supported for {path}")

    async def dispatch(self, request: Request) -> Response:
        route, path_params = self.match(request.method, request.url.path)
        if route.operation == "token":
            return await token_request(self.backend, request)
        assert route.object_type is not None
        await authorize(self.backend, request)
        if route.operation == "create":
            return await create_request(self.backend, request, route.object_type, path_params)
        check_query(request.query_params.multi_items(), ())  # the other calls document none
        if route.operation == "describe":
            answer = self.backend.describe(route.object_type, path_params.get("customObjectName"))
            return JSONResponse(envelope_ok([answer]))
        batch_id = path_int("batchId", path_params["batchId"])
        name = path_params.get("apiName")
        if route.operation == "status":
            entry = await run_in_threadpool(self.backend.status, route.object_type, batch_id, name)
            return JSONResponse(envelope_ok([entry]))
        data = await run_in_threadpool(
            self.backend.result_file, route.object_type, batch_id, route.operation, name
        )
        if data is None and route.object_type is ObjectType.CUSTOM_OBJECTS:
            return Response(status_code=404)  # custom objects answer 404 when there is no file
        return Response(data or b"", media_type=spec.RESULT_FILE_CONTENT_TYPE)


def create_app(backend: MarketoBackend) -> SandboxASGI:
    """The sandbox's ASGI application."""
    return SandboxASGI(SandboxApp(backend), backend)


__all__ = ["SandboxApp", "create_app"]
