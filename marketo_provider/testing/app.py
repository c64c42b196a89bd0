"""The sandbox's HTTP face: routing and parsing of Marketo's documented calls over a :class:`MarketoBackend`.

:class:`SandboxApp` routes on the path table in ``spec.py`` (the spec's own path templates) and
turns each request into a call on the backend; :class:`SandboxASGI` around it records every call,
applies injected faults and the instance-wide limits. The rules live in the backend's rooms.
Calls that may move the queue on (and so check a finished job's rows) run in a worker thread, so
the event loop keeps answering other calls meanwhile, as Marketo does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from marketo_provider.testing import spec
from marketo_provider.testing.backend import MarketoBackend
from marketo_provider.testing.errors import TOO_LARGE_PAGE, BodyTooLarge, HTTPError, SandboxError
from marketo_provider.testing.faults import SECRET_PARAMETERS, CallRecord, Fault
from marketo_provider.testing.inspection import SANDBOX_API_PREFIX, SandboxAPI
from marketo_provider.testing.parameters import check_query, path_int
from marketo_provider.testing.spec import ImportTarget, ObjectType, Route

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# Form fields parsed from a multipart body other than the file itself are small; a bigger one is
# not a parameter anyone documents.
_MAX_FIELD_BYTES = 1024 * 1024


def _request_id() -> str:
    return f"{uuid.uuid4().hex[:4]}#{uuid.uuid4().hex[:11]}"


def envelope_ok(result: list[dict[str, Any]]) -> dict[str, Any]:
    return {"requestId": _request_id(), "result": result, "success": True}


def envelope_error(code: str, message: str) -> dict[str, Any]:
    return {"requestId": _request_id(), "success": False, "errors": [{"code": str(code), "message": message}]}


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


@dataclass(frozen=True)
class _CompiledRoute:
    route: Route
    pattern: re.Pattern[str]


def _compile(route: Route) -> _CompiledRoute:
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(route.path))
    return _CompiledRoute(route, re.compile(f"^{regex}$"))


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
            return await self.token(request)
        assert route.object_type is not None
        await self.authorize(request)
        if route.operation == "create":
            return await self.create(request, route.object_type, path_params)
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

    async def authorize(self, request: Request, body_keys: set[str] | None = None) -> None:
        # The access_token parameter was withdrawn: a token anywhere but the header is refused.
        if "access_token" in request.query_params or "access_token" in (body_keys or set()):
            raise SandboxError("601")
        self.backend.check_token(_bearer(request))

    # ---- identity ---------------------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        # Adobe documents client_id, client_secret and grant_type in the query string only, for
        # GET and POST alike; a form body is not read, so credentials sent there are missing
        # credentials (401), and the answer says where they belong.
        pairs = request.query_params.multi_items()
        names = [name for name, _ in pairs]
        repeated = sorted({n for n in names if n in spec.IDENTITY_PARAMETERS and names.count(n) > 1})
        if repeated:  # OAuth 2.0: a parameter must not be given more than once
            raise HTTPError(
                400, {"error": "invalid_request", "error_description": f"repeated: {', '.join(repeated)}"}
            )
        # Other query parameters are ignored, as OAuth 2.0 asks of a token endpoint.
        query = dict(pairs)
        client_id, client_secret = query.get("client_id"), query.get("client_secret")
        if not (client_id and client_secret):
            body_keys = await _body_keys(request)
            _note_body_secrets(request, body_keys)
            in_body = sorted(set(spec.IDENTITY_PARAMETERS) & body_keys)
            where = f"; {', '.join(in_body)} sent in the request body, which is not read" if in_body else ""
            raise HTTPError(
                401,
                {
                    "error": "invalid_client",
                    "error_description": "client_id and client_secret are required in the query string"
                    + where,
                },
            )
        answer = self.backend.issue_token(client_id, client_secret, query.get("grant_type"))
        return JSONResponse(answer)

    # ---- create import ----------------------------------------------------------------------

    async def create(self, request: Request, kind: ObjectType, path_params: dict[str, str]) -> Response:
        target = _target(kind, path_params)
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise SandboxError("612")
        try:
            form = await request.form(max_part_size=_MAX_FIELD_BYTES)
        except HTTPError:
            raise  # the body passed its limit as it streamed in
        except Exception:
            raise SandboxError("613") from None
        try:
            return await self._create_from_form(request, target, form)
        finally:
            await form.close()  # spooled upload files

    async def _create_from_form(self, request: Request, target: ImportTarget, form: FormData) -> Response:
        kind = target.object_type
        names = [name for name, _ in form.multi_items()]
        _note_body_secrets(request, names)
        await self.authorize(request, set(names))
        # The spec's one form part is the file; parameters belong in the query string (the
        # curl examples that send them as form fields do not follow the spec), so any other part
        # is refused rather than read.
        others = sorted({n for n in names if n != spec.FILE_PART})
        if others:
            raise SandboxError(
                "1003",
                f"Unknown multipart field(s): {', '.join(others)}; send parameters in the query string "
                f"and the file as the one part named '{spec.FILE_PART}'",
            )
        if names.count(spec.FILE_PART) > 1:
            raise SandboxError("1003", f"More than one '{spec.FILE_PART}' part")
        upload = form.get(spec.FILE_PART)
        if not isinstance(upload, UploadFile):
            raise SandboxError("1003", f"File is required: send it as the multipart field '{spec.FILE_PART}'")
        if not upload.filename:
            # The spec's "type": "file" part is a file upload, which carries a filename; a bare
            # form value is not one. The part's own content type is not documented: any is taken.
            raise SandboxError("1003", f"The '{spec.FILE_PART}' part has no filename")
        params = check_query(request.query_params.multi_items(), spec.CREATE_PARAMETERS[kind])
        size = upload.size if upload.size is not None else len(await upload.read())
        call = request.scope.get("marketo_call")
        if call is not None:
            call.upload_bytes, call.content_type = size, upload.content_type
        if size > self.backend.config.max_file_bytes:
            raise HTTPError(413, TOO_LARGE_PAGE)
        await upload.seek(0)
        content = await upload.read()
        job = await run_in_threadpool(self.backend.create_import, target, params, content, upload.filename)
        if call is not None:
            call.batch_id = job.batch_id
        return JSONResponse(envelope_ok([job.create_entry()]))


def _target(kind: ObjectType, path_params: dict[str, str]) -> ImportTarget:
    if kind is ObjectType.PROGRAM_MEMBERS:
        # The spec types programId as a string; it is a program's id all the same, so a value
        # that is not a whole number is refused (1003) rather than looked up.
        return ImportTarget(kind, program_id=path_int("programId", path_params["programId"]))
    return ImportTarget(kind, custom_object_name=path_params.get("apiName"))


def _note_body_secrets(request: Request, names: Iterable[str]) -> None:
    """Complete the call record with secrets found in a multipart body (the recording layer
    reads only urlencoded bodies itself)."""
    call = request.scope.get("marketo_call")
    if call is not None:
        found = {n for n in names if n in SECRET_PARAMETERS}
        call.secrets_in_body = sorted(found | set(call.secrets_in_body))


async def _body_keys(request: Request) -> set[str]:
    """The parameter names of a form body (urlencoded or multipart), to say they were not read."""
    content_type = request.headers.get("content-type", "")
    if request.method != "POST" or not content_type.startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        return set()
    try:
        form = await request.form()
    except HTTPError:
        raise  # the body passed its limit as it streamed in
    except Exception:
        return set()
    names = {name for name, _ in form.multi_items()}
    await form.close()
    return names


def create_app(backend: MarketoBackend) -> SandboxASGI:
    """The sandbox's ASGI application."""
    return SandboxASGI(SandboxApp(backend), backend)


