"""MarketoHook: the one place that talks to Marketo.

What to send and how to read the answer is decided in :mod:`marketo_provider.api`
(:func:`~marketo_provider.api.call_flow`: token, renewal, what may be resent, retries); this
module only sends: synchronously with a pooled ``requests`` session (uploads streamed with
requests-toolbelt), and asynchronously with ``httpx`` for the triggerer. Both drive the same flows
and share one token cache per process.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
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
from marketo_provider.hooks.transport import (
    TOKENS,
    USER_AGENT,
    SizedUpload,
    aclose_shared_clients,
    aread_body,
    clear_token_cache,
    install_log_redaction,
    loop_shared,
    open_upload,
    pacer,
    read_body,
    response_chunks,
    token_fetch_lock,
    transport_error,
)

__all__ = ["MarketoHook", "aclose_shared_clients", "clear_token_cache"]

T = TypeVar("T")

_PROGRESS_STEP_BYTES = 1024 * 1024


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

    Every answer is read within a size limit fit for its call (JSON answers
    :data:`~marketo_provider.api.MAX_JSON_ANSWER_BYTES`, describe
    :data:`~marketo_provider.api.MAX_DESCRIBE_ANSWER_BYTES`; result files are streamed to their
    destination, up to :data:`~marketo_provider.api.MAX_RESULT_FILE_BYTES`). ``deadline`` (epoch
    seconds, set by an import to its own) bounds every call, its answer's body included: no call is
    sent after it, and one still being answered then ends with a
    :class:`~marketo_provider.api.MarketoTransportError` (``failure`` ``deadline``).
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
        install_log_redaction()
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
        #: Epoch seconds by which every call must have ended, its answer included (the import's deadline).
        self.deadline: float | None = None
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
            api.remember_secret(self._settings.client_secret)
        return self._settings

    async def aget_settings(self) -> ConnectionSettings:
        """The connection, read without blocking the event loop, shared by every hook on the loop
        for a few minutes (a triggerer full of import triggers reads it once, not once each)."""
        if self._settings is None:
            self._settings = await loop_shared().settings(self.marketo_conn_id, self._aread_settings)
        return self._settings

    async def _aread_settings(self) -> ConnectionSettings:
        """Read the connection without blocking the event loop."""
        conn_id = self.marketo_conn_id
        try:
            conn = await self.aget_connection(conn_id)
            reader = getattr(conn, "aextra_dejson", None)
            extra = await reader() if reader is not None else conn.extra_dejson
        except Exception as exc:
            # `airflow dags test` runs triggers in-process over a channel without async sends, where
            # the async lookup of a connection stored in the database fails; a thread can ask the
            # sync way without blocking the loop.
            self.log.debug("async connection lookup failed (%s); reading %s in a thread", exc, conn_id)
            conn = await asyncio.to_thread(self.get_connection, conn_id)
            extra = await asyncio.to_thread(lambda: conn.extra_dejson)
        settings = _read_settings(conn_id, conn.host, conn.login, conn.password, extra)
        await amask_secret(settings.client_secret)
        api.remember_secret(settings.client_secret)
        return settings

    # ---- uploads ----------------------------------------------------------------------------------

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
            pause = api.retry_wait_seconds(
                exc,
                state.attempt_number,
                base=self.retry_base_seconds,
                rate_window=self.rate_limit_wait_seconds,
            )
            return pause if self.deadline is None else max(0.0, min(pause, self.deadline - time.time()))

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
            | tenacity.stop_after_delay(self.max_retry_seconds)
            | _PastDeadline(self),
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
        if token := _cached_token(settings, stale):
            return token
        with token_fetch_lock(settings.cache_key):
            if token := _cached_token(settings, None):
                return token
            started = time.monotonic()
            fetched = api.read_token_answer(self._send(api.token_call(settings)), started, settings.conn_id)
            _mask(fetched.access_token)
            api.remember_secret(fetched.access_token)
            TOKENS.store(settings.cache_key, fetched)
            return fetched.access_token

    def _pace(self, call: Call) -> float:
        """Seconds to wait before sending ``call`` (identity calls do not count against the limit)."""
        if call.token is None or not self.calls_per_window:
            return 0.0
        return pacer(call.host, self.calls_per_window, self.rate_limit_wait_seconds).reserve(time.monotonic())

    def _send(self, call: Call) -> Answer:
        settings = self.settings
        if (wait := self._pace(call)) > 0:
            time.sleep(wait)
        read_timeout = self._read_timeout(call, settings)
        deadline = self.deadline
        if deadline is not None:
            left = deadline - time.time()
            if left <= 0:
                raise MarketoTransportError(TransportFailure.DEADLINE_PASSED, call.purpose, call.host)
            read_timeout = min(read_timeout, left)
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
                timeout=(min(settings.connect_timeout, read_timeout), read_timeout),
                stream=True,  # read below, within the call's size limit and the deadline
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
            chunks = response_chunks(response, call, limit=api.MAX_RESULT_FILE_BYTES, deadline=deadline)
            return Answer(response.status_code, response.headers, chunks=chunks)
        return Answer(
            response.status_code, response.headers, text=read_body(response, call, deadline=deadline)
        )

    def _read_timeout(self, call: Call, settings: ConnectionSettings) -> float:
        timeout = call.read_timeout or settings.timeout
        return min(timeout, self._read_timeout_cap) if self._read_timeout_cap else timeout

    def _count(self, call: Call) -> None:
        if call.token is not None:
            self.api_calls += 1

    def _multipart(self, upload: api.Upload) -> MultipartEncoderMonitor:
        encoder = MultipartEncoder(
            fields={"file": (upload.filename, SizedUpload(upload.open(), upload.size), upload.content_type)}
        )
        return MultipartEncoderMonitor(
            encoder, self._progress_logger(upload.filename, upload.size, encoder.len)
        )

    def _progress_logger(
        self, name: str, size: int, encoded: int
    ) -> Callable[[MultipartEncoderMonitor], None]:
        """Logs the upload of a file of ``size`` bytes (``encoded`` with its multipart framing) at
        each quarter, the last line when every byte is sent; files under 2 MiB are not reported."""
        framing = encoded - size
        quarters = [0]

        def report(monitor: MultipartEncoderMonitor) -> None:
            if size < 2 * _PROGRESS_STEP_BYTES:
                return
            sent = size if monitor.bytes_read >= encoded else min(size, max(0, monitor.bytes_read - framing))
            quarter = 4 * sent // size
            if quarter > quarters[0]:
                quarters[0] = quarter
                self.log.info(
                    "Uploading %s: %d%% (%s of %s bytes)", name, 25 * quarter, f"{sent:,}", f"{size:,}"
                )

        return report

    # ---- imports -----------------------------------------------------------------------------

    def submit_import(
        self,
        object_type: str | ObjectType | ImportSpec,
        file: str | os.PathLike[str] | IO[bytes],
        *,
        file_format: str | None = None,
        lookup_field: str | None = None,
        list_id: int | str | None = None,
        partition_name: str | None = None,
        program_id: int | str | None = None,
        program_member_status: str | None = None,
        custom_object_name: str | None = None,
        filename: str | None = None,
    ) -> dict[str, Any]:
        """Upload one file (a path or a seekable binary file object, under Marketo's size limit) as
        a stream and create an import job; returns Marketo's result entry (``batchId``,
        ``status``, and ``importId`` or ``objectApiName``).

        The import is the object type with the keyword arguments (checked before anything is
        sent), or an :class:`~marketo_provider.api.ImportSpec` built earlier. Raises
        :class:`~marketo_provider.api.MarketoQueueFullError` (1016) when Marketo's import queue is
        full: wait for a slot and submit again.
        """
        options: dict[str, Any] = {
            "file_format": file_format,
            "lookup_field": lookup_field,
            "list_id": list_id,
            "partition_name": partition_name,
            "program_id": program_id,
            "program_member_status": program_member_status,
            "custom_object_name": custom_object_name,
        }
        if isinstance(object_type, ImportSpec):
            given = [name for name, value in options.items() if value is not None]
            if given:
                raise MarketoValueError(
                    f"{', '.join(given)} given beside an ImportSpec; the spec already says what to import"
                )
            spec = object_type
        else:
            options["file_format"] = file_format or "csv"
            spec = ImportSpec.of(object_type, **options)
        settings = self.settings
        with open_upload(file) as (stream, size, default_name):
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

    def get_import_status(
        self,
        object_type: str | ObjectType | ImportTarget,
        batch_id: int,
        *,
        custom_object_name: str | None = None,
    ) -> dict[str, Any]:
        """Marketo's status entry of one batch (``status``, and counts once it is done); read it
        with :meth:`~marketo_provider.api.BatchStatus.from_entry`."""
        call = _status_call(self.settings, _target(object_type, custom_object_name), batch_id)
        return self._run(lambda: api.call_flow(call, _batch_entry(call, batch_id)))

    async def aget_import_status(
        self,
        object_type: str | ObjectType | ImportTarget,
        batch_id: int,
        *,
        custom_object_name: str | None = None,
    ) -> dict[str, Any]:
        """:meth:`get_import_status` for the event loop (the triggerer)."""
        call = _status_call(await self.aget_settings(), _target(object_type, custom_object_name), batch_id)
        return await self._arun(lambda: api.call_flow(call, _batch_entry(call, batch_id)))

    def download_result_file(
        self,
        object_type: str | ObjectType | ImportTarget,
        batch_id: int,
        kind: str,
        dest: BinaryIO,
        *,
        custom_object_name: str | None = None,
    ) -> int | None:
        """Stream a batch's ``failures`` or ``warnings`` file into ``dest`` (at most
        :data:`~marketo_provider.api.MAX_RESULT_FILE_BYTES`, every secret this process holds replaced
        by ``***``); returns the bytes written, or None when Marketo has no such file (custom objects
        answer 404)."""
        target = _target(object_type, custom_object_name)
        path = target.result_file_path(batch_id, kind)
        call = Call("GET", self.settings.url(path), f"{kind} file of batch {batch_id}", stream=True)
        start = dest.tell() if dest.seekable() else None

        def read(answer: Answer) -> int | None:
            if not api.read_result_file_answer(answer, target, call):
                return None
            if start is not None:
                dest.seek(start)
                dest.truncate()
            written = 0
            body = answer.chunks if answer.chunks is not None else [answer.text.encode("utf-8")]
            for chunk in api.without_secrets(body):
                dest.write(chunk)
                written += len(chunk)
            return written

        return self._run(lambda: api.call_flow(call, read, resend_safe=start is not None))

    def describe(
        self, object_type: str | ObjectType, *, custom_object_name: str | None = None, retry: bool = True
    ) -> dict[str, Any]:
        """The fields an import file may name (``fields``) and the object's ``dedupe_fields``."""
        target = ImportTarget.of(object_type, custom_object_name=custom_object_name)
        path = target.describe_path
        call = Call(
            "GET",
            self.settings.url(path),
            f"describe of {target.label}",
            max_bytes=api.MAX_DESCRIBE_ANSWER_BYTES,
        )
        result = self._run(lambda: api.call_flow(call, lambda a: api.read_json_answer(a, call)), retry=retry)
        return api.describe_field_names(result, call.purpose)

    def test_connection(self) -> tuple[bool, str]:
        """Get a new token and make one cheap call (describe leads), each tried once, so the answer
        comes within seconds whatever is wrong."""
        self._read_timeout_cap = api.CONNECT_TIMEOUT_SECONDS
        try:
            settings = self.settings
            TOKENS.clear()
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
        """:meth:`_token` for the event loop: the triggers of one loop wait on one identity call."""
        settings = await self.aget_settings()
        if token := _cached_token(settings, stale):
            return token
        async with loop_shared().token_lock(settings.cache_key):
            if token := _cached_token(settings, None):
                return token
            started = time.monotonic()
            fetched = api.read_token_answer(
                await self._asend(api.token_call(settings)), started, settings.conn_id
            )
            await amask_secret(fetched.access_token)
            api.remember_secret(fetched.access_token)
            TOKENS.store(settings.cache_key, fetched)
            return fetched.access_token

    async def _asend(self, call: Call) -> Answer:
        if (wait := self._pace(call)) > 0:
            await asyncio.sleep(wait)
        settings = await self.aget_settings()
        shared = loop_shared()
        client = await shared.client(settings)
        left = None if self.deadline is None else self.deadline - time.time()
        if left is not None and left <= 0:
            raise MarketoTransportError(TransportFailure.DEADLINE_PASSED, call.purpose, call.host)
        sending = answered = False
        try:
            async with asyncio.timeout(left):  # the deadline bounds the call, its body included
                async with shared.calls:  # waiters queue here, not inside httpx's pool (costly to scan)
                    sending = True
                    request = client.build_request(
                        call.method, call.url, params=call.params, headers=call.headers
                    )
                    response = await client.send(request, stream=True)
                    answered = True
                    self._count(call)
                    try:
                        text = await aread_body(response, call)
                    finally:
                        await response.aclose()
        except httpx.HTTPError as exc:
            error = transport_error(exc, call)
            if error.failure.sent and not answered:
                self._count(call)
            raise error from None
        except TimeoutError:
            if sending and not answered:
                self._count(call)
            failure = TransportFailure.DEADLINE if sending else TransportFailure.DEADLINE_PASSED
            raise MarketoTransportError(failure, call.purpose, call.host) from None
        return Answer(response.status_code, response.headers, text=text)

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


