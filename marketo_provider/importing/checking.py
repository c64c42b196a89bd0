"""Every check of an import before its first upload (the results and state locations, the source,
its columns against Marketo's describe call, every record and value, what the user chose to do
about rows Marketo would refuse), and the ``validate_only`` plan made from them."""

from __future__ import annotations

from typing import Any

from marketo_provider.api import ImportSpec
from marketo_provider.importing.changes import ChangedRows
from marketo_provider.importing.errors import ImportAbortedError
from marketo_provider.importing.options import ImportOptions
from marketo_provider.importing.state import ImportState
from marketo_provider.sources import AnySource, Preflight, preflight
from marketo_provider.sources.checks import OnInvalidRows, OnRepeatedKeys
from marketo_provider.sources.ledger import RowPolicy


class Checks:
    """The checks of one import, made before anything is sent (:meth:`check`), when a ledger is
    written again (:meth:`preflight`) and for a ``validate_only`` plan (:meth:`plan`).

    :param hook: a :class:`~marketo_provider.hooks.marketo.MarketoHook` (its describe call).
    :param changes: the import's changed-rows state (``changed_rows_only``).
    """

    def __init__(
        self,
        hook: Any,
        spec: ImportSpec,
        source: AnySource,
        options: ImportOptions,
        changes: ChangedRows,
        *,
        owner: str,
        log: Any,
    ) -> None:
        self.hook = hook
        self.spec = spec
        self.source = source
        self.options = options
        self.target = spec.target
        self.changes = changes
        self.owner = owner
        self.log = log

    def plan(self) -> dict[str, Any]:
        """Every check :meth:`BulkImport.begin` makes (the source, the columns against Marketo's describe call,
        the results location), and what the import would send, without importing anything: the
        plan is made from the ledger pre-flight writes."""
        plan_state = ImportState("", self.target.object_type.value, None, 0.0)
        try:
            checked = self.check(for_plan=True, state=plan_state)
        finally:
            self.changes.release()
        checks = checked.checks
        counts = checked.counts
        would_send = None
        if counts is not None:
            would_send = counts["rows_to_send"]
        elif checked.records is not None:
            would_send = checked.records
        if checked.ledger is not None:
            checked.ledger.close()
        if checked.workdir is not None:
            checked.workdir.cleanup()
        return {
            "validate_only": True,
            "object_type": self.target.object_type.value,
            "target": self.target.label,
            "source": checked.name,
            "columns": list(checked.header.names),
            "renamed_columns": _renamed(checked),
            "parts": checked.parts,
            "part_origins": list(checked.part_origins),
            "bytes": checked.body_bytes,
            "records": checked.records,
            "records_to_send": would_send,
            "rows": counts,
            "results_path": self.options.results.path,
            "query": self.spec.query,
            "row_checks": checks.to_json() if checks is not None else None,
            "changes": self.changes.summary(plan_state),
            "api_calls": self.hook.api_calls,
        }

    def check(
        self, *, for_plan: bool = False, state: ImportState | None = None, ledger_path: str | None = None
    ) -> Preflight:
        """Every check before the first upload: the results location, the source (its header, its
        columns against describe, every record, every value), then what the user chose to do
        about rows Marketo would refuse and repeated keys. ``for_plan``: report, never stop."""
        self.options.results.check_writable()
        if self.options.state is not None:
            self.options.state.check_writable()
        options = self.options
        loaded = self.changes.load() if self.changes.on else None
        checked = self.preflight(loaded.path if loaded is not None else None, ledger_path)
        if loaded is not None and state is not None:
            state.change = {
                "generation": loaded.generation,
                "full": loaded.path is None,
                "why_full": loaded.why_full,
                "owner": self.owner,
                "counts": checked.changes or {},
            }
            self.changes.log_changes(checked, loaded)
        report = checked.checks
        if report is None:
            return checked
        for line in report.lines():
            self.log.warning("Pre-flight, %s: %s", checked.name, line)
        if for_plan:
            return checked
        stops = []
        if options.on_invalid_rows is OnInvalidRows.FAIL and report.rows_failing:
            stops.append(f"{report.rows_failing:,} rows Marketo would or may refuse (on_invalid_rows='fail')")
        elif options.max_failed_rows is not None and report.rows_failing > options.max_failed_rows:
            stops.append(
                f"{report.rows_failing:,} rows Marketo would or may refuse, more than "
                f"max_failed_rows={options.max_failed_rows}"
            )
        if options.on_repeated_keys is OnRepeatedKeys.FAIL and report.repeated_rows:
            stops.append(
                f"{report.repeated_rows:,} rows repeat an earlier row's key (on_repeated_keys='fail')"
            )
        if stops:
            if checked.ledger is not None:
                checked.ledger.close()
            raise ImportAbortedError(
                f"nothing was sent: {checked.name} has {' and '.join(stops)}. "
                + " ".join(f"{line}." for line in report.lines()),
                permanent=True,
            )
        return checked

    def preflight(
        self, previous: str | None, ledger_path: str | None, policy: RowPolicy | None = None
    ) -> Preflight:
        return preflight(
            self.source,
            object_type=self.spec.object_type,
            lookup_field=self.spec.lookup_field,
            custom_object_name=self.target.custom_object_name,
            describe=self.hook.describe,
            check_columns=self.options.check_columns,
            policy=policy or self.options.rows,
            previous=previous,
            ledger_path=ledger_path,
        )


def _renamed(checked: Preflight) -> dict[str, str]:
    """Columns sent under another name than the source's (column_mapping, describe's spelling)."""
    source = checked.header.source_names or checked.header.names
    return {s: n for s, n in zip(source, checked.header.names, strict=False) if s != n}