class SandboxASGI:
    """Refuses a body over its limit unread; serves the sandbox's own paths (``/sandbox-api/``);
    records each Marketo call, applies faults and the instance-wide limits, then lets the app answer."""

    def __init__(self, app: SandboxApp, backend: MarketoBackend) -> None:
        self.app = app
        self.backend = backend
        self.sandbox_api = SandboxAPI(backend)

    @property
    def routes(self) -> list[tuple[str, str]]:
        """``(method, path template)`` of every Marketo call the sandbox serves."""
        return [(c.route.method, c.route.path) for c in self.app.routes]

    @property
    def sandbox_routes(self) -> list[tuple[str, str]]:
        """``(method, path template)`` of the sandbox's own paths, which are not Marketo's."""
        return list(self.sandbox_api.routes)

    def body_limit(self, method: str, path: str) -> int:
        """The most bytes a request body may have: an upload's file limit and its multipart
        framing on the create calls, a small limit on every other path."""
        route = self.app.route_for(method, path)
        if route is not None and route.operation == "create":
            return self.backend.config.max_file_bytes + spec.MULTIPART_FRAMING_BYTES
        return self.backend.config.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # no lifespan or websockets: the server runs with lifespan="off"
        method, path = scope["method"], scope["path"]
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        bearer = headers.get("authorization", "").lower().startswith("bearer ")
        own = path.startswith(SANDBOX_API_PREFIX) or path == SANDBOX_API_PREFIX.rstrip("/")
        # Refuse an oversized body by its Content-Length before reading any of it; a body without
        # one (chunked) is counted as it streams and refused as soon as it passes the limit.
        limit = self.body_limit(method, path)
        declared = headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > limit:
            if not own:
                self.backend.record(method, path, query, (), bearer).status = 413
            await _send_too_large(send)
            return
        # An answer given before the whole body is read (a refusal by the headers alone, such as
        # 601) closes the connection, so the server does not go on draining what the client sends.
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        expects_body = chunked or (declared.isdigit() and int(declared) > 0)
        request_body = _Body(receive, limit, expects_body)
        receive, answer = request_body.receive, request_body.closing(send)
        if own:
            await self.sandbox_api(scope, receive, answer)
            return
        body_keys: set[str] = set()
        if method == "POST" and "x-www-form-urlencoded" in headers.get("content-type", ""):
            try:
                body = await _read_body(receive)
            except BodyTooLarge:
                self.backend.record(method, path, query, (), bearer).status = 413
                await _send_too_large(answer)
                return
            body_keys = {k for k, _ in parse_qsl(body.decode("latin-1"), keep_blank_values=True)}
            receive = _replay(body)
        call = self.backend.record(method, path, query, body_keys, bearer)
        scope["marketo_call"] = call

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                call.status = message["status"]
            await answer(message)

        fault = self.backend.take_fault(method, path)
        if fault is not None:
            call.fault = fault.label
            if fault.answers_instead:
                await self._answer_fault(fault, call, receive, send, recording_send)
                return
        limited = path != spec.IDENTITY_TOKEN_PATH  # identity calls do not count
        if limited:
            try:
                self.backend.enter_call()
            except SandboxError as exc:
                call.error_code = exc.code
                await _send_json(recording_send, 200, envelope_error(exc.code, exc.message))
                return
        try:
            if fault is not None and fault.delay:
                await asyncio.sleep(fault.delay)  # a slow answer holds its concurrency slot
            if fault is not None and fault.drop_connection:
                # after_processing: do the work, then drop the connection before anyone hears of it.
                async def swallow(message: Message) -> None:
                    return None

                await self.app(scope, receive, swallow)
                call.status = 0
                _drop_connection(send)
            elif fault is not None and fault.answer_delay:
                held: list[Message] = []

                async def hold(message: Message) -> None:
                    held.append(message)

                await self.app(scope, receive, hold)
                await asyncio.sleep(fault.answer_delay)
                for message in held:
                    await recording_send(message)
            else:
                await self.app(scope, receive, recording_send)
        finally:
            if limited:
                self.backend.exit_call()

    async def _answer_fault(
        self, fault: Fault, call: CallRecord, receive: Receive, send: Send, recording_send: Send
    ) -> None:
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.drop_connection:
            with contextlib.suppress(BodyTooLarge):  # dropped all the same
                await _read_body(receive)
            call.status = 0
            _drop_connection(send)
        elif fault.code:
            call.error_code = fault.code
            message = fault.message or spec.ERROR_MESSAGES.get(fault.code, "Error")
            await _send_json(recording_send, 200, envelope_error(fault.code, message))
        else:
            await _send_json(recording_send, fault.http_status or 500, {"status": fault.http_status})


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


