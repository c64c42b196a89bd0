"""What an import published, read back on the API server: the task instance, its summary XCom
(``return_value``), and the merged failures and warnings wherever they went (XCom, a local folder,
object storage through the results connection). Nothing here writes; every read is bounded."""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from marketo_provider.api.redaction import hide_secrets
from marketo_provider.api.targets import RESULT_KINDS, FileFormat
from marketo_provider.results import ResultsLocation

# The provider's task classes: a task of one of these is an import even before it published anything.
IMPORT_OPERATORS = frozenset({"MarketoBulkImportOperator", "MarketoBulkImportSensor", "SqlToMarketoOperator"})
# States in which the task may still publish: the view refreshes itself.
UNFINISHED_STATES = frozenset(
    {"scheduled", "queued", "running", "deferred", "up_for_retry", "up_for_reschedule", "restarting"}
)
CHUNK_BYTES = 64 * 1024
FIRST_ROWS = 20  # failed (and warned) rows the view shows; the download has them all


@dataclass
class TaskImport:
    """One task instance and what its import published (``summary`` None: nothing yet)."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    state: str | None
    operator: str | None
    start_date: Any = None
    end_date: Any = None
    try_number: int | None = None
    summary: dict[str, Any] | None = None
    xcom_results: dict[str, str] = field(default_factory=dict)  # kind -> text pushed to XCom
    rendered: dict[str, Any] = field(default_factory=dict)  # the task's rendered template fields
    progress: dict[str, Any] | None = None  # a deferred import: what its trigger holds (see read_progress)

    @property
    def is_import(self) -> bool:
        return self.summary is not None or self.operator in IMPORT_OPERATORS

    @property
    def is_plan(self) -> bool:
        return bool(self.summary and self.summary.get("validate_only"))

    @property
    def running(self) -> bool:
        return self.state in UNFINISHED_STATES

    def file_format(self) -> FileFormat:
        try:
            return FileFormat.parse(str(self.rendered.get("file_format") or "csv"))
        except Exception:
            return FileFormat.CSV

    def results_location(self) -> ResultsLocation:
        """The results folder's connection as the task resolved it: ``results_conn_id``, else the
        source's connection for a results path on the source's kind of storage."""
        return ResultsLocation.of(
            self.rendered.get("results_path") or None,
            self.rendered.get("results_conn_id") or None,
            source=self.rendered.get("source") if isinstance(self.rendered.get("source"), str) else None,
            source_conn_id=self.rendered.get("source_conn_id") or None,
        )

    def result_available(self, kind: str) -> bool:
        return kind in self.xcom_results or bool(self.summary and self.summary.get(f"{kind}_path"))

    def open_result(self, kind: str) -> Any:
        """A binary stream of the merged ``kind`` file (the caller closes it)."""
        if kind in self.xcom_results:
            return io.BytesIO(self.xcom_results[kind].encode())
        uri = (self.summary or {}).get(f"{kind}_path")
        if not uri:
            raise FileNotFoundError(f"the import published no {kind}")
        from airflow.sdk import ObjectStoragePath

        conn_id = self.results_location().conn_id
        path = ObjectStoragePath(uri, conn_id=conn_id) if conn_id else ObjectStoragePath(uri)
        return path.open("rb")

    def result_chunks(self, kind: str) -> Iterator[bytes]:
        """The merged ``kind`` file in chunks of :data:`CHUNK_BYTES`: never whole in memory."""
        with self.open_result(kind) as stream:
            while chunk := stream.read(CHUNK_BYTES):
                yield chunk

    def result_file_name(self, kind: str) -> str:
        uri = (self.summary or {}).get(f"{kind}_path")
        if uri:
            return str(uri).rstrip("/").rsplit("/", 1)[-1]
        return f"{kind}.{self.file_format().value}"

    def first_rows(self, kind: str, limit: int = FIRST_ROWS) -> tuple[list[str], list[list[str]]]:
        """The header and the first ``limit`` rows of the merged ``kind`` file (read no further)."""
        if not self.result_available(kind):
            return [], []
        name = self.result_file_name(kind)
        suffix = name.rsplit(".", 1)[-1] if "." in name else ""
        delimiter = (
            FileFormat.parse(suffix).delimiter
            if suffix in {f.value for f in FileFormat}
            else self.file_format().delimiter
        )
        with self.open_result(kind) as stream:
            reader = csv.reader(io.TextIOWrapper(stream, encoding="utf-8", newline=""), delimiter=delimiter)
            header = next(reader, [])
            rows = list(itertools.islice(reader, limit))
        return header, rows


def safe(text: Any) -> str:
    """Text for a page or a header: no URI credentials, no secret this process holds."""
    return hide_secrets(str(text))


def _map_index(value: str | int | None) -> int:
    try:
        return int(value) if value not in (None, "") else -1
    except (TypeError, ValueError):  # the UI's "{MAP_INDEX}" of an unmapped task
        return -1


def run_id_of(value: str) -> str:
    """Airflow 3.1's UI puts the run id into the tab's link as it is, so the ``+`` of a run id
    such as ``manual__2026-01-02T03:04:05+00:00`` arrives as a space; run ids hold no spaces
    (Airflow's ``allowed_run_id_pattern``), so a space is that ``+``."""
    return value.replace(" ", "+")


def load_task(
    session: Any, dag_id: str, run_id: str, task_id: str, map_index: str | int | None
) -> TaskImport | None:
    """The task instance and what it published, or None when there is no such task instance."""
    from airflow.models.taskinstance import TaskInstance

    index = _map_index(map_index)
    ti = (
        session.query(TaskInstance)
        .filter_by(dag_id=dag_id, run_id=run_id_of(run_id), task_id=task_id, map_index=index)
        .one_or_none()
    )
    if ti is None:
        return None
    return _task_import(session, ti)


def load_run(session: Any, dag_id: str, run_id: str) -> list[TaskImport]:
    """Every import of a DAG run (tasks of the provider's classes, or that published a summary)."""
    from airflow.models.taskinstance import TaskInstance

    tis = (
        session.query(TaskInstance)
        .filter_by(dag_id=dag_id, run_id=run_id_of(run_id))
        .order_by(TaskInstance.task_id, TaskInstance.map_index)
        .all()
    )
    found = [_task_import(session, ti) for ti in tis]
    return [t for t in found if t.is_import]


def _task_import(session: Any, ti: Any) -> TaskImport:
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.xcom import XComModel

    keys = ("return_value", *RESULT_KINDS)
    values: dict[str, Any] = {}
    rows = (
        session.query(XComModel)
        .filter(
            XComModel.dag_id == ti.dag_id,
            XComModel.run_id == ti.run_id,
            XComModel.task_id == ti.task_id,
            XComModel.map_index == ti.map_index,
            XComModel.key.in_(keys),
        )
        .all()
    )
    for row in rows:
        values[row.key] = XComModel.deserialize_value(row)
    summary = values.get("return_value")
    if not (isinstance(summary, dict) and ("batches" in summary or summary.get("validate_only"))):
        summary = None
    rendered_row = (
        session.query(RenderedTaskInstanceFields)
        .filter_by(dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id, map_index=ti.map_index)
        .one_or_none()
    )
    rendered = dict(rendered_row.rendered_fields or {}) if rendered_row is not None else {}
    state = ti.state.value if hasattr(ti.state, "value") else (str(ti.state) if ti.state else None)
    progress = None
    if summary is None and state == "deferred" and getattr(ti, "trigger_id", None) is not None:
        from airflow.models.trigger import Trigger

        trigger = session.get(Trigger, ti.trigger_id)
        if trigger is not None and trigger.classpath.startswith("marketo_provider."):
            try:
                kwargs = trigger.kwargs  # decrypted with the deployment's Fernet key
            except Exception:
                progress = {"unreadable": True}
            else:
                progress = read_progress(kwargs)
    return TaskImport(
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        task_id=ti.task_id,
        map_index=ti.map_index,
        state=state,
        operator=ti.operator,
        start_date=ti.start_date,
        end_date=ti.end_date,
        try_number=ti.try_number,
        summary=summary,
        xcom_results={k: v for k in RESULT_KINDS if isinstance(v := values.get(k), str)},
        rendered=rendered,
        progress=progress,
    )


def read_progress(kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """How far a deferred import is, from its trigger's arguments: the import state the task keeps
    across deferrals (read as the task reads it, so the states earlier releases wrote too). Only
    the trigger's wait is visible: a worker polling Marketo itself publishes nothing until it ends."""
    from marketo_provider.importing import ImportState

    raw = kwargs.get("import_state")
    if raw is None:
        return None
    try:
        state = ImportState.from_json(raw)
    except Exception:
        return {"unreadable": True}
    parts = []
    for part in state.submitted:
        done = state.finished.get(part.batch_id)
        parts.append(
            {
                "part": part.part,
                "batch_id": part.batch_id,
                "status": (done or {}).get("status"),
                "rows_processed": (done or {}).get("rows_processed"),
                "rows_failed": (done or {}).get("rows_failed"),
                "rows_with_warning": (done or {}).get("rows_with_warning"),
                "origin": part.origin or f"source bytes {part.source_start:,}-{part.source_end:,}",
            }
        )
    finished = [p for p in parts if p["status"] is not None]
    return {
        "source": state.name,
        "wait": kwargs.get("wait"),
        "parts_submitted": len(parts),
        "parts_total": state.parts_total if state.parts_total is not None else state.parts_planned,
        "parts_done": len(finished),
        "rows_processed": sum(p["rows_processed"] or 0 for p in finished),
        "rows_failed": sum(p["rows_failed"] or 0 for p in finished),
        "rows_with_warning": sum(p["rows_with_warning"] or 0 for p in finished),
        "api_calls": state.api_calls,
        "resumes": state.resumes,
        "parts": parts,
    }
