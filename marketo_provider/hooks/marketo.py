"""MarketoHook: the one place that talks to Marketo.

What to send and how to read the answer is decided in :mod:`marketo_provider.api`
(:func:`~marketo_provider.api.call_flow`: token, renewal, what may be resent, retries); this
module only sends: synchronously with a pooled ``requests`` session (uploads streamed with
requests-toolbelt), and asynchronously with ``httpx`` for the triggerer. Both drive the same flows
and share one token cache per process.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any, BinaryIO, TypeVar

import httpx
import requests
import tenacity
from airflow.sdk import BaseHook
from requests_toolbelt import MultipartEncoder, MultipartEncoderMonitor

from marketo_provider import api
from marketo_provider._compat import amask_secret
from marketo_provider.api import (
    Answer,
    BatchStatus,
    Call,
    ConnectionSettings,
    ImportSpec,
    ImportTarget,
    MarketoConnectionConfigError,
    MarketoError,
    MarketoTransportError,
    MarketoValueError,
    NeedToken,
    ObjectType,
    TransportFailure,
)
from marketo_provider.get_provider_info import CONN_FIELDS, UI_FIELD_BEHAVIOUR

T = TypeVar("T")

USER_AGENT = "airflow-provider-marketo"
_PROGRESS_STEP_BYTES = 1024 * 1024
# Calls one triggerer process has open to Marketo at once, whatever the number of triggers:
# Marketo refuses more than 10 concurrent calls per instance (615), shared with other integrations.
MAX_ASYNC_CONNECTIONS = 4
# How long a triggerer process keeps a connection's settings before reading them again.
SETTINGS_TTL_SECONDS = 300.0

_TOKENS = api.TokenCache()
_PACERS: dict[tuple[str, int, float], api.CallPacer] = {}
_PACERS_LOCK = threading.Lock()


def _pacer(host: str, calls: int, window: float) -> api.CallPacer:
    """The process's pacer for one Marketo instance."""
    with _PACERS_LOCK:
        key = (host, calls, window)
        pacer = _PACERS.get(key)
        if pacer is None:
            pacer = _PACERS[key] = api.CallPacer(calls, window)
        return pacer


_TOKEN_FETCH_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_TOKEN_FETCH_LOCKS_GUARD = threading.Lock()


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


for _name in ("urllib3.connectionpool", "httpx"):
    logging.getLogger(_name).addFilter(_RedactSecrets())


def clear_token_cache() -> None:
    """Forget every cached token (tests; credential rotation)."""
    _TOKENS.clear()


