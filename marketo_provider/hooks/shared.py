"""What the hook's calls share within one process: the token cache and the lock that lets one
thread fetch a client's token, one pacer per Marketo instance, what the triggers of one event loop
share (an ``httpx.AsyncClient`` per TLS setting, token locks, connection settings), TLS contexts,
and the redaction of secrets from the HTTP libraries' own log lines."""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from marketo_provider.api import ConnectionSettings
from marketo_provider.api.connection import Token
from marketo_provider.api.limits import CallPacer
from marketo_provider.api.redaction import redact

# Calls one triggerer process has open to Marketo at once, whatever the number of triggers:
# Marketo refuses more than 10 concurrent calls per instance (615), shared with other integrations.
MAX_ASYNC_CONNECTIONS = 4


# How long a triggerer process keeps a connection's settings before reading them again.
SETTINGS_TTL_SECONDS = 300.0


USER_AGENT = "airflow-provider-marketo"


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


def clear_token_cache() -> None:
    """Forget every cached token (tests; credential rotation)."""
    TOKENS.clear()


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


class _RedactSecrets(logging.Filter):
    """urllib3 (DEBUG) and httpx (INFO) log request URLs; the identity call's query holds the
    client secret, so their records pass through :func:`redact` first."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


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
