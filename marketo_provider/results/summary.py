"""What an import (or the sensor that concludes it) returns: :class:`ImportSummary`, the XCom
``return_value``, and the reasons the task must fail."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from marketo_provider.api import BatchStatus, ObjectType
from marketo_provider.api.targets import FAILED


@dataclass
class ImportSummary:
    """What an import (or the sensor) returns: every batch with its part and final status, the
    totals, where the merged results went, and how the import went. :meth:`to_xcom` gives the
    documented XCom ``return_value``."""

    object_type: ObjectType
    batches: Sequence[tuple[int | None, BatchStatus]] = ()  # (part, status) in part order
    failures_path: str | None = None
    warnings_path: str | None = None
    failure_reasons: dict[str, int] = field(default_factory=dict)
    warning_reasons: dict[str, int] = field(default_factory=dict)
    api_calls: int = 0
    resumes: int = 0
    parts_outcome_unknown: list[int] = field(default_factory=list)
    parts_sent_twice: list[int] = field(default_factory=list)
    origins: dict[int, str] = field(default_factory=dict)  # part -> the files and bytes it came from
    row_checks: dict[str, Any] | None = None  # what pre-flight found in the rows
    rows_kept_out: int = (
        0  # rows left out of what was sent (refused before upload, earlier repeats, unchanged)
    )
    changes: dict[str, Any] | None = None  # changed_rows_only: rows new, changed, unchanged, the state
    source: str | None = None  # how messages name the import's source
    rows: dict[str, Any] | None = None  # what became of the source's rows (the ledger's counts)
    times: dict[int, dict[str, float]] = field(default_factory=dict)  # batch id -> ImportState.part_times

    @property
    def batch_ids(self) -> list[int]:
        return [status.batch_id for _, status in self.batches]

    @property
    def rows_processed(self) -> int:
        return sum(status.rows_processed or 0 for _, status in self.batches)

    @property
    def rows_failed(self) -> int:
        return sum(status.rows_failed or 0 for _, status in self.batches)

    @property
    def rows_with_warning(self) -> int:
        return sum(status.rows_with_warning or 0 for _, status in self.batches)

    def problems(self, max_failed_rows: int | None) -> list[str]:
        """Why the task must fail after publishing (empty when it succeeds)."""
        found = [
            f"batch {status.batch_id} (part {part}) ended Failed: {status.message or 'no message from Marketo'}"
            for part, status in self.batches
            if status.status == FAILED
        ]
        if max_failed_rows is not None and self.rows_failed > max_failed_rows:
            found.append(f"{self.rows_failed} rows failed, more than max_failed_rows={max_failed_rows}")
        elif self.rows_processed == 0 and self.rows_failed > 0:
            found.append(
                f"nothing was imported: all {self.rows_failed} rows failed (see the failures for the reasons)"
            )
        return found

    def set_reasons(self, kind: str, reasons: dict[str, int]) -> None:
        if kind == "failures":
            self.failure_reasons = reasons
        else:
            self.warning_reasons = reasons

    def set_path(self, kind: str, uri: str) -> None:
        if kind == "failures":
            self.failures_path = uri
        else:
            self.warnings_path = uri

    def to_xcom(self) -> dict[str, Any]:
        """The operator's and the sensor's return value (XCom ``return_value``)."""
        return {
            "object_type": self.object_type.value,
            "source": self.source,
            "batch_ids": self.batch_ids,
            "batches": [
                {
                    **status.summary(part=part),
                    "origin": self.origins.get(part) if part is not None else None,
                    **_times(self.times.get(status.batch_id)),
                }
                for part, status in self.batches
            ],
            "rows_processed": self.rows_processed,
            "rows_failed": self.rows_failed,
            "rows_with_warning": self.rows_with_warning,
            "failures_path": self.failures_path,
            "warnings_path": self.warnings_path,
            "failure_reasons": self.failure_reasons,
            "warning_reasons": self.warning_reasons,
            "api_calls": self.api_calls,
            "resumes": self.resumes,
            "parts_outcome_unknown": list(self.parts_outcome_unknown),
            "parts_sent_twice": list(self.parts_sent_twice),
            "row_checks": self.row_checks,
            "rows_kept_out": self.rows_kept_out,
            "rows": self.rows,
            "changes": self.changes,
        }


def _times(seen: dict[str, float] | None) -> dict[str, str]:
    """A batch's ``submitted_at``, ``importing_at`` and ``done_at`` (UTC, ISO 8601), where known."""
    return {
        f"{event}_at": datetime.fromtimestamp(seen[event], timezone.utc).isoformat(timespec="milliseconds")
        for event in ("submitted", "importing", "done")
        if seen and seen.get(event) is not None
    }