class MarketoHook(BaseHook):
    """Talks to Adobe Marketo Engage's REST API with an Airflow connection of type ``marketo``.

    The connection's host is the REST API endpoint (``https://123-ABC-456.mktorest.com``; a
    trailing ``/rest`` is accepted; no scheme means https), login the client id and password the
    client secret. Extras: ``identity_url`` (default ``<host>/identity``), ``timeout`` (seconds,
    default 60), ``verify`` (true, false or a CA bundle path, applied to every call).

    Every call follows :func:`marketo_provider.api.call_flow` and the retry policy of
    :func:`marketo_provider.api.is_retryable` (the codes and what is done about each are listed in
    the docs' "Retries and Marketo's error codes"): transient failures are retried with backoff and
    jitter, a refused token is renewed once, and what no retry can fix fails at once with a message
    naming the call and what to fix. An upload that may have reached Marketo is never sent again:
    :class:`~marketo_provider.api.MarketoSubmitOutcomeUnknownError`.

    :param marketo_conn_id: the Airflow connection id.
    :param max_attempts: attempts per call, the first included (default 8).
    :param max_retry_seconds: total time one call may spend retrying (default 300).
    :param retry_base_seconds: the first backoff step; each retry doubles it, up to 60 s.
    :param rate_limit_wait_seconds: Marketo's rate window: how long a 606 answer waits (20 s).
    :param calls_per_window: the most calls this process sends to one instance in 20 seconds
        (the rate window; default 80 of Marketo's 100, leaving the rest to the instance's other integrations); calls
        beyond it wait their turn instead of meeting 606. None turns pacing off.
    """

    conn_name_attr = "marketo_conn_id"
    default_conn_name = "marketo_default"
    conn_type = "marketo"
    hook_name = "Adobe Marketo Engage"

    def __init__(
        self,
        marketo_conn_id: str = default_conn_name,
        *,
        max_attempts: int = 8,
        max_retry_seconds: float = 300.0,
        retry_base_seconds: float = 1.0,
        rate_limit_wait_seconds: float = api.RATE_LIMIT_WINDOW_SECONDS,
        calls_per_window: int | None = api.CLIENT_CALLS_PER_WINDOW,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if max_attempts < 1:
            raise MarketoValueError("max_attempts must be at least 1")
        self.marketo_conn_id = marketo_conn_id
        self.max_attempts = max_attempts
        self.max_retry_seconds = max_retry_seconds
        self.retry_base_seconds = retry_base_seconds
        self.rate_limit_wait_seconds = rate_limit_wait_seconds
        self.calls_per_window = calls_per_window
        #: REST calls this hook sent to Marketo (identity calls, which Marketo does not count, aside).
        self.api_calls = 0
        self._settings: ConnectionSettings | None = None
        self._session: requests.Session | None = None
        self._read_timeout_cap: float | None = None  # a connection test answers within seconds

    # ---- connection --------------------------------------------------------------------------

    @property
    def settings(self) -> ConnectionSettings:
        """The connection, read once (sync)."""
        if self._settings is None:
            conn = self.get_connection(self.marketo_conn_id)
            self._settings = _read_settings(
                self.marketo_conn_id, conn.host, conn.login, conn.password, conn.extra_dejson
            )
            _mask(self._settings.client_secret)
        return self._settings

    async def aget_settings(self) -> ConnectionSettings:
        """The connection, read without blocking the event loop, shared by every hook on the loop
        for a few minutes (a triggerer full of import triggers reads it once, not once each)."""
        if self._settings is None:
            self._settings = await _loop_shared().settings(self)
        return self._settings

    def get_conn(self) -> requests.Session:
        """The hook's pooled HTTP session."""
        if self._session is None:
            session = requests.Session()
            session.headers["User-Agent"] = USER_AGENT
            self._session = session
        return self._session

    # ---- retry policy (shared by both transports) --------------------------------------------

    def _retry_kwargs(self, *, retry: bool = True) -> dict[str, Any]:
        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            return api.retry_wait_seconds(
                exc,
                state.attempt_number,
                base=self.retry_base_seconds,
                rate_window=self.rate_limit_wait_seconds,
            )

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            self.log.warning(
                "Marketo call failed (%s); retry %d of %d in %.1f s",
                exc,
                state.attempt_number,
                self.max_attempts - 1,
                state.next_action.sleep if state.next_action else 0.0,
            )

        return {
            "retry": tenacity.retry_if_exception(api.is_retryable),
            "stop": tenacity.stop_after_attempt(self.max_attempts if retry else 1)
            | tenacity.stop_after_delay(self.max_retry_seconds),
            "wait": wait,
            "before_sleep": before_sleep,
            "reraise": True,
        }

    # ---- sync transport ----------------------------------------------------------------------

    def _run(self, make_flow: Callable[[], api.Flow[T]], *, retry: bool = True) -> T:
        """Drive a flow of :mod:`api` to its end, with the retry policy around the whole flow (its
        token fetch included, so retries never nest)."""
        return tenacity.Retrying(**self._retry_kwargs(retry=retry))(self._run_once, make_flow)

    def _run_once(self, make_flow: Callable[[], api.Flow[T]]) -> T:
        flow = make_flow()
        try:
            step = next(flow)
            while True:
                answer: Answer | None = None
                try:
                    if isinstance(step, NeedToken):
                        reply: Any = self._token(step.stale)
                    else:
                        reply = answer = self._send(step)
                except MarketoError as exc:
                    step = flow.throw(exc)
                    continue
                try:
                    step = flow.send(reply)
                finally:
                    if answer is not None and answer.chunks is not None:
                        answer.chunks.close()
        except StopIteration as stop:
            return stop.value

    def _token(self, stale: str | None) -> str:
        """A valid access token: from the process's cache, or one identity call at a time."""
        settings = self.settings
        key = settings.cache_key
        if stale:
            _TOKENS.forget(key, stale)
        if token := _TOKENS.fresh(key, time.monotonic()):
            return token
        with _TOKEN_FETCH_LOCKS_GUARD:
            lock = _TOKEN_FETCH_LOCKS.setdefault(key, threading.Lock())
        with lock:
            if token := _TOKENS.fresh(key, time.monotonic()):
                return token
            started = time.monotonic()
            fetched = api.read_token_answer(self._send(api.token_call(settings)), started, settings.conn_id)
            _mask(fetched.access_token)
            _TOKENS.store(key, fetched)
            return fetched.access_token

    def _pace(self, call: Call) -> float:
        """Seconds to wait before sending ``call`` (identity calls do not count against the limit)."""
        if call.token is None or not self.calls_per_window:
            return 0.0
        pacer = _pacer(call.host, self.calls_per_window, self.rate_limit_wait_seconds)
        return pacer.reserve(time.monotonic())

    def _send(self, call: Call) -> Answer:
        settings = self.settings
        if (wait := self._pace(call)) > 0:
            time.sleep(wait)
        headers = call.headers
        data: Any = None
        if call.upload is not None:
            data = self._multipart(call.upload)
            headers["Content-Type"] = data.content_type
        try:
            response = self.get_conn().request(
                call.method,
                call.url,
                params=call.params,
                data=data,
                headers=headers,
                timeout=(settings.connect_timeout, self._read_timeout(call, settings)),
                stream=call.stream,
                # Given on every request: requests lets REQUESTS_CA_BUNDLE override Session.verify.
                verify=settings.verify,
            )
        except requests.RequestException as exc:
            error = transport_error(exc, call)
            if error.failure.sent:
                self._count(call)
            raise error from None
        except OSError as exc:  # e.g. a CA bundle (verify, REQUESTS_CA_BUNDLE) that cannot be read
            raise MarketoTransportError(TransportFailure.TLS, call.purpose, call.host, str(exc)) from None
        self._count(call)
        content_type = response.headers.get("content-type", "")
        if call.stream and response.status_code == 200 and "json" not in content_type:
            return Answer(response.status_code, response.headers, chunks=_chunks(response, call))
        return Answer(response.status_code, response.headers, text=response.text)

    def _read_timeout(self, call: Call, settings: ConnectionSettings) -> float:
        timeout = call.read_timeout or settings.timeout
        return min(timeout, self._read_timeout_cap) if self._read_timeout_cap else timeout

    def _count(self, call: Call) -> None:
        if call.token is not None:
            self.api_calls += 1

    def _multipart(self, upload: api.Upload) -> MultipartEncoderMonitor:
        encoder = MultipartEncoder(
            fields={"file": (upload.filename, _SizedUpload(upload.open(), upload.size), upload.content_type)}
        )
        return MultipartEncoderMonitor(encoder, self._progress_logger(upload.filename, encoder.len))

    def _progress_logger(self, name: str, total: int) -> Callable[[MultipartEncoderMonitor], None]:
        next_report = [_PROGRESS_STEP_BYTES]

        def report(monitor: MultipartEncoderMonitor) -> None:
            if total >= 2 * _PROGRESS_STEP_BYTES and monitor.bytes_read >= next_report[0]:
                self.log.info(
                    "Uploading %s: %d%% (%s of %s bytes)",
                    name,
                    100 * monitor.bytes_read // total,
                    f"{monitor.bytes_read:,}",
                    f"{total:,}",
                )
                next_report[0] = (
                    monitor.bytes_read - monitor.bytes_read % _PROGRESS_STEP_BYTES + 2 * _PROGRESS_STEP_BYTES
                )

        return report

    # ---- imports -----------------------------------------------------------------------------

    def submit(
        self, spec: ImportSpec, file: str | os.PathLike[str] | IO[bytes], *, filename: str | None = None
    ) -> dict[str, Any]:
        """Upload one file (a path or a seekable binary file object, under Marketo's size limit) as
        a stream and create an import job as ``spec`` says; returns Marketo's result entry
        (``batchId``, ``status``, and ``importId`` or ``objectApiName``).

        Raises :class:`~marketo_provider.api.MarketoQueueFullError` (1016) when Marketo's import
        queue is full: wait for a slot and submit again.
        """
        settings = self.settings
        with _open_upload(file) as (stream, size, default_name):
            if size > api.MAX_IMPORT_FILE_BYTES:
                raise MarketoValueError(
                    f"import file {default_name!r} is {size:,} bytes; Marketo takes files under "
                    f"{api.MAX_IMPORT_FILE_BYTES:,} bytes. The bulk import operator cuts larger sources into parts."
                )
            name = filename or default_name
            start = stream.tell()

            def reopen() -> IO[bytes]:
                stream.seek(start)
                return stream

            call = Call(
                "POST",
                settings.url(spec.create_path),
                f"upload of {name} ({spec.target.label})",
                params=spec.query,
                upload=api.Upload(name, size, spec.file_format.content_type, reopen),
                read_timeout=max(settings.timeout, api.UPLOAD_READ_TIMEOUT_FLOOR_SECONDS),
            )
            self.log.info(
                "Uploading %s (%s bytes, %s) to Marketo as %s",
                name,
                f"{size:,}",
                spec.file_format.value,
                spec.target.label,
            )
            entry = self._run(lambda: api.call_flow(call, _batch_entry(call), resend_safe=False))
        self.log.info("Marketo accepted %s: batch %s, %s", name, entry.get("batchId"), entry.get("status"))
        return entry

    def submit_import(
        self,
        object_type: str | ObjectType,
        file: str | os.PathLike[str] | IO[bytes],
        *,
        file_format: str = "csv",
        lookup_field: str | None = None,
        list_id: int | str | None = None,
        partition_name: str | None = None,
        program_id: int | str | None = None,
        program_member_status: str | None = None,
        custom_object_name: str | None = None,
        filename: str | None = None,
    ) -> dict[str, Any]:
        """:meth:`submit` with the import's arguments spelled out (they are checked before sending)."""
        spec = ImportSpec.of(
            object_type,
            file_format=file_format,
            lookup_field=lookup_field,
            list_id=list_id,
            partition_name=partition_name,
            program_id=program_id,
            program_member_status=program_member_status,
            custom_object_name=custom_object_name,
        )
        return self.submit(spec, file, filename=filename)

    def batch_status(self, target: ImportTarget, batch_id: int) -> BatchStatus:
        """A batch's status (``status``, and counts once it is done)."""
        call = _status_call(self.settings, target, batch_id)
        entry = self._run(lambda: api.call_flow(call, _batch_entry(call)))
        return BatchStatus.from_entry(target.object_type, entry)

    def get_import_status(
        self, object_type: str | ObjectType, batch_id: int, *, custom_object_name: str | None = None
    ) -> dict[str, Any]:
        """Marketo's status entry of one batch (``status``, and counts once it is done)."""
        call = _status_call(
            self.settings, ImportTarget.of(object_type, custom_object_name=custom_object_name), batch_id
        )
        return self._run(lambda: api.call_flow(call, _batch_entry(call)))

    def download_result_file(
        self,
        object_type: str | ObjectType,
        batch_id: int,
        kind: str,
        dest: BinaryIO,
        *,
        custom_object_name: str | None = None,
    ) -> int | None:
        """Stream a batch's ``failures`` or ``warnings`` file into ``dest``; returns the bytes written,
        or None when Marketo has no such file (custom objects answer 404)."""
        target = ImportTarget.of(object_type, custom_object_name=custom_object_name)
        path = target.result_file_path(batch_id, kind)
        call = Call("GET", self.settings.url(path), f"{kind} file of batch {batch_id}", stream=True)
        start = dest.tell() if dest.seekable() else None

        def read(answer: Answer) -> int | None:
            if not api.read_result_file_answer(answer, target, path):
                return None
            if start is not None:
                dest.seek(start)
                dest.truncate()
            written = 0
            for chunk in answer.chunks if answer.chunks is not None else [answer.text.encode("utf-8")]:
                dest.write(chunk)
                written += len(chunk)
            return written

        return self._run(lambda: api.call_flow(call, read, resend_safe=start is not None))

    def get_result_file(
        self,
        object_type: str | ObjectType,
        batch_id: int,
        kind: str,
        *,
        custom_object_name: str | None = None,
    ) -> bytes | None:
        """A batch's ``failures`` or ``warnings`` file as bytes (small files), or None when there is none."""
        buffer = io.BytesIO()
        written = self.download_result_file(
            object_type, batch_id, kind, buffer, custom_object_name=custom_object_name
        )
        return None if written is None else buffer.getvalue()

    def describe(
        self, object_type: str | ObjectType, *, custom_object_name: str | None = None, retry: bool = True
    ) -> dict[str, Any]:
        """The fields an import file may name (``fields``) and the object's ``dedupe_fields``."""
        target = ImportTarget.of(object_type, custom_object_name=custom_object_name)
        path = target.describe_path
        call = Call("GET", self.settings.url(path), f"describe of {target.label}")
        result = self._run(lambda: api.call_flow(call, lambda a: api.read_json_answer(a, path)), retry=retry)
        return api.describe_field_names(result)

    def test_connection(self) -> tuple[bool, str]:
        """Get a new token and make one cheap call (describe leads), each tried once, so the answer
        comes within seconds whatever is wrong."""
        self._read_timeout_cap = api.CONNECT_TIMEOUT_SECONDS
        try:
            settings = self.settings
            _TOKENS.clear()
            fields = self.describe(ObjectType.LEADS, retry=False)["fields"]
        except Exception as exc:
            return False, api.redact(str(exc) or type(exc).__name__, *self._secrets())
        finally:
            self._read_timeout_cap = None
        return True, f"Connected to Marketo at {settings.rest_url} ({len(fields)} lead fields visible)"

    def _secrets(self) -> tuple[str, ...]:
        return (self._settings.client_secret,) if self._settings is not None else ()

    # ---- async transport (triggerer) ---------------------------------------------------------

    async def _arun(self, make_flow: Callable[[], api.Flow[T]]) -> T:
        """:meth:`_run` for the event loop: the same flows and retry policy over a shared
        ``httpx.AsyncClient``."""
        return await tenacity.AsyncRetrying(**self._retry_kwargs())(self._arun_once, make_flow)

    async def _arun_once(self, make_flow: Callable[[], api.Flow[T]]) -> T:
        flow = make_flow()
        try:
            step = next(flow)
            while True:
                try:
                    reply: Any = await (
                        self._atoken(step.stale) if isinstance(step, NeedToken) else self._asend(step)
                    )
                except MarketoError as exc:
                    step = flow.throw(exc)
                    continue
                step = flow.send(reply)
        except StopIteration as stop:
            return stop.value

    async def _atoken(self, stale: str | None) -> str:
        settings = await self.aget_settings()
        key = settings.cache_key
        if stale:
            _TOKENS.forget(key, stale)
        if token := _TOKENS.fresh(key, time.monotonic()):
            return token
        async with _loop_shared().token_lock(key):
            if token := _TOKENS.fresh(key, time.monotonic()):
                return token
            started = time.monotonic()
            fetched = api.read_token_answer(
                await self._asend(api.token_call(settings)), started, settings.conn_id
            )
            await amask_secret(fetched.access_token)
            _TOKENS.store(key, fetched)
            return fetched.access_token

    async def _asend(self, call: Call) -> Answer:
        if (wait := self._pace(call)) > 0:
            await asyncio.sleep(wait)
        settings = await self.aget_settings()
        shared = _loop_shared()
        client = await shared.client(settings)
        try:
            async with shared.calls:  # waiters queue here, not inside httpx's pool (costly to scan)
                response = await client.request(
                    call.method, call.url, params=call.params, headers=call.headers
                )
        except httpx.HTTPError as exc:
            error = transport_error(exc, call)
            if error.failure.sent:
                self._count(call)
            raise error from None
        self._count(call)
        return Answer(response.status_code, response.headers, text=response.text)

    async def abatch_status(self, target: ImportTarget, batch_id: int) -> BatchStatus:
        """Async :meth:`batch_status`, for the triggerer."""
        call = _status_call(await self.aget_settings(), target, batch_id)
        entry = await self._arun(lambda: api.call_flow(call, _batch_entry(call)))
        return BatchStatus.from_entry(target.object_type, entry)

    async def aget_import_status(
        self, object_type: str | ObjectType, batch_id: int, *, custom_object_name: str | None = None
    ) -> dict[str, Any]:
        """Async :meth:`get_import_status`."""
        target = ImportTarget.of(object_type, custom_object_name=custom_object_name)
        call = _status_call(await self.aget_settings(), target, batch_id)
        return await self._arun(lambda: api.call_flow(call, _batch_entry(call)))

    # ---- connection form (Airflow 3.1; 3.2+ reads provider info) -------------------------------

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """The extra fields of the connection form."""
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import StringField

        return {
            name: StringField(
                lazy_gettext(spec["label"]), widget=BS3TextFieldWidget(), description=spec["description"]
            )
            for name, spec in CONN_FIELDS.items()
        }

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Relabelled and hidden standard fields."""
        return {
            "hidden_fields": list(UI_FIELD_BEHAVIOUR["hidden-fields"]),
            "relabeling": dict(UI_FIELD_BEHAVIOUR["relabeling"]),
            "placeholders": dict(UI_FIELD_BEHAVIOUR["placeholders"]),
        }


def _status_call(settings: ConnectionSettings, target: ImportTarget, batch_id: int) -> Call:
    return Call("GET", settings.url(target.batch_path(batch_id, "status")), f"status of batch {batch_id}")


def _batch_entry(call: Call) -> Callable[[Answer], dict[str, Any]]:
    return lambda answer: api.read_batch(answer, call.path)


def _read_settings(
    conn_id: str, host: Any, login: Any, password: Any, extra: dict[str, Any]
) -> ConnectionSettings:
    settings = api.connection_settings(conn_id, host=host, login=login, password=password, extra=extra)
    if isinstance(settings.verify, str) and not os.path.exists(settings.verify):
        raise MarketoConnectionConfigError(
            f"Airflow connection {conn_id!r}: extra 'verify' names {settings.verify!r}, which does not exist; "
            "give true, false or the path of a CA bundle"
        )
    return settings


def _mask(secret: str) -> None:
    from airflow.sdk.log import mask_secret

    mask_secret(secret)


def _chunks(response: requests.Response, call: Call) -> Iterator[bytes]:
    """A streamed body; a connection that breaks mid-way is a transport error like any other."""
    try:
        yield from response.iter_content(chunk_size=64 * 1024)
    except requests.RequestException as exc:
        raise transport_error(exc, call) from None
    finally:
        response.close()


# ---- transport errors ------------------------------------------------------------------------


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
    if isinstance(exc, requests.Timeout | httpx.TimeoutException):
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


# ---- what a triggerer's triggers share ------------------------------------------------------


class _LoopShared:
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
                    context = await asyncio.to_thread(_tls_context, settings.verify)
                    client = httpx.AsyncClient(
                        verify=context,
                        timeout=httpx.Timeout(settings.timeout, connect=settings.connect_timeout),
                        headers={"User-Agent": USER_AGENT},
                        limits=httpx.Limits(max_connections=MAX_ASYNC_CONNECTIONS),
                    )
                    self._clients[key] = client
        return client

    async def settings(self, hook: MarketoHook) -> ConnectionSettings:
        conn_id = hook.marketo_conn_id
        cached = self._settings.get(conn_id)
        now = time.monotonic()
        if (
            cached is None
            or now - cached[0] > SETTINGS_TTL_SECONDS
            or (cached[1].done() and cached[1].exception() is not None)
        ):
            future: asyncio.Future[ConnectionSettings] = asyncio.ensure_future(_aread_settings(hook))
            self._settings[conn_id] = cached = (now, future)
        return await asyncio.shield(cached[1])

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()


_LOOPS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopShared] = weakref.WeakKeyDictionary()


def _loop_shared() -> _LoopShared:
    loop = asyncio.get_running_loop()
    shared = _LOOPS.get(loop)
    if shared is None:
        shared = _LOOPS[loop] = _LoopShared()
    return shared


async def aclose_shared_clients() -> None:
    """Close the clients the hooks on the running loop share (tests, benchmarks)."""
    shared = _LOOPS.get(asyncio.get_running_loop())
    if shared is not None:
        await shared.aclose()


_TLS_CONTEXTS: dict[Any, ssl.SSLContext] = {}
_TLS_LOCK = threading.Lock()


def _tls_context(verify: bool | str) -> ssl.SSLContext:
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


async def _aread_settings(hook: MarketoHook) -> ConnectionSettings:
    conn_id = hook.marketo_conn_id
    try:
        conn = await hook.aget_connection(conn_id)
        reader = getattr(conn, "aextra_dejson", None)
        extra = await reader() if reader is not None else conn.extra_dejson
    except Exception as exc:
        # `airflow dags test` runs triggers in-process over a channel without async sends, where
        # the async lookup of a connection stored in the database fails; a thread can ask the
        # sync way without blocking the loop.
        hook.log.debug("async connection lookup failed (%s); reading %s in a thread", exc, conn_id)
        conn = await asyncio.to_thread(hook.get_connection, conn_id)
        extra = await asyncio.to_thread(lambda: conn.extra_dejson)
    settings = _read_settings(conn_id, conn.host, conn.login, conn.password, extra)
    await amask_secret(settings.client_secret)
    return settings


# ---- uploads ----------------------------------------------------------------------------------


class _SizedUpload:
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
def _open_upload(file: str | os.PathLike[str] | IO[bytes]) -> Iterator[tuple[IO[bytes], int, str]]:
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
