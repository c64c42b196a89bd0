"""Every check of an import before its first upload (the results and state locations, the source,
its columns against Marketo's describe call, every record and value, what the user chose to do
about rows Marketo would refuse), and the ``validate_only`` plan made from them; each function reads the
:class:`~marketo_provider.importing.run.BulkImport` it checks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from marketo_provider.importing.errors import ImportAbortedError
from marketo_provider.importing.state import ImportState
from marketo_provider.sources import OnInvalidRows, OnRepeatedKeys, Preflight, RowPolicy, preflight

if TYPE_CHECKING:
    from marketo_provider.importing.run import BulkImport


def plan(run: BulkImport) -> dict[str, Any]:
    """Every check :meth:`BulkImport.begin` makes (the source, the columns against Marketo's
    describe call, the results location), and what the import would send, without importing anything: the
    plan is made from the ledger pre-flight writes."""
    plan_state = ImportState("", run.target.object_type.value, None, 0.0)
    try:
        checked = check(run, for_plan=True, state=plan_state)
    finally:
        run.changes.release()
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
        "object_type": run.target.object_type.value,
        "target": run.target.label,
        "source": checked.name,
        "columns": list(checked.header.names),
        "renamed_columns": _renamed(checked),
        "parts": checked.parts,
        "part_origins": list(checked.part_origins),
        "bytes": checked.body_bytes,
        "records": checked.records,
        "records_to_send": would_send,
        "rows": counts,
        "results_path": run.options.results.path,
        "query": run.spec.query,
        "row_checks": checks.to_json() if checks is not None else None,
        "changes": run.changes.summary(plan_state),
        "api_calls": run.hook.api_calls,
    }


def check(
    run: BulkImport,
    *,
    for_plan: bool = False,
    state: ImportState | None = None,
    ledger_path: str | None = None,
) -> Preflight:
    """Every check before the first upload: the results location, the source (its header, its
    columns against describe, every record, every value), then what the user chose to do
    about rows Marketo would refuse and repeated keys. ``for_plan``: report, never stop."""
    run.options.results.check_writable()
    if run.options.state is not None:
        run.options.state.check_writable()
    options = run.options
    loaded = run.changes.load() if run.changes.on else None
    checked = preflight_source(run, loaded.path if loaded is not None else None, ledger_path)
    if loaded is not None and state is not None:
        state.change = {
            "generation": loaded.generation,
            "full": loaded.path is None,
            "why_full": loaded.why_full,
            "owner": run.owner,
            "counts": checked.changes or {},
        }
        run.changes.log_changes(checked, loaded)
    report = checked.checks
    if report is None:
        return checked
    for line in report.lines():
        run.log.warning("Pre-flight, %s: %s", checked.name, line)
    if for_plan:
        return checked
    stops = []
    if options.rows.on_invalid_rows is OnInvalidRows.FAIL and report.rows_failing:
        stops.append(f"{report.rows_failing:,} rows Marketo would or may refuse (on_invalid_rows='fail')")
    elif options.max_failed_rows is not None and report.rows_failing > options.max_failed_rows:
        stops.append(
            f"{report.rows_failing:,} rows Marketo would or may refuse, more than "
            f"max_failed_rows={options.max_failed_rows}"
        )
    if options.rows.on_repeated_keys is OnRepeatedKeys.FAIL and report.repeated_rows:
        stops.append(f"{report.repeated_rows:,} rows repeat an earlier row's key (on_repeated_keys='fail')")
    if stops:
        if checked.ledger is not None:
            checked.ledger.close()
        raise ImportAbortedError(
            f"nothing was sent: {checked.name} has {' and '.join(stops)}. "
            + " ".join(f"{line}." for line in report.lines()),
            permanent=True,
        )
    return checked


def preflight_source(
    run: BulkImport, previous: str | None, ledger_path: str | None, policy: RowPolicy | None = None
) -> Preflight:
    """The source's pre-flight: against the ``previous`` confirmed state, writing the ledger at
    ``ledger_path``, by ``policy`` (the import's row policy unless another is given)."""
    return preflight(
        run.source,
        object_type=run.spec.object_type,
        lookup_field=run.spec.lookup_field,
        custom_object_name=run.target.custom_object_name,
        describe=run.hook.describe,
        check_columns=run.options.check_columns,
        policy=policy or run.options.rows,
        previous=previous,
        ledger_path=ledger_path,
    )


def _renamed(checked: Preflight) -> dict[str, str]:
    """Columns sent under another name than the source's (column_mapping, describe's spelling)."""
    source = checked.header.source_names or checked.header.names
    return {s: n for s, n in zip(source, checked.header.names, strict=False) if s != n}