class _PastDeadline(tenacity.stop.stop_base):
    """Stop retrying once the hook's deadline has passed."""

    def __init__(self, hook: MarketoHook) -> None:
        self.hook = hook

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        return self.hook.deadline is not None and time.time() >= self.hook.deadline


def _target(what: str | ObjectType | ImportTarget, custom_object_name: str | None) -> ImportTarget:
    if isinstance(what, ImportTarget):
        if custom_object_name is not None and custom_object_name != what.custom_object_name:
            raise MarketoValueError("custom_object_name given beside an ImportTarget that names another")
        return what
    return ImportTarget.of(what, custom_object_name=custom_object_name)


def _cached_token(settings: ConnectionSettings, stale: str | None) -> str | None:
    """The process's fresh token for this connection's client, after forgetting ``stale`` (a
    token Marketo just refused)."""
    if stale:
        TOKENS.forget(settings.cache_key, stale)
    return TOKENS.fresh(settings.cache_key, time.monotonic())


def _status_call(settings: ConnectionSettings, target: ImportTarget, batch_id: int) -> Call:
    return Call("GET", settings.url(target.batch_path(batch_id, "status")), f"status of batch {batch_id}")


def _batch_entry(call: Call, batch_id: int | None = None) -> Callable[[Answer], dict[str, Any]]:
    return lambda answer: api.read_batch(answer, call, batch_id)


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


# ---- transport errors ------------------------------------------------------------------------


# ---- what a triggerer's triggers share ------------------------------------------------------
