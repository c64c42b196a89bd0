"""MarketoHook: the one place that talks to Marketo.

Request building and answer reading live in :mod:`marketo_provider.api`; this module only sends:
synchronously with a pooled ``requests`` session (uploads streamed with requests-toolbelt), and
asynchronously with ``httpx`` for the triggerer. Both share the token cache and the retry policy.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import IO, Any, BinaryIO, TypeVar

import httpx
import requests
import tenacity
from airflow.sdk import BaseHook
from requests_toolbelt import MultipartEncoder, MultipartEncoderMonitor

from marketo_provider import api
from marketo_provider._compat import amask_secret
from marketo_provider.api import (
    BatchStatus,
    ConnectionSettings,
    FileFormat,
    ImportTarget,
    MarketoError,
    MarketoSubmitOutcomeUnknownError,
    MarketoTokenError,
    MarketoTransientError,
    MarketoValueError,
    ObjectType,
    Token,
)
from marketo_provider.get_provider_info import CONN_FIELDS, UI_FIELD_BEHAVIOUR

T = TypeVar("T")

# Tokens are shared by every hook in the process for the same identity URL and client id, so a
# worker running many tasks asks for one token per token lifetime, not one per task or request.
_TOKENS: dict[tuple[str, str], Token] = {}
_TOKENS_LOCK = threading.Lock()
_TOKEN_FETCH_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_ASYNC_TOKEN_LOCKS: dict[tuple[int, tuple[str, str]], asyncio.Lock] = {}

_PROGRESS_STEP_BYTES = 1024 * 1024


def _cached_token(key: tuple[str, str], now: float) -> Token | None:
    with _TOKENS_LOCK:
        token = _TOKENS.get(key)
    return token if token is not None and token.fresh_at(now) else None


def _store_token(key: tuple[str, str], token: Token) -> None:
    with _TOKENS_LOCK:
        _TOKENS[key] = token


def _forget_token(key: tuple[str, str], access_token: str) -> None:
    with _TOKENS_LOCK:
        if (cached := _TOKENS.get(key)) is not None and cached.access_token == access_token:
            del _TOKENS[key]


def clear_token_cache() -> None:
    """Forget every cached token (tests; credential rotation)."""
    with _TOKENS_LOCK:
        _TOKENS.clear()


def _sent_nothing(exc: BaseException) -> bool:
    """Whether a transport error happened before any byte of the request left (safe to resend)."""
    if isinstance(exc, requests.ConnectTimeout | httpx.ConnectError | httpx.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError):
        text = repr(exc)
        return "NewConnectionError" in text or "Failed to establish" in text or "NameResolution" in text
    return False


def _maybe_received(exc: BaseException) -> bool:
    """Whether Marketo may have received (and acted on) a request that failed this way: a gateway
    answered 502/504, or the connection broke after bytes of the request were sent. Such a request
    is resent only when resending it is harmless."""
    if isinstance(exc, MarketoTransientError):
        return exc.code in api.GATEWAY_AFTER_SEND_CODES
    if isinstance(exc, requests.RequestException | httpx.TransportError):
        return not _sent_nothing(exc)
    return False


class MarketoHook(BaseHook):
    """Talks to Adobe Marketo Engage's REST API with an Airflow connection of type ``marketo``.

    The connection's host is the REST API endpoint (``https://123-ABC-456.mktorest.com``; a
    trailing ``/rest`` is accepted; no scheme means https), login the client id and password the
    client secret. Extras: ``identity_url`` (default ``<host>/identity``), ``timeout`` (seconds,
    default 60), ``verify`` (true, false or a CA bundle path).

    Transient failures (604, 608, 611, 713, 719, 1019, HTTP 502/503/504, dropped connections) are
    retried with exponential backoff and jitter; 606 waits out Marketo's 20 second window; 615
    backs off; 601/602 renew the token and retry once; 607 and every other code fail at once with
    Marketo's code and message. An upload whose connection breaks after it was sent is not sent
    again (it may have been accepted): :class:`~marketo_provider.api.MarketoSubmitOutcomeUnknownError`.

    :param marketo_conn_id: the Airflow connection id.
    :param max_attempts: attempts per call, the first included (default 8).
    :param max_retry_seconds: total time one call may spend retrying (default 300).
    :param retry_base_seconds: the first backoff step; each retry doubles it, up to 60 s.
    :param rate_limit_wait_seconds: how long a 606 answer waits (Marketo's window: 20 s).
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
        self._settings: ConnectionSettings | None = None
        self._session: requests.Session | None = None

    # ---- connection --------------------------------------------------------------------------

    @property
    def settings(self) -> ConnectionSettings:
        """The connection, read once (sync)."""
        if self._settings is None:
            conn = self.get_connection(self.marketo_conn_id)
            self._settings = self._read_settings(conn.host, conn.login, conn.password, conn.extra_dejson)
        return self._settings

    async def aget_settings(self) -> ConnectionSettings:
        """The connection, read without blocking the event loop (triggerer)."""
        if self._settings is None:
            conn = await self.aget_connection(self.marketo_conn_id)
            reader = getattr(conn, "aextra_dejson", None)
            extra = await reader() if reader is not None else json.loads(conn.extra or "{}")
            self._settings = self._read_settings(conn.host, conn.login, conn.password, extra)
        return self._settings

    def _read_settings(
        self, host: Any, login: Any, password: Any, extra: dict[str, Any]
    ) -> ConnectionSettings:
        settings = api.connection_settings(
            self.marketo_conn_id, host=host, login=login, password=password, extra=extra
        )
        from airflow.sdk.log import mask_secret

        mask_secret(settings.client_secret)
        return settings

    def get_conn(self) -> requests.Session:
        """The hook's pooled HTTP session."""
        if self._session is None:
            session = requests.Session()
            session.verify = self.settings.verify
            session.headers["User-Agent"] = "airflow-provider-marketo"
            self._session = session
        return self._session

    # ---- retry policy (shared by both transports) --------------------------------------------

    def _retry_kwargs(self, retryable: Callable[[BaseException], bool]) -> dict[str, Any]:
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
                "Marketo call failed (%s: %s); retry %d of %d in %.1f s",
                type(exc).__name__,
                exc,
                state.attempt_number,
                self.max_attempts - 1,
                state.next_action.sleep if state.next_action else 0.0,
            )

        return {
            "retry": tenacity.retry_if_exception(retryable),
            "stop": tenacity.stop_after_attempt(self.max_attempts)
            | tenacity.stop_after_delay(self.max_retry_seconds),
            "wait": wait,
            "before_sleep": before_sleep,
            "reraise": True,
        }

    @staticmethod
    def _retryable(resend_safe: bool) -> Callable[[BaseException], bool]:
        def check(exc: BaseException) -> bool:
            if not resend_safe and _maybe_received(exc):
                return False
            return api.is_retryable(exc) or isinstance(exc, requests.RequestException | httpx.TransportError)

        return check

    # ---- tokens (sync) -----------------------------------------------------------------------

    def get_token(self, *, force: bool = False) -> str:
        """A valid access token, from the process-wide cache or the identity service."""
        settings = self.settings
        key = settings.cache_key
        if not force and (token := _cached_token(key, time.monotonic())):
            return token.access_token
        with _TOKENS_LOCK:
            fetch_lock = _TOKEN_FETCH_LOCKS.setdefault(key, threading.Lock())
        with fetch_lock:  # one identity call at a time per client, however many threads ask
            if not force and (token := _cached_token(key, time.monotonic())):
                return token.access_token
            token = tenacity.Retrying(**self._retry_kwargs(self._retryable(True)))(
                self._fetch_token, settings
            )
            from airflow.sdk.log import mask_secret

            mask_secret(token.access_token)
            _store_token(key, token)
            return token.access_token

    def _fetch_token(self, settings: ConnectionSettings) -> Token:
        started = time.monotonic()
        answer = self.get_conn().post(
            settings.token_url,
            data=api.token_form(settings.client_id, settings.client_secret),
            timeout=settings.timeout,
        )
        return api.read_token_answer(
            answer.status_code, _json_or_none(answer.text), started, settings.conn_id
        )

    # ---- one call (sync) ---------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        read: Callable[[requests.Response], T],
        *,
        params: dict[str, str] | None = None,
        body: Callable[[], tuple[Any, dict[str, str]]] | None = None,
        resend_safe: bool = True,
        stream: bool = False,
        timeout: float | tuple[float, float] | None = None,
    ) -> T:
        """Send one REST call with retries; ``read`` turns the answer into a value or raises."""
        url = self.settings.rest_url + path
        retrying = tenacity.Retrying(**self._retry_kwargs(self._retryable(resend_safe)))
        return retrying(self._call_once, method, url, read, params, body, stream, timeout)

    def _call_once(
        self,
        method: str,
        url: str,
        read: Callable[[requests.Response], T],
        params: dict[str, str] | None,
        body: Callable[[], tuple[Any, dict[str, str]]] | None,
        stream: bool,
        timeout: float | tuple[float, float] | None,
    ) -> T:
        token = self.get_token()
        for renewed in (False, True):
            data, extra_headers = body() if body is not None else (None, {})
            answer = self.get_conn().request(
                method,
                url,
                params=params,
                data=data,
                headers={**api.bearer_header(token), **extra_headers},
                timeout=timeout or self.settings.timeout,
                stream=stream,
            )
            try:
                return read(answer)
            except MarketoTokenError:
                answer.close()
                if renewed:
                    raise
                _forget_token(self.settings.cache_key, token)
                token = self.get_token(force=True)
        raise AssertionError("unreachable")  # pragma: no cover

    # ---- imports -----------------------------------------------------------------------------

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
        """Upload one file (a path or a seekable binary file object, under Marketo's size limit)
        as a stream and create an import job; returns Marketo's result entry (``batchId``,
        ``status``, and ``importId`` or ``objectApiName``).

        Raises :class:`~marketo_provider.api.MarketoQueueFullError` (1016) when Marketo's import
        queue is full: wait for a slot and submit again.
        """
        target = ImportTarget.of(object_type, program_id=program_id, custom_object_name=custom_object_name)
        fmt = FileFormat.parse(file_format)
        params = api.import_query_params(
            target,
            file_format=fmt,
            lookup_field=lookup_field,
            list_id=list_id,
            partition_name=partition_name,
            program_member_status=program_member_status,
        )
        with _open_upload(file) as (stream, size, default_name):
            if size > api.MAX_IMPORT_FILE_BYTES:
                raise MarketoValueError(
                    f"import file {default_name!r} is {size:,} bytes; Marketo takes files under "
                    f"{api.MAX_IMPORT_FILE_BYTES:,} bytes. The bulk import operator cuts larger sources into parts."
                )
            name = filename or default_name
            start = stream.tell()
            self.log.info(
                "Uploading %s (%s bytes, %s) to Marketo as %s", name, f"{size:,}", fmt.value, target.label
            )

            def body() -> tuple[Any, dict[str, str]]:
                stream.seek(start)
                encoder = MultipartEncoder(
                    fields={"file": (name, _SizedUpload(stream, size), fmt.content_type)}
                )
                monitor = MultipartEncoderMonitor(encoder, self._progress_logger(name, encoder.len))
                return monitor, {"Content-Type": monitor.content_type}

            try:
                entry = self._call(
                    "POST",
                    target.create_path,
                    lambda answer: api.read_batch_answer(_read_json(answer)),
                    params=params,
                    body=body,
                    resend_safe=False,
                    timeout=(self.settings.timeout, max(self.settings.timeout, 300.0)),
                )
            except (requests.RequestException, MarketoTransientError) as exc:
                if not _maybe_received(exc):
                    raise
                raise MarketoSubmitOutcomeUnknownError(
                    f"the upload of {name!r} to Marketo ({target.label}) was sent but no answer came back "
                    f"({exc}). Marketo may or may not have created an import for it; it was not sent again "
                    "to avoid importing the same rows twice."
                ) from exc
        self.log.info("Marketo accepted %s: batch %s, %s", name, entry.get("batchId"), entry.get("status"))
        return entry

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

    def get_import_status(
        self, object_type: str | ObjectType, batch_id: int, *, custom_object_name: str | None = None
    ) -> dict[str, Any]:
        """Marketo's status entry of one batch (``status``, and counts once it is done)."""
        path = api.batch_path(object_type, batch_id, "status", custom_object_name)
        return self._call("GET", path, lambda a: api.read_batch_answer(_read_json(a)))

    def get_batch_status(
        self, object_type: str | ObjectType, batch_id: int, *, custom_object_name: str | None = None
    ) -> BatchStatus:
        """:meth:`get_import_status`, read into a :class:`~marketo_provider.api.BatchStatus`."""
        entry = self.get_import_status(object_type, batch_id, custom_object_name=custom_object_name)
        return BatchStatus.from_entry(ObjectType.parse(object_type), entry)

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
        path = api.result_file_path(object_type, batch_id, kind, custom_object_name)
        start = dest.tell() if dest.seekable() else None

        def read(answer: requests.Response) -> int | None:
            if answer.status_code == 404:
                answer.close()
                return None
            if "json" in answer.headers.get("content-type", ""):
                api.read_envelope(_read_json(answer))  # an error in Marketo's envelope
            api.raise_for_http_status(answer.status_code)
            if start is not None:
                dest.seek(start)
                dest.truncate()
            written = 0
            with answer:
                for chunk in answer.iter_content(chunk_size=64 * 1024):
                    dest.write(chunk)
                    written += len(chunk)
            return written

        return self._call("GET", path, read, stream=True, resend_safe=start is not None)

    def get_result_file(
        self,
        object_type: str | ObjectType,
        batch_id: int,
        kind: str,
        *,
        custom_object_name: str | None = None,
    ) -> bytes | None:
        """A batch's ``failures`` or ``warnings`` file as bytes (small files), or None when there is none."""
        import io

        buffer = io.BytesIO()
        written = self.download_result_file(
            object_type, batch_id, kind, buffer, custom_object_name=custom_object_name
        )
        return None if written is None else buffer.getvalue()

    def describe(
        self, object_type: str | ObjectType, *, custom_object_name: str | None = None
    ) -> dict[str, Any]:
        """The fields an import file may name (``fields``) and the object's ``dedupe_fields``."""
        kind = ObjectType.parse(object_type)
        path = api.describe_path(kind, custom_object_name)
        if kind is ObjectType.CUSTOM_OBJECTS and not custom_object_name:
            raise MarketoValueError("custom_object_name is required to describe a custom object")
        result = self._call("GET", path, lambda a: api.read_envelope(_read_json(a)))
        return api.describe_field_names(kind, result)

    def test_connection(self) -> tuple[bool, str]:
        """Get a token and make one cheap call (describe leads)."""
        try:
            self.get_token(force=True)
            fields = self.describe(ObjectType.LEADS)["fields"]
        except Exception as exc:
            return False, _safe_reason(exc, self._settings)
        return True, f"Connected to Marketo at {self.settings.rest_url} ({len(fields)} lead fields visible)"

    # ---- async (triggerer) -------------------------------------------------------------------

    async def aget_token(self, client: httpx.AsyncClient, *, force: bool = False) -> str:
        settings = await self.aget_settings()
        key = settings.cache_key
        if not force and (token := _cached_token(key, time.monotonic())):
            return token.access_token
        lock = _ASYNC_TOKEN_LOCKS.setdefault((id(asyncio.get_running_loop()), key), asyncio.Lock())
        async with lock:
            if not force and (token := _cached_token(key, time.monotonic())):
                return token.access_token
            retrying = tenacity.AsyncRetrying(**self._retry_kwargs(self._retryable(True)))
            fetched: Token = await retrying(self._afetch_token, client, settings)
            await amask_secret(fetched.access_token)
            _store_token(key, fetched)
            return fetched.access_token

    async def _afetch_token(self, client: httpx.AsyncClient, settings: ConnectionSettings) -> Token:
        started = time.monotonic()
        answer = await client.post(
            settings.token_url, data=api.token_form(settings.client_id, settings.client_secret)
        )
        return api.read_token_answer(
            answer.status_code, _json_or_none(answer.text), started, settings.conn_id
        )

    def async_client(self, settings: ConnectionSettings) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` for this connection (timeouts and TLS verification set)."""
        return httpx.AsyncClient(
            timeout=settings.timeout,
            verify=settings.verify,
            headers={"User-Agent": "airflow-provider-marketo"},
        )

    @asynccontextmanager
    async def aclient(self, client: httpx.AsyncClient | None = None) -> AsyncIterator[httpx.AsyncClient]:
        """``client`` when one is given (a caller that polls again and again keeps one); otherwise a
        new client for this connection, closed on leaving."""
        if client is not None:
            yield client
            return
        async with self.async_client(await self.aget_settings()) as own:
            yield own

    async def aget_import_status(
        self,
        object_type: str | ObjectType,
        batch_id: int,
        *,
        custom_object_name: str | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> dict[str, Any]:
        """Async :meth:`get_import_status`, for the triggerer."""
        url = (await self.aget_settings()).rest_url + api.batch_path(
            object_type, batch_id, "status", custom_object_name
        )
        async with self.aclient(client) as using:
            return await self._acall(using, url)

    async def aget_batch_statuses(
        self,
        object_type: str | ObjectType,
        batch_ids: list[int],
        *,
        custom_object_name: str | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> list[BatchStatus]:
        """The statuses of several batches over one client (see :meth:`aclient`), in the order given."""
        kind = ObjectType.parse(object_type)
        async with self.aclient(client) as using:
            entries = [
                await self.aget_import_status(kind, b, custom_object_name=custom_object_name, client=using)
                for b in batch_ids
            ]
        return [BatchStatus.from_entry(kind, e) for e in entries]

    async def _acall(self, client: httpx.AsyncClient, url: str) -> dict[str, Any]:
        retrying = tenacity.AsyncRetrying(**self._retry_kwargs(self._retryable(True)))
        return await retrying(self._acall_once, client, url)

    async def _acall_once(self, client: httpx.AsyncClient, url: str) -> dict[str, Any]:
        token = await self.aget_token(client)
        for renewed in (False, True):
            answer = await client.get(url, headers=api.bearer_header(token))
            try:
                api.raise_for_http_status(answer.status_code, answer.text)
                return api.read_batch_answer(_json_or_none(answer.text))
            except MarketoTokenError:
                if renewed:
                    raise
                _forget_token((await self.aget_settings()).cache_key, token)
                token = await self.aget_token(client, force=True)
        raise AssertionError("unreachable")  # pragma: no cover

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


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _read_json(answer: requests.Response) -> Any:
    api.raise_for_http_status(answer.status_code, answer.text)
    body = _json_or_none(answer.text)
    if body is None:
        raise MarketoError(f"Marketo answered HTTP {answer.status_code} with something other than JSON")
    return body


def _safe_reason(exc: Exception, settings: ConnectionSettings | None) -> str:
    text = str(exc) or type(exc).__name__
    if settings is not None and settings.client_secret:
        text = text.replace(settings.client_secret, "***")
    return text


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
