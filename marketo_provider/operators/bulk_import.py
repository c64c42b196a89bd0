"""MarketoBulkImportOperator: import a file of any size into Marketo with the Bulk Import API."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn, cast

from airflow.sdk import BaseOperator

from marketo_provider._compat import AirflowFailException, TaskDeferred, conf, mask_uri_secrets
from marketo_provider.airflow_errors import airflow_error
from marketo_provider.api import ImportKeywords, ImportSpec, ImportTarget, MarketoError
from marketo_provider.api.import_spec import IMPORT_KEYWORDS
from marketo_provider.hooks import MarketoHook
from marketo_provider.importing import (
    DEFAULT_IMPORT_TIMEOUT_SECONDS,
    DEFAULT_POLL_INTERVAL_SECONDS,
    STATE_KEY,
    BulkImport,
    ImportOptions,
    ImportState,
    Journal,
    Wait,
)
from marketo_provider.lineage import lineage_for_import, report_hook_lineage
from marketo_provider.plan_table import plan_lines
from marketo_provider.sources import AnySource, Source, resolve_source
from marketo_provider.triggers.bulk_import import MarketoBulkImportTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["MarketoBulkImportOperator"]


class MarketoBulkImportOperator(BaseOperator):
    """Import a CSV, TSV or SSV file of any size into Marketo: leads, program members or custom objects.

    The source is checked before anything is sent (header, required columns, column names against
    Marketo's describe call, UTF-8, quoting), cut into parts under Marketo's 10 MB limit at record
    boundaries, and the parts are submitted while Marketo's import queue has room. When the queue
    is full (error 1016) the task waits for a slot (deferred, in deferrable mode) and carries on.
    Then it waits for every batch, merges the failure and warning files of all parts and publishes
    them, and returns a summary. Parts already accepted are never submitted again: across
    deferrals, and across task retries where Airflow has the task state store (3.3+).

    ``source_conn_id``, ``file_format``, ``columns``, ``column_mapping`` and ``max_part_bytes``
    describe the source: give each either here or on a
    :class:`~marketo_provider.sources.Source`; given in both places, the two must agree.

    :param source: the rows: a local path, a ``file://`` URI or any ObjectStoragePath URI
        (``s3://bucket/key.csv``, ``gs://...``), a folder or prefix ending in ``/``, or a glob
        (``s3://bucket/unload/data_*.csv.gz``); gzip, bzip2 and xz files are read as they are; or a
        :class:`~marketo_provider.sources.Source` (its location is templated too). Templated.
    :param object_type: ``leads``, ``program_members`` or ``custom_objects``.
    :param marketo_conn_id: the Marketo connection (type ``marketo``).
    :param file_format: ``csv`` (default), ``tsv`` or ``ssv`` (comma, tab, semicolon separated).
    :param lookup_field: leads: the field leads are matched on (default ``email``; ``id`` updates only).
    :param list_id: leads: also add the imported leads to this static list.
    :param partition_name: leads: the lead partition to import into.
    :param program_id: program members: the program.
    :param program_member_status: program members: the status to set (e.g. ``On List``).
    :param custom_object_name: custom objects: the object's API name (e.g. ``car_c``).
    :param source_conn_id: the connection for an object storage source (e.g. ``aws_default``).
    :param columns: the column names (Marketo's API names) when the files have no header line.
    :param column_mapping: the source's column names mapped to Marketo's
        (``{"Email Address": "email"}``); only the header line changes. Templated.
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
    :param check_columns: check the column names against Marketo's describe call (one call); names
        that differ from describe's only in case (``Email``) are sent as describe spells them.
    :param check_values: check every row's values against the fields' types from that describe
        call, and find rows that repeat a key, before anything is sent (see :doc:`data-quality`).
    :param on_invalid_rows: rows Marketo would or may refuse: ``send`` them and report them
        (default), ``skip`` them (they go into the failures file, refused before upload), or
        ``fail`` before anything is sent. ``max_failed_rows`` applies to them too. Templated.
    :param on_repeated_keys: rows whose key (lookup field, email, dedupe fields) is on an earlier
        row: ``warn`` (default), ``keep_last`` (send only the last row of each key, so the later
        row wins whichever part it is in), or ``fail``. Templated.
    :param changed_rows_only: send only the rows that are new or changed since the last import
        Marketo confirmed, and those that failed then (see :doc:`incremental`). Templated.
    :param state_path: a folder (local or any object storage URI) where what Marketo confirmed is
        kept between runs (needed by ``changed_rows_only``); it also keeps the import's journal, so
        a retried task resumes on Airflow without a task state store. Templated.
    :param state_conn_id: the connection for ``state_path`` (default: the source's, on the same
        storage).
    :param full_refresh: with ``changed_rows_only``, send every row and build the state again
        (e.g. ``"{{ logical_date.day_of_week == 0 }}"`` on Sundays). Templated.
    :param max_part_bytes: the largest part to upload (default 9,500,000 bytes).
    :param validate_only: make every check (the source, its columns against Marketo's describe call,
        the results location, every argument) and return the plan (parts, bytes, columns, the
        query) without importing anything.
    :param resend_uncertain_parts: what a retried task does with a part whose upload was cut off
        (the task died mid-upload, or the connection broke after sending): False (default) never
        sends it again and fails the import naming it and its source bytes once the other parts
        are done; True sends it again, so its rows may be imported twice (bulk import inserts or
        updates, so a resend repeats work rather than corrupting records).
    """

    template_fields: Sequence[str] = (
        "source",
        "source_conn_id",
        "columns",
        "column_mapping",
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
        "timeout",
        "max_failed_rows",
        "on_invalid_rows",
        "on_repeated_keys",
        "changed_rows_only",
        "state_path",
        "state_conn_id",
        "full_refresh",
    )
    ui_color = "#5c4ee5"
    ui_fgcolor = "#ffffff"

    def __init__(
        self,
        *,
        source: Any,
        object_type: str = "leads",
        marketo_conn_id: str = MarketoHook.default_conn_name,
        file_format: str | None = None,
        lookup_field: str | None = None,
        list_id: int | str | None = None,
        partition_name: str | None = None,
        program_id: int | str | None = None,
        program_member_status: str | None = None,
        custom_object_name: str | None = None,
        source_conn_id: str | None = None,
        columns: Sequence[str] | None = None,
        column_mapping: dict[str, str] | None = None,
        results_path: str | None = None,
        results_conn_id: str | None = None,
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float | str = DEFAULT_POLL_INTERVAL_SECONDS,
        max_failed_rows: int | str | None = None,
        timeout: float | str = DEFAULT_IMPORT_TIMEOUT_SECONDS,
        check_columns: bool = True,
        check_values: bool = True,
        on_invalid_rows: str = "send",
        on_repeated_keys: str = "warn",
        changed_rows_only: bool | str = False,
        state_path: str | None = None,
        state_conn_id: str | None = None,
        full_refresh: bool | str = False,
        max_part_bytes: int | None = None,
        resend_uncertain_parts: bool = False,
        validate_only: bool = False,
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
        self.columns = columns
        self.column_mapping = column_mapping
        self.results_path = results_path
        self.results_conn_id = results_conn_id
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.max_failed_rows = max_failed_rows
        self.timeout = timeout
        self.check_columns = check_columns
        self.check_values = check_values
        self.on_invalid_rows = on_invalid_rows
        self.on_repeated_keys = on_repeated_keys
        self.changed_rows_only = changed_rows_only
        self.state_path = state_path
        self.state_conn_id = state_conn_id
        self.full_refresh = full_refresh
        self.max_part_bytes = max_part_bytes
        self.resend_uncertain_parts = resend_uncertain_parts
        self.validate_only = validate_only

    @cached_property
    def hook(self) -> MarketoHook:
        return MarketoHook(self.marketo_conn_id)

    def import_source(self) -> Any:
        """Where the rows come from, as given: ``source`` (a location, a
        :class:`~marketo_provider.sources.Source` or a :class:`~marketo_provider.sources.QuerySource`).
        Operators that import from elsewhere override this one method; the settings given on the
        operator (``source_conn_id``, ``file_format``, ``columns``, ``column_mapping``,
        ``max_part_bytes``) are added to what it returns."""
        return self.source

    def resolved_source(self) -> AnySource:
        """The one source the import reads: :meth:`import_source` with the operator's settings,
        every value checked (see :func:`~marketo_provider.sources.resolve_source`)."""
        return resolve_source(
            self.import_source(),
            conn_id=self.source_conn_id or None,
            file_format=self.file_format or None,
            columns=self.columns,
            column_mapping=self.column_mapping or None,
            max_part_bytes=self.max_part_bytes,
        )

    def _import(self, context: Context) -> BulkImport:
        """The import these arguments describe, every argument checked (nothing is sent yet)."""
        try:
            source = self.resolved_source()
            mask_uri_secrets(getattr(source, "location", None))
            keywords = cast(ImportKeywords, {name: getattr(self, name) for name in IMPORT_KEYWORDS})
            keywords["file_format"] = source.file_format
            spec = ImportSpec.of(self.object_type, **keywords)
            options = ImportOptions.of(
                poll_interval=self.poll_interval,
                timeout=self.timeout,
                results_path=self.results_path,
                results_conn_id=self.results_conn_id,
                source=getattr(source, "location", None),
                source_conn_id=source.conn_id if isinstance(source, Source) else None,
                max_failed_rows=self.max_failed_rows,
                check_columns=self.check_columns,
                check_values=self.check_values,
                on_invalid_rows=self.on_invalid_rows,
                on_repeated_keys=self.on_repeated_keys,
                changed_rows_only=self.changed_rows_only,
                state_path=self.state_path,
                state_conn_id=self.state_conn_id,
                full_refresh=self.full_refresh,
                wait_for_completion=self.wait_for_completion,
                resend_uncertain_parts=self.resend_uncertain_parts,
            )
            journal = Journal.of(context, options)
            return BulkImport(
                self.hook,
                spec,
                source,
                options,
                log=self.log,
                save=lambda state: _save(context, state, journal),
                owner=_owner(context),
            )
        except MarketoError as exc:
            raise airflow_error(exc) from exc

    def execute(self, context: Context) -> dict[str, Any]:
        run = self._import(context)
        if self.validate_only:
            try:
                plan = run.plan()
            except MarketoError as exc:
                raise airflow_error(exc) from exc
            self.log.info("%s", "\n".join(plan_lines(plan)))
            return plan
        with self._ending(context, run) as begun:
            state = begun(run.begin(_load(context, self.log, Journal.of(context, run.options))))
            if state is None:
                return run.empty_summary()
            return self._carry_on(context, run, state)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger fired: submit what remains, wait again, or conclude."""
        run = self._import(context)
        with self._ending(context, run) as begun:
            begun(ImportState.from_json(event["import_state"]))
            return self._carry_on(context, run, run.resume(event))

    @contextmanager
    def _ending(self, context: Context, run: BulkImport) -> Iterator[Callable[[Any], Any]]:
        """However the import stops (not a deferral): the state's lock and the ledger let go unless
        Airflow retries the task, and our errors as Airflow's. Yields a function that notes the
        import's state once it is known."""
        known: list[ImportState | None] = [None]

        def begun(state: Any) -> Any:
            known[0] = state
            return state

        try:
            yield begun
        except TaskDeferred:
            raise
        except BaseException as exc:
            run.abandon(known[0], retried=_retried(context, self, exc))
            if isinstance(exc, MarketoError):
                raise airflow_error(exc) from exc
            raise

    def _carry_on(self, context: Context, run: BulkImport, state: ImportState) -> dict[str, Any]:
        """Submit, wait (deferring when deferrable) and submit again until the import concludes."""
        while (wait := run.advance(state)) is not None:
            if self.deferrable:
                self._defer(run, state, wait)
            run.wait(state, wait)
        summary = run.conclude(state, lambda key, value: context["ti"].xcom_push(key=key, value=value))
        if not self.wait_for_completion:
            return summary
        _forget(context, Journal.of(context, run.options))
        report_hook_lineage(self.hook, run.source, run.target)
        return summary

    def _defer(self, run: BulkImport, state: ImportState, wait: Wait) -> NoReturn:
        self.defer(
            trigger=MarketoBulkImportTrigger(
                import_state=state.to_json(),
                wait=wait.waiting_for.value,
                marketo_conn_id=self.marketo_conn_id,
                poll_interval=run.options.poll_interval,
                wake_at=wait.wake_at,
                lease=run.changes.lease_context(),
            ),
            method_name="execute_complete",
        )

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The source as input and the Marketo object as output."""
        target = ImportTarget.of(
            self.object_type, program_id=self.program_id, custom_object_name=self.custom_object_name
        )
        return lineage_for_import(source=self.resolved_source(), settings=self.hook.settings, target=target)


# ---- the import's state across task retries (Airflow 3.3+'s task state store) -----------------


def _retried(context: Context, task: BaseOperator, exc: BaseException) -> bool:
    """Whether Airflow tries the task again after ``exc`` (then the state's lock is kept for it)."""
    if getattr(exc, "permanent", False) or isinstance(exc, (AirflowFailException, KeyboardInterrupt)):
        return False
    ti = context.get("ti")
    try_number = getattr(ti, "try_number", None)
    retries = getattr(task, "retries", 0) or 0
    return isinstance(try_number, int) and try_number <= retries


def _store(context: Context) -> Any:
    return context.get("task_state_store")


def _owner(context: Context) -> str:
    """Who runs the import, the same across the task's tries: the DAG, the task and the run."""
    ti = context.get("ti")
    if ti is None or not all(hasattr(ti, name) for name in ("dag_id", "task_id", "run_id")):
        return "unknown task"
    mapped = getattr(ti, "map_index", -1)
    return f"{ti.dag_id}/{ti.task_id}{'' if mapped in (None, -1) else f'[{mapped}]'}/{ti.run_id}"


def _save(context: Context, state: ImportState, journal: Journal | None) -> None:
    store = _store(context)
    if store is not None:
        store.set(STATE_KEY, state.to_json())
    elif journal is not None:
        journal.save(state.to_json())


def _load(context: Context, log: Any, journal: Journal | None) -> dict[str, Any] | None:
    store = _store(context)
    if store is not None:
        return store.get(STATE_KEY) or None
    if journal is not None:
        saved = journal.load()
        if saved:
            log.info("No task state store (Airflow < 3.3): the import's journal is at %s", journal.uri)
        return saved or None
    log.info(
        "No task state store (Airflow < 3.3) and neither state_path nor results_path: a retried task "
        "cannot tell which parts were sent"
    )
    return None


def _forget(context: Context, journal: Journal | None) -> None:
    store = _store(context)
    if store is not None:
        store.delete(STATE_KEY)
    elif journal is not None:
        journal.remove()
