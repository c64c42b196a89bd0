"""What stands in front of the sandbox's Marketo app, for every request: a body over its limit
refused unread, the sandbox's own paths (``/sandbox-api/``) answered apart, and each Marketo call
recorded, its injected fault applied and the instance-wide limits (rate, concurrency, daily quota)
counted before :class:`~marketo_provider.testing.app.SandboxApp` answers it. Plain ASGI, so a fault
can hold an answer back or drop the connection as a failing network would."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from marketo_provider.testing import spec
from marketo_provider.testing.envelope import envelope_error
from marketo_provider.testing.errors import TOO_LARGE_PAGE, BodyTooLarge, SandboxError
from marketo_provider.testing.faults import CallRecord, Fault
from marketo_provider.testing.inspection import SANDBOX_API_PREFIX, SandboxAPI

if TYPE_CHECKING:
    from marketo_provider.testing.app import SandboxApp
    from marketo_provider.testing.backend import MarketoBackend

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


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


__all__ = ["Message", "Receive", "SandboxASGI", "Scope", "Send"]
