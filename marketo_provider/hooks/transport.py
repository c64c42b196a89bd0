"""What the hook's calls share within one process, and the two transports' plumbing: the token
cache, one pacer per Marketo instance, what the triggers of one event loop share (an
``httpx.AsyncClient`` per TLS setting, token locks, connection settings), TLS contexts, uploads of a
known size, and how a transport's exception becomes a
:class:`~marketo_provider.api.MarketoTransportError` (by type, never by text)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

import httpx
import requests
import urllib3

from marketo_provider import api
from marketo_provider.api import (
    Call,
    CallPacer,
    ConnectionSettings,
    MarketoError,
    MarketoTransportError,
    MarketoValueError,
    Token,
    TransportFailure,
)


class TokenCache:
    """Access tokens by (identity URL, client id), shared by every hook of a process, so a worker
    or a triggerer asks for one token per token lifetime, not one per task or call."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str], Token] = {}
        self._lock = threading.Lock()

    def fresh(self, key: tuple[str, str], now: float) -> str | None:
        with self._lock:
            token = self._tokens.get(key)
        return token.access_token if token is not None and token.fresh_at(now) else None

    def store(self, key: tuple[str, str], token: Token) -> None:
        with self._lock:
            self._tokens[key] = token

    def forget(self, key: tuple[str, str], access_token: str) -> None:
        """Drop ``access_token`` (Marketo refused it), unless another caller already replaced it."""
        with self._lock:
            cached = self._tokens.get(key)
            if cached is not None and cached.access_token == access_token:
                del self._tokens[key]

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


TOKENS = TokenCache()


_PACERS: dict[tuple[str, int, float], CallPacer] = {}


_PACERS_LOCK = threading.Lock()


def pacer(host: str, calls: int, window: float) -> CallPacer:
    """The process's pacer for one Marketo instance."""
    with _PACERS_LOCK:
        key = (host, calls, window)
        pacer = _PACERS.get(key)
        if pacer is None:
            pacer = _PACERS[key] = CallPacer(calls, window)
        return pacer


_TOKEN_FETCH_LOCKS: dict[tuple[str, str], threading.Lock] = {}


_TOKEN_FETCH_LOCKS_GUARD = threading.Lock()


def token_fetch_lock(key: tuple[str, str]) -> threading.Lock:
    """The lock that lets one thread of the process fetch a client's token while the others wait."""
    with _TOKEN_FETCH_LOCKS_GUARD:
        return _TOKEN_FETCH_LOCKS.setdefault(key, threading.Lock())