class _Body:
    """A request's body as the app reads it: refused with :class:`BodyTooLarge` as soon as it
    passes ``limit`` bytes, and known to be whole or not."""

    def __init__(self, receive: Receive, limit: int, expected: bool) -> None:
        self._receive = receive
        self.limit = limit
        self.seen = 0
        self.complete = not expected

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if not message.get("more_body", False):
                self.complete = True
            if self.seen > self.limit:
                raise BodyTooLarge()
        return message

    def closing(self, send: Send) -> Send:
        """``send`` that asks to close the connection when the answer starts before the body is read."""

        async def closing_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not self.complete:
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"connection" for name, _ in headers):
                    headers.append((b"connection", b"close"))
                message = {**message, "headers": headers}
            await send(message)

        return closing_send


async def _send_too_large(send: Send) -> None:
    """HTTP 413, closing the connection so that the rest of the body is never read."""
    data = TOO_LARGE_PAGE.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(data)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data, "more_body": False})


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json;charset=UTF-8"),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data, "more_body": False})


def _drop_connection(send: Send) -> None:
    """Close the client's connection without an answer, as a failing network would."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise RuntimeError("the server does not expose its transport; cannot drop the connection")
    transport.abort()
    # Tell uvicorn the peer is gone so it does not try to answer 500 on a closed socket.
    cycle.disconnected = True  # type: ignore[union-attr]


__all__ = ["SandboxASGI", "SandboxApp", "create_app", "envelope_error", "envelope_ok"]
