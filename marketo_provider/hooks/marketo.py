"""MarketoHook: the one place that talks to Marketo, one typed method per operation.

What to send and how to read the answer is decided in :mod:`marketo_provider.api`
(:func:`~marketo_provider.api.call_flow`: token, renewal, what may be resent, retries); the steps
every call goes through are :mod:`~marketo_provider.hooks.flow`'s, performed synchronously by
:mod:`~marketo_provider.hooks.sync_driver` (``requests``, on a worker) and asynchronously by
:mod:`~marketo_provider.hooks.async_driver` (``httpx``, in the triggerer). Both share one token
cache per process (:mod:`~marketo_provider.hooks.shared`).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, BinaryIO

from marketo_provider._compat import amask_secret
from marketo_provider.api import (
    ConnectionSettings,
    ImportKeywords,
    ImportSpec,
    ImportTarget,
    MarketoConnectionConfigError,
    MarketoValueError,
    ObjectType,
)
from marketo_provider.api.answers import (
    describe_field_names,
    read_batch,
    read_json_answer,
    read_result_file_answer,
)
from marketo_provider.api.connection import connection_settings
from marketo_provider.api.import_spec import given_keywords
from marketo_provider.api.limits import (
    CLIENT_CALLS_PER_WINDOW,
    CONNECT_TIMEOUT_SECONDS,
    MAX_DESCRIBE_ANSWER_BYTES,
    MAX_IMPORT_FILE_BYTES,
    RATE_LIMIT_WINDOW_SECONDS,
    UPLOAD_READ_TIMEOUT_FLOOR_SECONDS,
)
from marketo_provider.api.protocol import Answer, Call, Upload, call_flow
from marketo_provider.api.redaction import redact, remember_secret, without_secrets
from marketo_provider.hooks.async_driver import AsyncDriver
from marketo_provider.hooks.connection_form import ConnectionForm
from marketo_provider.hooks.shared import (
    TOKENS,
    aclose_shared_clients,
    clear_token_cache,
    install_log_redaction,
    loop_shared,
)
from marketo_provider.hooks.sync_driver import SyncDriver, mask
from marketo_provider.hooks.uploads import open_upload

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["MarketoHook", "aclose_shared_clients", "clear_token_cache"]


class MarketoHook(ConnectionForm, SyncDriver, AsyncDriver):
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
        rate_limit_wait_seconds: float = RATE_LIMIT_WINDOW_SECONDS,
        calls_per_window: int | None = CLIENT_CALLS_PER_WINDOW,
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
        self._session = None
        self._read_timeout_cap = None

    # ---- connection --------------------------------------------------------------------------

    @property
    def settings(self) -> ConnectionSettings:
        """The connection, read once (sync)."""
        if self._settings is None:
            conn = self.get_connection(self.marketo_conn_id)
            self._settings = _read_settings(
                self.marketo_conn_id, conn.host, conn.login, conn.password, conn.extra_dejson
            )
            mask(self._settings.client_secret)
            remember_secret(self._settings.client_secret)
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
        remember_secret(settings.client_secret)
        return settings

    # ---- operations ----------------------------------------------------------------------------

    def submit_import(
        self,
        object_type: str | ObjectType | ImportSpec,
        file: str | os.PathLike[str] | IO[bytes],
        *,
        filename: str | None = None,
        **keywords: Unpack[ImportKeywords],
    ) -> dict[str, Any]:
        """Upload one file (a path or a seekable binary file object, under Marketo's size limit) as
        a stream and create an import job; returns Marketo's result entry (``batchId``,
        ``status``, and ``importId`` or ``objectApiName``).

        The import is the object type with the keyword arguments of
        :class:`~marketo_provider.api.ImportKeywords` (``file_format``, ``lookup_field``,
        ``list_id``, ``partition_name``, ``program_id``, ``program_member_status``,
        ``custom_object_name``; checked before anything is sent), or an
        :class:`~marketo_provider.api.ImportSpec` built earlier. Raises
        :class:`~marketo_provider.api.MarketoQueueFullError` (1016) when Marketo's import queue is
        full: wait for a slot and submit again.
        """
        given = given_keywords("MarketoHook.submit_import", keywords)
        if isinstance(object_type, ImportSpec):
            if given:
                raise MarketoValueError(
                    f"{', '.join(given)} given beside an ImportSpec; the spec already says what to import"
                )
            spec = object_type
        else:
            options = keywords.copy()
            options["file_format"] = keywords.get("file_format") or "csv"
            spec = ImportSpec.of(object_type, **options)
        settings = self.settings
        with open_upload(file) as (stream, size, default_name):
            if size > MAX_IMPORT_FILE_BYTES:
                raise MarketoValueError(
                    f"import file {default_name!r} is {size:,} bytes; Marketo takes files under "
                    f"{MAX_IMPORT_FILE_BYTES:,} bytes. The bulk import operator cuts larger sources into parts."
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
                upload=Upload(name, size, spec.file_format.content_type, reopen),
                read_timeout=max(settings.timeout, UPLOAD_READ_TIMEOUT_FLOOR_SECONDS),
            )
            self.log.info(
                "Uploading %s (%s bytes, %s) to Marketo as %s",
                name,
                f"{size:,}",
                spec.file_format.value,
                spec.target.label,
            )
            entry = self._run(lambda: call_flow(call, _batch_entry(call), resend_safe=False))
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
        return self._run(lambda: call_flow(call, _batch_entry(call, batch_id)))

    async def aget_import_status(
        self,
        object_type: str | ObjectType | ImportTarget,
        batch_id: int,
        *,
        custom_object_name: str | None = None,
    ) -> dict[str, Any]:
        """:meth:`get_import_status` for the event loop (the triggerer)."""
        call = _status_call(await self.aget_settings(), _target(object_type, custom_object_name), batch_id)
        return await self._arun(lambda: call_flow(call, _batch_entry(call, batch_id)))

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
            if not read_result_file_answer(answer, target, call):
                return None
            if start is not None:
                dest.seek(start)
                dest.truncate()
            written = 0
            body = answer.chunks if answer.chunks is not None else [answer.text.encode("utf-8")]
            for chunk in without_secrets(body):
                dest.write(chunk)
                written += len(chunk)
            return written

        return self._run(lambda: call_flow(call, read, resend_safe=start is not None))

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
            max_bytes=MAX_DESCRIBE_ANSWER_BYTES,
        )
        result = self._run(lambda: call_flow(call, lambda a: read_json_answer(a, call)), retry=retry)
        return describe_field_names(result, call.purpose)

    def test_connection(self) -> tuple[bool, str]:
        """Get a new token and make one cheap call (describe leads), each tried once, so the answer
        comes within seconds whatever is wrong."""
        self._read_timeout_cap = CONNECT_TIMEOUT_SECONDS
        try:
            settings = self.settings
            TOKENS.clear()
            fields = self.describe(ObjectType.LEADS, retry=False)["fields"]
        except Exception as exc:
            return False, redact(str(exc) or type(exc).__name__, *self._secrets())
        finally:
            self._read_timeout_cap = None
        return True, f"Connected to Marketo at {settings.rest_url} ({len(fields)} lead fields visible)"

    def _secrets(self) -> tuple[str, ...]:
        return (self._settings.client_secret,) if self._settings is not None else ()


def _target(what: str | ObjectType | ImportTarget, custom_object_name: str | None) -> ImportTarget:
    if isinstance(what, ImportTarget):
        if custom_object_name is not None and custom_object_name != what.custom_object_name:
            raise MarketoValueError("custom_object_name given beside an ImportTarget that names another")
        return what
    return ImportTarget.of(what, custom_object_name=custom_object_name)


def _status_call(settings: ConnectionSettings, target: ImportTarget, batch_id: int) -> Call:
    return Call("GET", settings.url(target.batch_path(batch_id, "status")), f"status of batch {batch_id}")


def _batch_entry(call: Call, batch_id: int | None = None) -> Callable[[Answer], dict[str, Any]]:
    return lambda answer: read_batch(answer, call, batch_id)


def _read_settings(
    conn_id: str, host: Any, login: Any, password: Any, extra: dict[str, Any]
) -> ConnectionSettings:
    settings = connection_settings(conn_id, host=host, login=login, password=password, extra=extra)
    if isinstance(settings.verify, str) and not os.path.exists(settings.verify):
        raise MarketoConnectionConfigError(
            f"Airflow connection {conn_id!r}: extra 'verify' names {settings.verify!r}, which does not exist; "
            "give true, false or the path of a CA bundle"
        )
    return settings
