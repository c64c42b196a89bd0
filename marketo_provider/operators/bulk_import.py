"""MarketoBulkImportOperator: import a file of any size into Marketo with the Bulk Import API."""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from marketo_provider._compat import AirflowException, AirflowFailException, conf
from marketo_provider.api import (
    BatchStatus,
    FileFormat,
    ImportTarget,
    MarketoError,
    MarketoValueError,
    ObjectType,
    import_query_params,
    positive_seconds,
)
from marketo_provider.files import DEFAULT_MAX_PART_BYTES, preflight
from marketo_provider.hooks.marketo import MarketoHook
from marketo_provider.importing import (
    EVENT_ERROR,
    EVENT_TIMEOUT,
    MODE_COMPLETE,
    MODE_SLOT,
    STATE_KEY,
    ImportRequest,
    ImportState,
    submit_parts,
    wait_sync,
)
from marketo_provider.lineage import lineage_for_import
from marketo_provider.results import conclude, statuses_from_entries, summarize
from marketo_provider.sources import QuerySource, Source, as_source
from marketo_provider.triggers.bulk_import import MarketoBulkImportTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context

DEFAULT_TIMEOUT_SECONDS = 24 * 3600


def seconds_argument(name: str, value: float | str) -> float:
    """A positive number of seconds from an argument that may have been templated."""
    try:
        return positive_seconds(name, value)
    except MarketoValueError as exc:
        raise AirflowFailException(str(exc)) from exc