class _RedactSecrets(logging.Filter):
    """urllib3 (DEBUG) and httpx (INFO) log request URLs; the identity call's query holds the
    client secret, so their records pass through :func:`api.redact` first."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        clean = api.redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


def clear_token_cache() -> None:
    """Forget every cached token (tests; credential rotation)."""
    TOKENS.clear()


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


class LoopShared:
    """What the hooks on one event loop share: an ``httpx.AsyncClient`` per TLS setting (its TLS
    context is built once, off the loop), token locks, and connection settings."""

    def __init__(self) -> None:
        self._clients: dict[tuple[Any, float], httpx.AsyncClient] = {}
        self._client_lock = asyncio.Lock()
        self._token_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._settings: dict[str, tuple[float, asyncio.Future[ConnectionSettings]]] = {}
        self.calls = asyncio.Semaphore(MAX_ASYNC_CONNECTIONS)

    def token_lock(self, key: tuple[str, str]) -> asyncio.Lock:
        return self._token_locks.setdefault(key, asyncio.Lock())

    async def client(self, settings: ConnectionSettings) -> httpx.AsyncClient:
        key = (settings.verify, settings.timeout)
        client = self._clients.get(key)
        if client is None or client.is_closed:
            async with self._client_lock:
                client = self._clients.get(key)
                if client is None or client.is_closed:
                    context = await asyncio.to_thread(tls_context, settings.verify)
                    client = httpx.AsyncClient(
                        verify=context,
                        timeout=httpx.Timeout(settings.timeout, connect=settings.connect_timeout),
                        headers={"User-Agent": USER_AGENT},
                        limits=httpx.Limits(max_connections=MAX_ASYNC_CONNECTIONS),
                    )
                    self._clients[key] = client
        return client

    async def settings(
        self, conn_id: str, read: Callable[[], Awaitable[ConnectionSettings]]
    ) -> ConnectionSettings:
        """A connection's settings, read once by ``read`` for every hook on the loop, for a few
        minutes (a triggerer full of import triggers reads it once, not once each)."""
        cached = self._settings.get(conn_id)
        now = time.monotonic()
        if (
            cached is None
            or now - cached[0] > SETTINGS_TTL_SECONDS
            or (cached[1].done() and cached[1].exception() is not None)
        ):
            future: asyncio.Future[ConnectionSettings] = asyncio.ensure_future(read())
            self._settings[conn_id] = cached = (now, future)
        return await asyncio.shield(cached[1])

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()


_LOOPS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopShared] = weakref.WeakKeyDictionary()


def loop_shared() -> LoopShared:
    loop = asyncio.get_running_loop()
    shared = _LOOPS.get(loop)
    if shared is None:
        shared = _LOOPS[loop] = LoopShared()
    return shared


async def aclose_shared_clients() -> None:
    """Close the clients the hooks on the running loop share (tests, benchmarks)."""
    shared = _LOOPS.get(asyncio.get_running_loop())
    if shared is not None:
        await shared.aclose()


_TLS_CONTEXTS: dict[Any, ssl.SSLContext] = {}


_TLS_LOCK = threading.Lock()


def tls_context(verify: bool | str) -> ssl.SSLContext:
    """One TLS context per setting per process (building one costs ~30 ms of CPU)."""
    with _TLS_LOCK:
        context = _TLS_CONTEXTS.get(verify)
        if context is None:
            if verify is False:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            elif isinstance(verify, str):
                context = (
                    ssl.create_default_context(capath=verify)
                    if os.path.isdir(verify)
                    else ssl.create_default_context(cafile=verify)
                )
            else:
                import certifi

                context = ssl.create_default_context(cafile=certifi.where())
            _TLS_CONTEXTS[verify] = context
        return context


class SizedUpload:
    """A file object whose size is given rather than measured: requests-toolbelt measures a stream
    it cannot stat by other means, e.g. by copying an ``io.BytesIO`` whole (``getvalue``). Its
    encoder keeps reading while ``len()`` (the bytes still to send) is above zero."""

    def __init__(self, stream: IO[bytes], size: int) -> None:
        self._stream = stream
        self._left = size

    def __len__(self) -> int:
        return self._left

    def read(self, n: int | None = -1) -> bytes:
        want = self._left if n is None or n < 0 else min(n, self._left)
        data = self._stream.read(want)
        if want and not data:
            raise MarketoError(
                f"the upload ended {self._left:,} bytes early; was the file changed while sending?"
            )
        self._left -= len(data)
        return data


@contextmanager
def open_upload(file: str | os.PathLike[str] | IO[bytes]) -> Iterator[tuple[IO[bytes], int, str]]:
    """The upload as a seekable binary stream, its size, and a default file name."""
    if isinstance(file, str | os.PathLike):
        path = os.fspath(file)
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise MarketoValueError(f"cannot read import file {path!r}: {exc.strerror or exc}") from None
        with handle:
            yield handle, os.fstat(handle.fileno()).st_size, os.path.basename(path)
        return
    if isinstance(file, bytes | bytearray) or not hasattr(file, "read"):
        raise MarketoValueError("file must be a path or a binary file object opened for reading")
    if not (hasattr(file, "seekable") and file.seekable()):
        raise MarketoValueError("the import file object must be seekable (a file on disk or io.BytesIO)")
    start = file.tell()
    size = file.seek(0, os.SEEK_END) - start
    file.seek(start)
    yield file, size, os.path.basename(str(getattr(file, "name", "") or "import.csv"))


# Calls one triggerer process has open to Marketo at once, whatever the number of triggers:
# Marketo refuses more than 10 concurrent calls per instance (615), shared with other integrations.
MAX_ASYNC_CONNECTIONS = 4


# How long a triggerer process keeps a connection's settings before reading them again.
SETTINGS_TTL_SECONDS = 300.0


USER_AGENT = "airflow-provider-marketo"


_REDACTION_INSTALLED = False


def install_log_redaction() -> None:
    """Put :class:`_RedactSecrets` on the loggers of urllib3 and httpx, once per process (the first
    hook does it)."""
    global _REDACTION_INSTALLED
    if _REDACTION_INSTALLED:
        return
    for name in ("urllib3.connectionpool", "httpx"):
        logging.getLogger(name).addFilter(_RedactSecrets())
    _REDACTION_INSTALLED = True
