"""What comes back over the wire, read safely by both drivers: an answer's body within its call's
size limit and by the deadline (a watchdog ends a body that keeps arriving), and a transport's
exception as a :class:`~marketo_provider.api.MarketoTransportError` (by type, never by text)."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import requests
import urllib3

from marketo_provider import api
from marketo_provider.api import MarketoTransportError
from marketo_provider.api.errors import TransportFailure
from marketo_provider.api.protocol import Call


class Watchdog:
    """Shuts a response's connection down at a deadline (epoch seconds), so that a body that keeps
    arriving ends: a socket's read timeout bounds each read, not the whole body. ``fired`` says
    whether it did; :meth:`stop` once the body is read, before the connection goes back to the pool."""

    def __init__(self, response: requests.Response, deadline: float | None) -> None:
        self.fired = False
        self._stopped = False
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        sock = _socket_of(response)
        if deadline is not None and sock is not None:
            self._timer = threading.Timer(max(0.0, deadline - time.time()), self._fire, (sock,))
            self._timer.daemon = True
            self._timer.start()

    def _fire(self, sock: socket.socket) -> None:
        with self._lock:
            if self._stopped:
                return
            self.fired = True
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain socket's, under TLS too

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
        if self._timer is not None:
            self._timer.cancel()


def _socket_of(response: requests.Response) -> socket.socket | None:
    """The socket a response is read from: the connection's, or (when http.client handed it to the
    response, as it does for ``Connection: close``) the one under the response's file."""
    raw = response.raw
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    if sock is None:
        buffered = getattr(getattr(raw, "_fp", None), "fp", None)
        sock = getattr(getattr(buffered, "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.time() >= deadline


def _too_large(call: Call, limit: int) -> api.MarketoAnswerError:
    return api.MarketoAnswerError(call.purpose, f"runs past {limit:,} bytes, the most this call reads")


def _declared_size(headers: Any) -> int | None:
    value = str(headers.get("content-length") or "").strip()
    return int(value) if value.isdigit() else None


def response_chunks(
    response: requests.Response, call: Call, *, limit: int, deadline: float | None
) -> Iterator[bytes]:
    """A streamed body, at most ``limit`` bytes (decompressed), ending by ``deadline``: beyond the
    limit a :class:`~marketo_provider.api.MarketoAnswerError` naming the call, past the deadline a
    :class:`~marketo_provider.api.MarketoTransportError`; a connection that breaks mid-way is a
    transport error like any other."""
    watchdog = Watchdog(response, deadline)
    size = 0
    try:
        declared = _declared_size(response.headers)
        if declared is not None and declared > limit:
            raise _too_large(call, limit)
        try:
            while not (watchdog.fired or _past(deadline)):
                # read1: whatever has arrived (up to 64 KiB), so a body that trickles is checked
                # against the deadline at every read, not once per 64 KiB.
                chunk = response.raw.read1(64 * 1024, decode_content=True)
                if not chunk:
                    break
                size += len(chunk)
                if size > limit:
                    raise _too_large(call, limit)
                yield chunk
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            if not watchdog.fired:
                raise transport_error(exc, call) from None
        if watchdog.fired or _past(deadline):
            raise MarketoTransportError(TransportFailure.DEADLINE, call.purpose, call.host)
    finally:
        watchdog.stop()
        response.close()


def read_body(response: requests.Response, call: Call, *, deadline: float | None) -> str:
    """A whole answer of at most ``call.max_bytes`` bytes, ending by ``deadline``, as text."""
    chunks = list(response_chunks(response, call, limit=call.max_bytes, deadline=deadline))
    return b"".join(chunks).decode("utf-8", errors="replace")


async def aread_body(response: httpx.Response, call: Call) -> str:
    """:func:`read_body` for httpx (the caller bounds the time)."""
    declared = _declared_size(response.headers)
    if declared is not None and declared > call.max_bytes:
        raise _too_large(call, call.max_bytes)
    chunks = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > call.max_bytes:
            raise _too_large(call, call.max_bytes)
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", errors="replace")


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps (causes, contexts, urllib3's ``reason``, exception arguments)."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen or len(seen) > 20:
            continue
        seen.add(id(current))
        yield current
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        todo.extend(e for e in linked if isinstance(e, BaseException))


def transport_failure(exc: BaseException) -> TransportFailure:
    """How far a request got, from the exception a transport raised: decided on exception types
    (never on message text)."""
    chain = list(_causes(exc))
    if isinstance(exc, requests.exceptions.SSLError) or any(isinstance(e, ssl.SSLError) for e in chain):
        return TransportFailure.TLS
    resolve = next((e for e in chain if isinstance(e, socket.gaierror)), None)
    if resolve is not None:
        return (
            TransportFailure.DNS_TEMPORARY
            if resolve.errno == socket.EAI_AGAIN
            else TransportFailure.HOST_UNKNOWN
        )
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return TransportFailure.REFUSED
    if isinstance(exc, requests.ConnectTimeout | httpx.ConnectTimeout | httpx.PoolTimeout):
        return TransportFailure.CONNECT_TIMEOUT
    if isinstance(exc, requests.Timeout | httpx.TimeoutException | urllib3.exceptions.TimeoutError):
        return TransportFailure.TIMEOUT
    if isinstance(exc, httpx.ConnectError) or _new_connection_error(chain):
        return TransportFailure.CONNECT_TIMEOUT  # no connection was made: nothing was sent
    return TransportFailure.BROKEN


def _new_connection_error(chain: list[BaseException]) -> bool:
    from urllib3.exceptions import NewConnectionError

    return any(isinstance(e, NewConnectionError) for e in chain)


def transport_error(exc: BaseException, call: Call) -> MarketoTransportError:
    """Our error for a transport's exception; its text never holds the URL (the identity call's
    query holds the client secret)."""
    failure = transport_failure(exc)
    detail = ""
    if failure is TransportFailure.TLS:
        tls = next((e for e in _causes(exc) if isinstance(e, ssl.SSLError)), None)
        if tls is not None:
            detail = str(getattr(tls, "verify_message", None) or getattr(tls, "reason", None) or "")
    return MarketoTransportError(failure, call.purpose, call.host, detail)