class MarketoBulkImportOperator(BaseOperator):
    """Import a CSV, TSV or SSV file of any size into Marketo: leads, program members or custom objects.

    The source is checked before anything is sent (header, required columns, column names against
    Marketo's describe call, UTF-8, quoting), cut into parts under Marketo's 10 MB limit at record
    boundaries, and the parts are submitted while Marketo's import queue has room. When the queue
    is full (error 1016) the task waits for a slot (deferred, in deferrable mode) and carries on.
    Then it waits for every batch, merges the failure and warning files of all parts and publishes
    them, and returns a summary. Parts already accepted are never submitted again: across
    deferrals, and across task retries where Airflow has the task state store (3.3+).

    :param source: the file: a local path, a ``file://`` URI or any ObjectStoragePath URI
        (``s3://bucket/key.csv``, ``gs://...``). Templated.
    :param object_type: ``leads``, ``program_members`` or ``custom_objects``.
    :param marketo_conn_id: the Marketo connection (type ``marketo``).
    :param file_format: ``csv``, ``tsv`` or ``ssv`` (comma, tab, semicolon separated).
    :param lookup_field: leads: the field leads are matched on (default ``email``; ``id`` updates only).
    :param list_id: leads: also add the imported leads to this static list.
    :param partition_name: leads: the lead partition to import into.
    :param program_id: program members: the program.
    :param program_member_status: program members: the status to set (e.g. ``On List``).
    :param custom_object_name: custom objects: the object's API name (e.g. ``car_c``).
    :param source_conn_id: the connection for an object storage source (e.g. ``aws_default``).
    :param results_path: a folder URI for the merged ``failures``/``warnings`` files; without it
        their text is pushed to XCom under the keys ``failures`` and ``warnings``. Templated.
    :param results_conn_id: the connection for ``results_path`` when it needs one.
    :param wait_for_completion: wait for every batch (default); False returns once the last part
        is accepted, for :class:`~marketo_provider.sensors.bulk_import.MarketoBulkImportSensor`.
    :param deferrable: wait in the triggerer instead of on a worker (default from
        ``[operators] default_deferrable``).
    :param poll_interval: seconds between status polls (Marketo suggests 5 to 30). Templated.
    :param max_failed_rows: fail the task, after publishing the results, when more rows failed.
    :param timeout: seconds the whole import may take, waiting for queue slots included; then the
        task fails listing the batches still running (Marketo cannot cancel an import).
    :param check_columns: check the column names against Marketo's describe call (one call).
    :param max_part_bytes: the largest part to upload (default 9,500,000 bytes).
    """

    template_fields: Sequence[str] = (
        "source",
        "source_conn_id",
        "object_type",
        "marketo_conn_id",
        "file_format",
        "lookup_field",
        "list_id",
        "partition_name",
        "program_id",
        "program_member_status",
        "custom_object_name",
        "results_path",
        "results_conn_id",
        "poll_interval",
    )
    ui_color = "#5c4ee5"
    ui_fgcolor = "#ffffff"

    def __init__(
        self,
        *,
        source: Any,
        object_type: str = "leads",
        marketo_conn_id: str = MarketoHook.default_conn_name,
        file_format: str = "csv",
        lookup_field: str | None = None,
        list_id: int | str | None = None,
        partition_name: str | None = None,
        program_id: int | str | None = None,
        program_member_status: str | None = None,
        custom_object_name: str | None = None,
        source_conn_id: str | None = None,
        results_path: str | None = None,
        results_conn_id: str | None = None,
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float | str = 30.0,
        max_failed_rows: int | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        check_columns: bool = True,
        max_part_bytes: int = DEFAULT_MAX_PART_BYTES,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.object_type = object_type
        self.marketo_conn_id = marketo_conn_id
        self.file_format = file_format
        self.lookup_field = lookup_field
        self.list_id = list_id
        self.partition_name = partition_name
        self.program_id = program_id
        self.program_member_status = program_member_status
        self.custom_object_name = custom_object_name
        self.source_conn_id = source_conn_id
        self.results_path = results_path
        self.results_conn_id = results_conn_id
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        if max_failed_rows is not None and max_failed_rows < 0:
            raise ValueError("max_failed_rows must be 0 or more")
        self.max_failed_rows = max_failed_rows
        self.timeout = timeout
        self.check_columns = check_columns
        self.max_part_bytes = max_part_bytes

    @property
    def _poll_seconds(self) -> float:
        return seconds_argument("poll_interval", self.poll_interval)

    @cached_property
    def hook(self) -> MarketoHook:
        return MarketoHook(self.marketo_conn_id)

    def import_source(self) -> Source | QuerySource:
        """Where the rows come from: ``source`` (a location, or a
        :class:`~marketo_provider.sources.Source` with columns, a mapping, many files) with
        ``source_conn_id``, ``file_format`` and ``max_part_bytes``. Operators that import from
        elsewhere override this one method."""
        return as_source(
            self.source,
            file_format=self.file_format,
            source_conn_id=self.source_conn_id or None,
            max_part_bytes=self.max_part_bytes,
        )

    def _request(self) -> ImportRequest:
        try:
            source = self.import_source()
            target = ImportTarget.of(
                self.object_type, program_id=self.program_id, custom_object_name=self.custom_object_name
            )
            params = import_query_params(
                target,
                file_format=self.file_format,
                lookup_field=self.lookup_field,
                list_id=self.list_id,
                partition_name=self.partition_name,
                program_member_status=self.program_member_status,
            )
        except MarketoValueError as exc:
            raise AirflowFailException(str(exc)) from exc
        return ImportRequest(
            source=source,
            object_type=target.object_type,
            file_format=FileFormat.parse(params["format"]),
            source_conn_id=self.source_conn_id or None,
            lookup_field=self.lookup_field or None,
            list_id=int(params["listId"]) if "listId" in params else None,
            partition_name=self.partition_name or None,
            program_id=target.program_id,
            program_member_status=self.program_member_status,
            custom_object_name=self.custom_object_name or None,
            max_part_bytes=self.max_part_bytes,
        )

    # ---- state kept across retries -------------------------------------------------------------

    @staticmethod
    def _store(context: Context) -> Any:
        return context.get("task_state_store")  # Airflow 3.3+

    def _save(self, context: Context, state: ImportState) -> None:
        store = self._store(context)
        if store is not None:
            store.set(STATE_KEY, state.to_json())

    def _load(self, context: Context) -> ImportState | None:
        store = self._store(context)
        if store is None:
            self.log.info(
                "No task state store (Airflow < 3.3): a retried task cannot tell which parts were sent"
            )
            return None
        saved = store.get(STATE_KEY)
        return ImportState.from_json(saved) if saved else None

    def _forget(self, context: Context) -> None:
        store = self._store(context)
        if store is not None:
            store.delete(STATE_KEY)

    # ---- execution ------------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        request = self._request()
        state = self._load(context)
        if state is not None:
            self.log.info("Resuming the import begun by an earlier try: %s", state.accounting())
        else:
            try:
                checked = preflight(
                    request.source,
                    object_type=request.object_type,
                    file_format=request.file_format,
                    source_conn_id=request.source_conn_id,
                    lookup_field=request.lookup_field,
                    custom_object_name=request.custom_object_name,
                    describe=self.hook.describe,
                    check_columns=self.check_columns,
                    max_part_bytes=request.max_part_bytes,
                )
            except MarketoValueError as exc:
                raise AirflowFailException(str(exc)) from exc
            if checked.empty:
                self.log.info(
                    "%s has a header and no records: nothing to import, no import call made", checked.name
                )
                return summarize(request.object_type, [])
            if checked.parts is None:
                self.log.info(
                    "%s passed the checks; its rows are read once, as they are imported", checked.name
                )
            else:
                self.log.info(
                    "%s passed the checks: %s records in %s bytes, to upload in %d part(s)",
                    checked.name,
                    f"{checked.records:,}",
                    f"{checked.body_bytes:,}",
                    checked.parts,
                )
            state = ImportState(
                source=checked.name, deadline=time.time() + self.timeout, header=list(checked.header.names)
            )
            self._save(context, state)
        return self._advance(context, request, state)

    def execute_complete(
        self, context: Context, event: dict[str, Any], state: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Resume after the trigger fired: submit what remains, wait again, or finish."""
        saved = event.get("import_state") or state
        if not saved:
            raise AirflowException(
                "resumed without the import's state; cannot tell which parts were submitted"
            )
        import_state = ImportState.from_json(saved)
        kind = event.get("status")
        if kind == EVENT_ERROR:
            raise AirflowException(f"{event.get('message')}. {import_state.accounting()}")
        statuses = statuses_from_entries(self._object_type, event.get("batches", []))
        if kind == EVENT_TIMEOUT:
            self._fail_timeout(import_state, statuses)
        return self._advance(context, self._request(), import_state, statuses)

    @property
    def _object_type(self) -> ObjectType:
        return ObjectType.parse(self.object_type)

    def _advance(
        self,
        context: Context,
        request: ImportRequest,
        state: ImportState,
        statuses: list[BatchStatus] | None = None,
    ) -> dict[str, Any]:
        while not state.all_submitted:
            try:
                done = submit_parts(
                    self.hook, request, state, save=lambda s: self._save(context, s), log=self.log
                )
            except MarketoError as exc:
                raise AirflowException(str(exc)) from exc
            if done:
                break
            if time.time() >= state.deadline:
                self._fail_timeout(state, statuses or [])
            # The queue is full: wait for a slot, in the triggerer when deferrable.
            statuses = self._wait(request, state, MODE_SLOT, wake_at=time.time() + 2 * self._poll_seconds)
        self.log.info("Every part is handled: %s", state.accounting())
        if not self.wait_for_completion:
            return self._queued_summary(state)
        finished = {s.batch_id for s in statuses or [] if s.done}
        if not finished.issuperset(state.batch_ids):
            statuses = self._wait(request, state, MODE_COMPLETE, wake_at=None)
        return self._finish(context, request, state, statuses or [])

    def _wait(
        self, request: ImportRequest, state: ImportState, mode: str, wake_at: float | None
    ) -> list[BatchStatus]:
        """Wait in ``mode``: deferred (this call then does not return) or polling from the worker."""
        if self.deferrable and (state.batch_ids or mode == MODE_SLOT):
            self._defer(state, mode, wake_at)
        event, statuses = wait_sync(
            self.hook,
            request.object_type,
            state.batch_ids,
            custom_object_name=request.custom_object_name,
            mode=mode,
            poll_interval=self._poll_seconds,
            deadline=state.deadline,
            wake_at=wake_at,
            log=self.log,
        )
        if event == EVENT_TIMEOUT:
            self._fail_timeout(state, statuses)
        return statuses

    def _defer(self, state: ImportState, mode: str, wake_at: float | None) -> None:
        self.defer(
            trigger=MarketoBulkImportTrigger(
                batch_ids=state.batch_ids,
                object_type=self._object_type.value,
                marketo_conn_id=self.marketo_conn_id,
                custom_object_name=self.custom_object_name,
                poll_interval=self._poll_seconds,
                deadline=state.deadline,
                mode=mode,
                wake_at=wake_at,
                import_state=state.to_json(),
            ),
            method_name="execute_complete",
        )

    def _queued_summary(self, state: ImportState) -> dict[str, Any]:
        statuses = [(p.part, BatchStatus(batch_id=p.batch_id, status="Queued")) for p in state.submitted]
        summary = summarize(self._object_type, statuses)
        if state.uncertain:
            raise AirflowException(f"some parts may not have been imported: {state.accounting()}")
        return summary

    def _finish(
        self, context: Context, request: ImportRequest, state: ImportState, statuses: list[BatchStatus]
    ) -> dict[str, Any]:
        by_id = {s.batch_id: s for s in statuses}
        summary, found = conclude(
            self.hook,
            [(p.part, by_id[p.batch_id]) for p in state.submitted],
            object_type=request.object_type,
            custom_object_name=request.custom_object_name,
            file_format=request.file_format,
            results_path=self.results_path or None,
            results_conn_id=self.results_conn_id or None,
            max_failed_rows=self.max_failed_rows,
            push_xcom=lambda key, value: context["ti"].xcom_push(key=key, value=value),
            log=self.log,
        )
        if state.uncertain:
            found.append(f"some parts may not have been imported: {state.accounting()}")
        if found:
            context["ti"].xcom_push(key="return_value", value=summary)
            raise AirflowFailException("; ".join(found))
        self._forget(context)
        return summary

    def _fail_timeout(self, state: ImportState, statuses: Sequence[BatchStatus]) -> None:
        running = [s.batch_id for s in statuses if not s.done] or [
            b for b in state.batch_ids if b not in {s.batch_id for s in statuses if s.done}
        ]
        raise AirflowException(
            f"the import did not finish within timeout={self.timeout:g} s; batches still running in Marketo "
            f"(Marketo cannot cancel an import): {running}. {state.accounting()}"
        )

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The source as input and the Marketo object as output."""
        return lineage_for_import(
            source=self.source,
            settings=self.hook.settings,
            object_type=self._object_type,
            program_id=self.program_id,
            custom_object_name=self.custom_object_name,
        )
