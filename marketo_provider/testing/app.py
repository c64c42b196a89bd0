"""The sandbox's HTTP face: Marketo's identity and bulk import endpoints over a :class:`MarketoBackend`.

A thin FastAPI app does the routing and the parsing; an ASGI wrapper around it records every call,
applies injected faults and the instance-wide limits. The rules themselves live in ``models.py``.
Calls that may move the queue on (and so check a finished job's rows) run in a worker thread, so
the event loop keeps answering other calls meanwhile, as Marketo does.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from marketo_provider import api
from marketo_provider.api import PATH_TEMPLATES, ImportTarget, MarketoValueError, ObjectType
from marketo_provider.testing.models import CallRecord, Fault, HTTPError, MarketoBackend, SandboxError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def _request_id() -> str:
    return f"{uuid.uuid4().hex[:4]}#{uuid.uuid4().hex[:11]}"


def envelope_ok(result: list[dict[str, Any]]) -> dict[str, Any]:
    return {"requestId": _request_id(), "result": result, "success": True}


def envelope_error(code: str, message: str) -> dict[str, Any]:
    return {"requestId": _request_id(), "success": False, "errors": [{"code": str(code), "message": message}]}


def _error_response(exc: SandboxError) -> JSONResponse:
    return JSONResponse(envelope_error(exc.code, exc.message))


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def create_app(backend: MarketoBackend) -> SandboxASGI:
    """The sandbox's ASGI application."""
    app = FastAPI(title="Marketo sandbox", openapi_url=None, docs_url=None, redoc_url=None)

    @app.exception_handler(SandboxError)
    async def _sandbox_error(request: Request, exc: SandboxError) -> JSONResponse:
        call = request.scope.get("marketo_call")
        if call is not None:
            call.error_code = exc.code
        return _error_response(exc)

    @app.exception_handler(HTTPError)
    async def _http_error(request: Request, exc: HTTPError) -> Response:
        if isinstance(exc.body, dict):
            return JSONResponse(exc.body, status_code=exc.status)
        return Response(exc.body, status_code=exc.status, media_type="text/html")

    async def authorize(request: Request, form_keys: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        # The access_token parameter was withdrawn: a token anywhere but the header is refused.
        if "access_token" in request.query_params or "access_token" in form_keys:
            raise SandboxError("601", "Access token invalid")
        backend.check_token(_bearer(request))

    # ---- identity ------------------------------------------------------------------------

    async def token(request: Request) -> JSONResponse:
        params = dict(request.query_params)
        if request.method == "POST" and "form" in request.headers.get("content-type", ""):
            form = await request.form()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
        answer = backend.issue_token(
            params.get("client_id"), params.get("client_secret"), params.get("grant_type")
        )
        return JSONResponse(answer)

    app.add_api_route(api.IDENTITY_TOKEN_PATH, token, methods=["GET", "POST"])

    # ---- create import -------------------------------------------------------------------

    async def create(request: Request, target: ImportTarget) -> Response:
        await authorize(request)
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            raise SandboxError("612", "Invalid Content Type")
        try:
            form = await request.form(max_part_size=1024 * 1024)
        except Exception:
            raise SandboxError("613", "Invalid Multipart Request") from None
        await authorize(request, set(form.keys()))
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise SandboxError("1003", "File is required: send it as the multipart field 'file'")
        # The spec puts parameters in the query string; form fields (as in curl examples) also work.
        params = {k: v for k, v in form.items() if isinstance(v, str)}
        params.update(request.query_params)
        params.pop("file", None)
        size = upload.size if upload.size is not None else len(await upload.read())
        call = request.scope.get("marketo_call")
        if call is not None:
            call.upload_bytes = size
            call.content_type = upload.content_type
        if size > backend.config.max_file_bytes:
            raise HTTPError(413, "<html><body><h1>413 Request Entity Too Large</h1></body></html>")
        await upload.seek(0)
        content = await upload.read()
        known = {"format", "lookupField", "listId", "partitionName", "programMemberStatus"}
        job = await run_in_threadpool(
            backend.create_import,
            target,
            {k: v for k, v in params.items() if k in known},
            content,
            upload.filename or "",
        )
        if call is not None:
            call.batch_id = job.batch_id
        return JSONResponse(envelope_ok([job.create_entry()]))

    async def create_leads(request: Request) -> Response:
        return await create(request, ImportTarget(ObjectType.LEADS))

    async def create_program_members(request: Request, programId: int) -> Response:
        return await create(request, ImportTarget(ObjectType.PROGRAM_MEMBERS, program_id=programId))

    async def create_custom_objects(request: Request, apiName: str) -> Response:
        return await create(request, ImportTarget(ObjectType.CUSTOM_OBJECTS, custom_object_name=apiName))

    app.add_api_route(PATH_TEMPLATES[(ObjectType.LEADS, "create")], create_leads, methods=["POST"])
    app.add_api_route(
        PATH_TEMPLATES[(ObjectType.PROGRAM_MEMBERS, "create")], create_program_members, methods=["POST"]
    )
    app.add_api_route(
        PATH_TEMPLATES[(ObjectType.CUSTOM_OBJECTS, "create")], create_custom_objects, methods=["POST"]
    )

    # ---- status, failures, warnings ------------------------------------------------------

    def batch_routes(object_type: ObjectType) -> None:
        async def status(request: Request, batchId: int) -> Response:
            await authorize(request)
            entry = await run_in_threadpool(
                backend.status, object_type, batchId, request.path_params.get("apiName")
            )
            return JSONResponse(envelope_ok([entry]))

        def file_route(kind: str) -> Callable[..., Awaitable[Response]]:
            async def result_file(request: Request, batchId: int) -> Response:
                await authorize(request)
                data = await run_in_threadpool(
                    backend.result_file, object_type, batchId, kind, request.path_params.get("apiName")
                )
                if data is None and object_type is ObjectType.CUSTOM_OBJECTS:
                    return Response(status_code=404)
                return Response(data or b"", media_type=api.RESULT_FILE_CONTENT_TYPE)

            return result_file

        app.add_api_route(PATH_TEMPLATES[(object_type, "status")], status, methods=["GET"])
        for kind in ("failures", "warnings"):
            app.add_api_route(PATH_TEMPLATES[(object_type, kind)], file_route(kind), methods=["GET"])

    for object_type in ObjectType:
        batch_routes(object_type)

    # ---- describe ------------------------------------------------------------------------

    async def describe_leads(request: Request) -> Response:
        await authorize(request)
        return JSONResponse(envelope_ok([backend.describe(ObjectType.LEADS)]))

    async def describe_program_members(request: Request) -> Response:
        await authorize(request)
        return JSONResponse(envelope_ok([backend.describe(ObjectType.PROGRAM_MEMBERS)]))

    async def describe_custom_object(request: Request, customObjectName: str) -> Response:
        await authorize(request)
        return JSONResponse(envelope_ok([backend.describe(ObjectType.CUSTOM_OBJECTS, customObjectName)]))

    app.add_api_route(PATH_TEMPLATES[(ObjectType.LEADS, "describe")], describe_leads, methods=["GET"])
    app.add_api_route(
        PATH_TEMPLATES[(ObjectType.PROGRAM_MEMBERS, "describe")], describe_program_members, methods=["GET"]
    )
    app.add_api_route(
        PATH_TEMPLATES[(ObjectType.CUSTOM_OBJECTS, "describe")], describe_custom_object, methods=["GET"]
    )
    return SandboxASGI(app, backend)


class SandboxASGI:
    """Records each call, applies faults and the instance-wide limits, then lets FastAPI answer."""

    def __init__(self, app: FastAPI, backend: MarketoBackend) -> None:
        self.app = app
        self.backend = backend

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        form_keys: set[str] = set()
        if method == "POST" and "x-www-form-urlencoded" in headers.get("content-type", ""):
            body = await _read_body(receive)
            form_keys = {k for k, _ in parse_qsl(body.decode("latin-1"), keep_blank_values=True)}
            receive = _replay(body)
        call = self.backend.record(
            method, path, query, form_keys, headers.get("authorization", "").lower().startswith("bearer ")
        )
        scope["marketo_call"] = call

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                call.status = message["status"]
            await send(message)

        fault = self.backend.take_fault(method, path)
        if fault is not None:
            call.fault = (
                fault.code
                or (str(fault.http_status) if fault.http_status else None)
                or ("drop" if fault.drop_connection else "delay")
            )
            answers_instead = (
                fault.code or fault.http_status or (fault.drop_connection and not fault.after_processing)
            )
            if answers_instead:
                await self._answer_fault(fault, call, receive, send, recording_send)
                return
        limited = path != api.IDENTITY_TOKEN_PATH
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
            await _read_body(receive)
            call.status = 0
            _drop_connection(send)
        elif fault.code:
            call.error_code = fault.code
            message = fault.message or api.ERROR_MESSAGES.get(fault.code, "Error")
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


__all__ = ["MarketoValueError", "SandboxASGI", "create_app", "envelope_error", "envelope_ok"]
