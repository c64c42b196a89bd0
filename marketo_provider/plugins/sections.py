"""The sections of a task instance's "Marketo import" page, each from what the import published:
its counts (and whether they add up), reasons, parts, first failed and warned rows, downloads, a
``validate_only`` plan, and a deferred import's progress."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from marketo_provider.plugins.charts import bar_chart, timeline
from marketo_provider.plugins.markup import clock, count_row, escaped, html_table, number, task_query
from marketo_provider.plugins.published import TaskImport

CHANGE_COUNTS = (
    ("rows_new", "new"),
    ("rows_changed", "changed"),
    ("rows_sent_again", "sent again after failing last time"),
    ("rows_unchanged", "unchanged (not sent)"),
    ("keys_vanished", "keys no longer in the source"),
)


def kept_out_by_cause(summary: Mapping[str, Any]) -> dict[str, int]:
    """Rows kept out by cause (the ledger's counts: ``rows.kept_out``), the causes with rows."""
    rows = summary.get("rows")
    value = rows.get("kept_out") if isinstance(rows, dict) else None
    if isinstance(value, dict):
        return {str(k).replace("_", " "): int(v) for k, v in value.items() if isinstance(v, int) and v}
    return {}


def counts(summary: Mapping[str, Any]) -> str:
    """The rows from the source to Marketo's counts, by cause, and whether they add up."""
    checks = summary.get("row_checks") or {}
    records = checks.get("records") if isinstance(checks, dict) else None
    kept_out = summary.get("rows_kept_out") or 0
    processed, failed = summary.get("rows_processed") or 0, summary.get("rows_failed") or 0
    warned = summary.get("rows_with_warning") or 0
    sent = processed + failed
    rows = []
    if records is not None:
        rows.append(count_row("Records in the source", "records", records))
    rows.append(count_row("Kept out of what was sent", "rows_kept_out", kept_out))
    for cause, count in kept_out_by_cause(summary).items():
        rows.append(count_row(f"  kept out: {cause}", f"kept_out:{cause}", count))
    rows.append(count_row("Sent to Marketo", "rows_sent", sent, "processed + failed, as Marketo counts them"))
    rows.append(count_row("Imported (processed)", "rows_processed", processed))
    rows.append(count_row("Failed", "rows_failed", failed))
    rows.append(count_row("With a warning (among the imported)", "rows_with_warning", warned))
    changes = summary.get("changes")
    if isinstance(changes, dict):
        for key, label in CHANGE_COUNTS:
            if key in changes:
                rows.append(count_row(f"changed_rows_only: {label}", f"changes:{key}", changes[key]))
        if changes.get("full"):
            rows.append(
                count_row(
                    "changed_rows_only: every row sent", "changes:full", "yes", changes.get("why_full") or ""
                )
            )
    html = html_table(["", "rows", ""], rows, element_id="counts")
    if records is not None:
        difference = records - kept_out - sent
        if difference == 0:
            html += f'<p id="adds-up" class="ok">{records:,} records = {kept_out:,} kept out + {sent:,} sent ({processed:,} imported + {failed:,} failed).</p>'
        else:
            html += (
                f'<p id="adds-up" class="warn">{records:,} records, {kept_out:,} kept out and {sent:,} counted by '
                f"Marketo: {abs(difference):,} rows {'not counted' if difference > 0 else 'counted twice'} "
                "(parts whose outcome is unknown or sent twice are listed below).</p>"
            )
    return html


def reasons(title: str, reasons: Mapping[str, int], element_id: str, colour: str) -> str:
    """A chart of rows by reason under its title; nothing when no row has one."""
    if not reasons:
        return ""
    return f"<h3>{escape(title)}</h3>" + bar_chart(title, reasons, element_id=element_id, colour=colour)


def parts(summary: Mapping[str, Any]) -> str:
    """One line per part sent (its batch, status, counts, origin and times), resumes, a timeline."""
    batches = summary.get("batches") or []
    unknown = set(summary.get("parts_outcome_unknown") or [])
    twice = set(summary.get("parts_sent_twice") or [])
    rows = []
    for b in batches:
        part = b.get("part")
        notes = []
        if part in unknown:
            notes.append("outcome unknown")
        if part in twice:
            notes.append("sent twice")
        # the time of day (UTC) of each event; the date and the zone are in the title
        times = [
            f'<span title="{escaped(b[k])}">{k.removesuffix("_at")} {clock(b[k])}</span>'
            for k in ("submitted_at", "importing_at", "done_at")
            if b.get(k)
        ]
        rows.append(
            [
                f'<td class="n">{escaped(part)}</td>',
                f'<td class="n">{escaped(b.get("batch_id"))}</td>',  # ids, not amounts: no separators
                f"<td>{escaped(b.get('status'))}</td>",
                f'<td class="n">{number(b.get("rows_processed"))}</td>',
                f'<td class="n">{number(b.get("rows_failed"))}</td>',
                f'<td class="n">{number(b.get("rows_with_warning"))}</td>',
                f"<td>{escaped(b.get('origin'))}</td>",
                f"<td>{'<br>'.join(times) or '<span class=muted>not published</span>'}</td>",
                f"<td>{escaped(', '.join(notes))}</td>",
            ]
        )
    html = html_table(
        [
            "part",
            "batch",
            "status",
            "imported",
            "failed",
            "warned",
            "origin (source and place)",
            "times (UTC)",
            "",
        ],
        rows,
        element_id="parts",
    )
    html += (
        f"<p>Resumes (the import picked up where it was after a restart or a deferral): "
        f'<b data-count="resumes">{number(summary.get("resumes") or 0)}</b></p>'
    )
    chart = timeline(batches)
    if chart:
        html += "<h3>Timeline</h3>" + chart
    else:
        html += (
            '<p class="muted" id="timeline-missing">A timeline of the parts (submitted, queued, importing, '
            "done) needs the times of each part, which this import did not publish (imports by earlier "
            "releases, or batches the sensor only watched): the parts are listed in the order they were "
            "sent.</p>"
        )
    return html


def first_rows(task: TaskImport, kind: str) -> str:
    """The first rows of the failures or warnings file, their place and reason first."""
    try:
        header, rows = task.first_rows(kind)
    except Exception as exc:  # moved, deleted, the storage refused
        return (
            f'<p class="note" id="{kind}-unreadable">The {kind} file could not be read where the import wrote '
            f"it ({escaped(type(exc).__name__)}: {escaped(exc)}).</p>"
        )
    if not header:
        return ""
    wanted = [i for i, name in enumerate(header) if name in ("Source", "Source Line")]
    reason = next(
        (i for i, name in enumerate(header) if name.startswith("Import ") and name.endswith(" Reason")), None
    )
    others = [i for i in range(len(header)) if i not in wanted and i != reason][:4]
    order = [*wanted, *([reason] if reason is not None else []), *others]
    table = html_table(
        [header[i] for i in order],
        ([f"<td>{escaped(row[i]) if i < len(row) else ''}</td>" for i in order] for row in rows),
        element_id=f"{kind}-rows",
    )
    label = "failed" if kind == "failures" else "warned"
    return f"<h3>The first {len(rows)} {label} rows</h3>{table}"


def downloads(task: TaskImport) -> str:
    """Links to the merged failures and warnings files, where the import published them."""
    links = []
    for kind in ("failures", "warnings"):
        if task.result_available(kind):
            where = "XCom" if kind in task.xcom_results else escaped((task.summary or {}).get(f"{kind}_path"))
            links.append(
                f'<li><a id="download-{kind}" href="download?{escape(task_query(task, kind=kind))}" download>'
                f"{escape(task.result_file_name(kind))}</a> <span class=muted>({where})</span></li>"
            )
    if not links:
        return "<p>No failures or warnings file: no row failed or warned.</p>"
    html = f"<ul>{''.join(links)}</ul>"
    if not frame_allows_downloads():
        html += (
            '<p class="note" id="frame-blocks-downloads">Airflow before 3.3 shows this view in a frame that '
            "does not allow downloads: open a link in a new tab (middle-click, or right-click), or "
            f'<a id="own-page" href="ti?{escape(task_query(task))}" target="_blank">this view on a page '
            "of its own</a>, where the links download.</p>"
        )
    return html


def frame_allows_downloads() -> bool:
    """Airflow's UI frames external views with ``allow-downloads`` from 3.3 on (3.1 and 3.2 leave
    it out, and the browser drops a download started in the frame)."""
    from airflow import __version__

    major, minor = (int(x) for x in __version__.split(".")[:2])
    return (major, minor) >= (3, 3)


def plan(summary: Mapping[str, Any]) -> str:
    """What a ``validate_only`` import would do: its plan table and the rows predicted by reason."""
    from marketo_provider.plan_table import plan_lines

    checks = summary.get("row_checks") or {}
    failures, warnings = _predicted(checks, "failures"), _predicted(checks, "warnings")
    text = "\n".join(plan_lines(dict(summary)))
    return (
        '<p class="note">validate_only: nothing was sent. What the import would do:</p>'
        f'<pre id="plan">{escaped(text)}</pre>'
        "<h2>Predicted by reason</h2>"
        + (
            reasons("Rows predicted to fail", failures, "failure-chart", "#e53e3e")
            or "<p>No row is predicted to fail.</p>"
        )
        + reasons("Rows predicted to warn", warnings, "warning-chart", "#d69e2e")
    )


def _predicted(checks: Mapping[str, Any], kind: str) -> dict[str, int]:
    """Rows predicted to fail or to warn (``kind``), by reason, from pre-flight's row checks."""
    return {str(k): int(v.get("rows", 0)) for k, v in (checks.get(kind) or {}).items() if isinstance(v, dict)}


WAITS = {"completion": "for its batches to finish", "queue_slot": "for a slot in Marketo's queue"}


def progress(progress: dict[str, Any] | None) -> str:
    """What a deferred import's trigger holds; a worker-side wait has nothing to show."""
    if progress is None:
        return (
            '<p class="muted" id="no-progress">No progress to show: an import shows how far it is while it '
            "waits in the triggerer (deferrable=True); on a worker it publishes at its end.</p>"
        )
    if progress.get("unreadable"):
        return '<p class="muted" id="no-progress">The import\'s state could not be read.</p>'
    total = progress["parts_total"]
    rows = [
        count_row(
            "Parts submitted",
            "progress:parts_submitted",
            progress["parts_submitted"],
            f"of {total:,}" if isinstance(total, int) else "of a number not known yet",
        ),
        count_row("Parts done", "progress:parts_done", progress["parts_done"]),
        count_row("Imported so far", "progress:rows_processed", progress["rows_processed"]),
        count_row("Failed so far", "progress:rows_failed", progress["rows_failed"]),
        count_row("Warned so far", "progress:rows_with_warning", progress["rows_with_warning"]),
        count_row("API calls so far", "progress:api_calls", progress["api_calls"]),
    ]
    parts = html_table(
        ["part", "batch", "status", "origin"],
        (
            [
                f'<td class="n">{escaped(p["part"])}</td>',
                f'<td class="n">{escaped(p["batch_id"])}</td>',
                f"<td>{escaped(p['status'] or 'not done yet')}</td>",
                f"<td>{escaped(p['origin'])}</td>",
            ]
            for p in progress["parts"]
        ),
        element_id="progress-parts",
    )
    wait = WAITS.get(str(progress.get("wait")), "in the triggerer")
    return (
        f"<h2>Progress</h2><p id=progress>Waiting {escape(wait)}: import of {escaped(progress['source'])}.</p>"
        + html_table(["", "", ""], rows, element_id="progress-counts")
        + parts
    )
