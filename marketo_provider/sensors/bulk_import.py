"""MarketoBulkImportSensor: wait for import batches submitted earlier, then publish their results."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from marketo_provider._compat import conf
from marketo_provider.airflow_errors import airflow_error
from marketo_provider.api import FileFormat, ImportTarget, MarketoError
from marketo_provider.hooks import MarketoHook
from marketo_provider.importing import (
    DEFAULT_POLL_INTERVAL_SECONDS,
    BatchWatch,
    HandedOver,
    ImportOptions,
    ImportState,
    WaitFor,
    parse_batch_ids,
)
from marketo_provider.triggers.bulk_import import MarketoBulkImportTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["MarketoBulkImportSensor"]


class MarketoBulkImportSensor(BaseSensorOperator):
    """Wait until Marketo import batches are done, then merge and publish their failures and
    warnings exactly as :class:`~marketo_provider.operators.bulk_import.MarketoBulkImportOperator`
    does, and return the same summary.

    :param batch_ids: the batches: the operator's summary (``submit.output``, whose source the
        log then names), a list, or text like ``"[3404, 3405]"`` (e.g.
        ``"{{ ti.xcom_pull('import_leads')['batch_ids'] }}"``). Templated.
    :param source: how the log and the summary name the source the batches came from (taken
        from the operator's summary when ``batch_ids`` is one). Templated.
    :param object_type: ``leads``, ``program_members`` or ``custom_objects``.
    :param custom_object_name: custom objects: the object's API name.
    :param marketo_conn_id: the Marketo connection.
    :param file_format: the format the batches were imported in (names the merged files).
    :param results_path: a folder URI for the merged files; without it they go to XCom.
    :param results_conn_id: the connection for ``results_path`` when it needs one.
    :param max_failed_rows: fail, after publishing, when more rows failed.
    :param poll_interval: seconds between polls (also the poke interval unless given as a
        template). Templated.
    :param deferrable: wait in the triggerer (default from ``[operators] default_deferrable``).
    """

    template_fields: Sequence[str] = (
        "batch_ids",
        "source",
        "object_type",
        "custom_object_name",
        "marketo_conn_id",
        "file_format",
        "results_path",
        "results_conn_id",
        "poll_interval",
    )

    def __init__(
        self,
        *,
        batch_ids: Any,
        source: str | None = None,
        object_type: str = "leads",
        custom_object_name: str | None = None,
        marketo_conn_id: str = MarketoHook.default_conn_name,
        file_format: str = "csv",
        results_path: str | None = None,
        results_conn_id: str | None = None,
        max_failed_rows: int | None = None,
        poll_interval: float | str = DEFAULT_POLL_INTERVAL_SECONDS,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        if not isinstance(poll_interval, str):
            kwargs.setdefault("poke_interval", poll_interval)
        super().__init__(**kwargs)
        self.batch_ids = batch_ids
        self.source = source
        self.object_type = object_type
        self.custom_object_name = custom_object_name
        self.marketo_conn_id = marketo_conn_id
        self.file_format = file_format
        self.results_path = results_path
        self.results_conn_id = results_conn_id
        self.max_failed_rows = max_failed_rows
        self.poll_interval = poll_interval
        self.deferrable = deferrable

    @cached_property
    def hook(self) -> MarketoHook:
        return MarketoHook(self.marketo_conn_id)

    def _watch(self) -> BatchWatch:
        """The batches to watch and conclude; every argument checked here, before any call."""
        try:
            target = ImportTarget.of(self.object_type, custom_object_name=self.custom_object_name)
            options = ImportOptions.of(
                poll_interval=self.poll_interval,
                timeout=self.timeout,
                results_path=self.results_path,
                results_conn_id=self.results_conn_id,
                max_failed_rows=self.max_failed_rows,
            )
            file_format = FileFormat.parse(self.file_format)
        except MarketoError as exc:
            raise airflow_error(exc) from exc
        return BatchWatch(
            self.hook, target, options, file_format=file_format, log=self.log, source=self._source_name()
        )

    def _source_name(self) -> str | None:
        """The source the batches came from: given, or in the operator's summary."""
        if self.source:
            return str(self.source)
        if isinstance(self.batch_ids, Mapping) and self.batch_ids.get("source"):
            return str(self.batch_ids["source"])
        return None

    def _handover(self) -> Mapping[str, Any] | None:
        """What the operator's summary hands over to conclude its import as it would have (its
        state, the ledger's place, the changed-rows state), when ``batch_ids`` is that summary."""
        if isinstance(self.batch_ids, Mapping) and isinstance(self.batch_ids.get("import"), Mapping):
            return self.batch_ids["import"]
        return None

    def _state(self, run: BatchWatch) -> ImportState:
        """The state kept between pokes of this task (one process), else a new one."""
        state: ImportState | None = getattr(self, "_poke_state", None)
        if state is None:
            handover = self._handover()
            try:
                if handover is not None:
                    state = ImportState.from_json(handover["state"])
                    state.deadline = time.time() + run.options.timeout
                    state.resumes = 0
                else:
                    ids = parse_batch_ids(self.batch_ids)
                    state = ImportState.for_batches(
                        run.target, ids, time.time() + run.options.timeout, run.source
                    )
            except MarketoError as exc:
                raise airflow_error(exc) from exc
            self._poke_state = state
        return state

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        run = self._watch()
        run.options.results.check_writable()
        self.defer(
            trigger=MarketoBulkImportTrigger(
                import_state=self._state(run).to_json(),
                wait=WaitFor.COMPLETION.value,
                marketo_conn_id=self.marketo_conn_id,
                poll_interval=run.options.poll_interval,
                lease=self._rows(run).changes.lease_context(),
            ),
            method_name="execute_complete",
        )

    def poke(self, context: Context) -> PokeReturnValue | bool:
        run = self._watch()
        state = self._state(run)
        try:
            run.poll(state)
            if state.pending_batch_ids:
                self._rows(run).renew()
                return False
            return PokeReturnValue(is_done=True, xcom_value=self._conclude(context, run, state))
        except MarketoError as exc:
            raise airflow_error(exc) from exc

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        run = self._watch()
        try:
            return self._conclude(context, run, run.resume(event))
        except MarketoError as exc:
            raise airflow_error(exc) from exc

    def _rows(self, run: BatchWatch) -> HandedOver:
        return HandedOver(self._handover(), log=self.log, poll_interval=run.options.poll_interval)

    def _conclude(self, context: Context, run: BatchWatch, state: ImportState) -> dict[str, Any]:
        """Publish the results as the operator would: from the handed-over import's ledger, every
        failed row traced, the rows refused before upload added, the changed-rows state written."""
        push = lambda key, value: context["ti"].xcom_push(key=key, value=value)  # noqa: E731
        with self._rows(run) as rows:
            return rows.conclude(run, state, push)
