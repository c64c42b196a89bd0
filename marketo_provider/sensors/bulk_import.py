"""MarketoBulkImportSensor: wait for import batches submitted earlier, then publish their results."""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from marketo_provider._compat import AirflowException, AirflowFailException, conf
from marketo_provider.api import BatchStatus, MarketoError, ObjectType
from marketo_provider.hooks.marketo import MarketoHook
from marketo_provider.importing import (
    EVENT_ERROR,
    EVENT_TIMEOUT,
    MODE_COMPLETE,
    log_statuses,
    parse_batch_ids,
)
from marketo_provider.operators.bulk_import import seconds_argument
from marketo_provider.results import conclude, statuses_from_entries
from marketo_provider.triggers.bulk_import import MarketoBulkImportTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context


class MarketoBulkImportSensor(BaseSensorOperator):
    """Wait until Marketo import batches are done, then merge and publish their failures and
    warnings exactly as :class:`~marketo_provider.operators.bulk_import.MarketoBulkImportOperator`
    does, and return the same summary.

    :param batch_ids: the batches, e.g. ``"{{ ti.xcom_pull('import_leads')['batch_ids'] }}"``: a
        list, the operator's summary, or text like ``"[3404, 3405]"``. Templated.
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
        object_type: str = "leads",
        custom_object_name: str | None = None,
        marketo_conn_id: str = MarketoHook.default_conn_name,
        file_format: str = "csv",
        results_path: str | None = None,
        results_conn_id: str | None = None,
        max_failed_rows: int | None = None,
        poll_interval: float | str = 30.0,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        if not isinstance(poll_interval, str):
            kwargs.setdefault("poke_interval", poll_interval)
        super().__init__(**kwargs)
        self.batch_ids = batch_ids
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

    @property
    def _object_type(self) -> ObjectType:
        return ObjectType.parse(self.object_type)

    def _ids(self) -> list[int]:
        try:
            return parse_batch_ids(self.batch_ids)
        except MarketoError as exc:
            raise AirflowFailException(str(exc)) from exc

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        self.defer(
            trigger=MarketoBulkImportTrigger(
                batch_ids=self._ids(),
                object_type=self._object_type.value,
                marketo_conn_id=self.marketo_conn_id,
                custom_object_name=self.custom_object_name,
                poll_interval=seconds_argument("poll_interval", self.poll_interval),
                deadline=time.time() + self.timeout,
                mode=MODE_COMPLETE,
            ),
            method_name="execute_complete",
        )

    def poke(self, context: Context) -> PokeReturnValue | bool:
        statuses = [
            self.hook.get_batch_status(self._object_type, b, custom_object_name=self.custom_object_name)
            for b in self._ids()
        ]
        log_statuses(self.log, statuses)
        if not all(s.done for s in statuses):
            return False
        return PokeReturnValue(is_done=True, xcom_value=self._finish(context, statuses))

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        kind = event.get("status")
        if kind == EVENT_ERROR:
            raise AirflowException(str(event.get("message")))
        statuses = statuses_from_entries(self._object_type, event.get("batches", []))
        if kind == EVENT_TIMEOUT:
            running = [s.batch_id for s in statuses if not s.done]
            raise AirflowException(
                f"batches still running in Marketo after timeout={self.timeout:g} s "
                f"(Marketo cannot cancel an import): {running}"
            )
        return self._finish(context, statuses)

    def _finish(self, context: Context, statuses: list[BatchStatus]) -> dict[str, Any]:
        summary, found = conclude(
            self.hook,
            list(enumerate(statuses)),
            object_type=self._object_type,
            custom_object_name=self.custom_object_name,
            file_format=self.file_format,
            results_path=self.results_path,
            results_conn_id=self.results_conn_id,
            max_failed_rows=self.max_failed_rows,
            push_xcom=lambda key, value: context["ti"].xcom_push(key=key, value=value),
            log=self.log,
        )
        if found:
            context["ti"].xcom_push(key="return_value", value=summary)
            raise AirflowFailException("; ".join(found))
        return summary
