"""The "Marketo import" pages as self-contained HTML: inline style, charts as inline SVG, no script,
font or style from anywhere else (air-gapped deployments are common). Every value is escaped and
passes :func:`~marketo_provider.plugins.published.safe` (no URI credentials, no held secret)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import urlencode

from marketo_provider.plugins.published import TaskImport, safe

REFRESH_SECONDS = 10

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:16px;color:#1a202c;background:#fff}
h1{font-size:18px;margin:0 0 4px} h2{font-size:15px;margin:22px 0 6px;border-bottom:1px solid #e2e8f0;padding-bottom:3px}
table{border-collapse:collapse;margin:4px 0} td,th{border:1px solid #e2e8f0;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f7fafc;font-weight:600} td.n{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#718096} .note{background:#fffbea;border:1px solid #f6e05e;padding:6px 10px;margin:8px 0}
.bad{color:#c53030} .ok{color:#2f855a} .warn{color:#b7791f} a{color:#2b6cb0}
.state{display:inline-block;padding:1px 8px;border-radius:10px;background:#edf2f7;font-size:12px}
@media (prefers-color-scheme: dark){body{background:#1a202c;color:#e2e8f0} th{background:#2d3748}
td,th{border-color:#4a5568} .note{background:#3d3a1a;border-color:#975a16} a{color:#90cdf4}}
"""


def _e(value: Any) -> str:
    return escape(safe(value)) if value is not None else ""


def _n(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else _e(value)


def _page(title: str, body: str, *, refresh: bool) -> str:
    meta = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' if refresh else ""
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"{meta}<title>{_e(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>"
    )


def task_query(task: TaskImport, **extra: str) -> str:
    return urlencode(
        {
            "dag_id": task.dag_id,
            "run_id": task.run_id,
            "task_id": task.task_id,
            "map_index": str(task.map_index),
            **extra,
        }
    )


def bar_chart(title: str, counts: Mapping[str, int], *, element_id: str, colour: str) -> str:
    """Horizontal bars, one per reason, as inline SVG (largest first)."""
    items = sorted(((str(k), int(v)) for k, v in counts.items()), key=lambda kv: (-kv[1], kv[0]))
    if not items:
        return ""
    top = max(v for _, v in items) or 1
    label_w, bar_w, row_h = 330, 300, 22
    height = row_h * len(items) + 8
    rows = []
    for i, (reason, count) in enumerate(items):
        y = 4 + i * row_h
        width = max(2, round(bar_w * count / top))
        label = reason if len(reason) <= 52 else reason[:51] + "…"
        rows.append(
            f'<g class="bar" data-reason="{_e(reason)}" data-rows="{count}">'
            f"<title>{_e(reason)}: {count:,} rows</title>"
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" font-size="12" fill="currentColor">{_e(label)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{width}" height="{row_h - 6}" fill="{colour}"></rect>'
            f'<text x="{label_w + width + 4}" y="{y + 15}" font-size="12" fill="currentColor">{count:,}</text></g>'
        )
    return (
        f'<svg id="{element_id}" role="img" aria-label="{_e(title)}" xmlns="http://www.w3.org/2000/svg" '
        f'width="{label_w + bar_w + 70}" height="{height}" viewBox="0 0 {label_w + bar_w + 70} {height}">'
        f"{''.join(rows)}</svg>"
    )


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, element_id: str = "") -> str:
    id_attr = f' id="{element_id}"' if element_id else ""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(row) + "</tr>" for row in rows)
    return f"<table{id_attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _count_row(label: str, key: str, value: Any, note: str = "") -> list[str]:
    return [
        f"<th>{escape(label)}</th>",
        f'<td class="n" data-count="{escape(key)}">{_n(value) if value is not None else "not published"}</td>',
        f'<td class="muted">{escape(note)}</td>',
    ]


CHANGE_COUNTS = (
    ("rows_new", "new"),
    ("rows_changed", "changed"),
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


def _counts(summary: Mapping[str, Any]) -> str:
    checks = summary.get("row_checks") or {}
    records = checks.get("records") if isinstance(checks, dict) else None
    kept_out = summary.get("rows_kept_out") or 0
    processed, failed = summary.get("rows_processed") or 0, summary.get("rows_failed") or 0
    warned = summary.get("rows_with_warning") or 0
    sent = processed + failed
    rows = []
    if records is not None:
        rows.append(_count_row("Records in the source", "records", records))
    rows.append(_count_row("Kept out of what was sent", "rows_kept_out", kept_out))
    for cause, count in kept_out_by_cause(summary).items():
        rows.append(_count_row(f"  kept out: {cause}", f"kept_out:{cause}", count))
    rows.append(
        _count_row("Sent to Marketo", "rows_sent", sent, "processed + failed, as Marketo counts them")
    )
    rows.append(_count_row("Imported (processed)", "rows_processed", processed))
    rows.append(_count_row("Failed", "rows_failed", failed))
    rows.append(_count_row("With a warning (among the imported)", "rows_with_warning", warned))
    changes = summary.get("changes")
    if isinstance(changes, dict):
        for key, label in CHANGE_COUNTS:
            if key in changes:
                rows.append(_count_row(f"changed_rows_only: {label}", f"changes:{key}", changes[key]))
        if changes.get("full"):
            rows.append(
                _count_row(
                    "changed_rows_only: every row sent", "changes:full", "yes", changes.get("why_full") or ""
                )
            )
    html = _table(["", "rows", ""], rows, element_id="counts")
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


def _reasons(title: str, reasons: Mapping[str, int], element_id: str, colour: str) -> str:
    if not reasons:
        return ""
    return f"<h3>{escape(title)}</h3>" + bar_chart(title, reasons, element_id=element_id, colour=colour)


def _parts(summary: Mapping[str, Any]) -> str:
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
            f'<span title="{_e(b[k])}">{k.removesuffix("_at")} {_clock(b[k])}</span>'
            for k in ("submitted_at", "importing_at", "done_at")
            if b.get(k)
        ]
        rows.append(
            [
                f'<td class="n">{_e(part)}</td>',
                f'<td class="n">{_e(b.get("batch_id"))}</td>',  # ids, not amounts: no separators
                f"<td>{_e(b.get('status'))}</td>",
                f'<td class="n">{_n(b.get("rows_processed"))}</td>',
                f'<td class="n">{_n(b.get("rows_failed"))}</td>',
                f'<td class="n">{_n(b.get("rows_with_warning"))}</td>',
                f"<td>{_e(b.get('origin'))}</td>",
                f"<td>{'<br>'.join(times) or '<span class=muted>not published</span>'}</td>",
                f"<td>{_e(', '.join(notes))}</td>",
            ]
        )
    html = _table(
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
        f'<b data-count="resumes">{_n(summary.get("resumes") or 0)}</b></p>'
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


def _clock(value: Any) -> str:
    """``03:04:05.120`` (UTC) of an ISO 8601 time; the text as it is when it is not one."""
    from datetime import datetime, timezone

    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        return _e(value)
    return moment.strftime("%H:%M:%S.%f")[:12] if moment.microsecond else moment.strftime("%H:%M:%S")


def _seconds(value: Any) -> float | None:
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp() if value else None
    except ValueError:
        return None


def timeline(batches: Sequence[Mapping[str, Any]]) -> str:
    """The parts on a time axis, as inline SVG: from submitted (Marketo's answer to the upload) to
    done, grey while queued and coloured from the poll that first saw it importing. The times are
    the import's own (its polls see a change, they do not witness it), so a phase shorter than the
    poll interval may not show; the gaps between parts are the waits for a queue slot."""
    rows = []
    for b in batches:
        submitted, importing, done = (_seconds(b.get(f"{k}_at")) for k in ("submitted", "importing", "done"))
        if submitted is not None and done is not None:
            rows.append((b, submitted, importing, done))
    if not rows:
        return ""
    start = min(r[1] for r in rows)
    end = max(r[3] for r in rows)
    span = max(end - start, 1.0)
    label_w, width, row_h = 120, 520, 20
    height = row_h * len(rows) + 30

    def x(t: float) -> float:
        return round(label_w + width * (t - start) / span, 1)

    bars = []
    for i, (b, submitted, importing, done) in enumerate(rows):
        y = 4 + i * row_h
        begin = importing if importing is not None else done
        bars.append(
            f'<g class="part" data-part="{_e(b.get("part"))}" data-batch="{_e(b.get("batch_id"))}">'
            f"<title>part {_e(b.get('part'))}, batch {_e(b.get('batch_id'))}: submitted "
            f"{_e(b.get('submitted_at'))}, importing {_e(b.get('importing_at') or 'not seen')}, done "
            f"{_e(b.get('done_at'))}</title>"
            f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end" font-size="12" fill="currentColor">'
            f"part {_e(b.get('part'))}</text>"
            f'<rect class="queued" x="{x(submitted):g}" y="{y + 3}" width="{max(x(begin) - x(submitted), 1):g}" '
            f'height="{row_h - 6}" fill="#a0aec0"></rect>'
            f'<rect class="importing" x="{x(begin):g}" y="{y + 3}" width="{max(x(done) - x(begin), 1):g}" '
            f'height="{row_h - 6}" fill="#3182ce"></rect></g>'
        )
    axis_y = 4 + len(rows) * row_h + 14
    bars.append(
        f'<text x="{label_w}" y="{axis_y}" font-size="11" fill="currentColor">0 s</text>'
        f'<text x="{label_w + width}" y="{axis_y}" text-anchor="end" font-size="11" fill="currentColor">'
        f"{span:,.0f} s</text>"
    )
    return (
        f'<svg id="timeline" role="img" aria-label="The parts on a timeline" xmlns="http://www.w3.org/2000/svg" '
        f'width="{label_w + width + 20}" height="{height}" viewBox="0 0 {label_w + width + 20} {height}">'
        f"{''.join(bars)}</svg>"
        '<p class="muted">Grey: in Marketo\'s queue, or not yet seen importing; blue: importing, from the '
        "poll that first saw it. The times are the import's own polls, so a phase shorter than the poll "
        "interval may not show.</p>"
    )


def _first_rows(task: TaskImport, kind: str) -> str:
    try:
        header, rows = task.first_rows(kind)
    except Exception as exc:  # moved, deleted, the storage refused
        return (
            f'<p class="note" id="{kind}-unreadable">The {kind} file could not be read where the import wrote '
            f"it ({_e(type(exc).__name__)}: {_e(exc)}).</p>"
        )
    if not header:
        return ""
    wanted = [i for i, name in enumerate(header) if name in ("Source", "Source Line")]
    reason = next(
        (i for i, name in enumerate(header) if name.startswith("Import ") and name.endswith(" Reason")), None
    )
    others = [i for i in range(len(header)) if i not in wanted and i != reason][:4]
    order = [*wanted, *([reason] if reason is not None else []), *others]
    table = _table(
        [header[i] for i in order],
        ([f"<td>{_e(row[i]) if i < len(row) else ''}</td>" for i in order] for row in rows),
        element_id=f"{kind}-rows",
    )
    label = "failed" if kind == "failures" else "warned"
    return f"<h3>The first {len(rows)} {label} rows</h3>{table}"


def _downloads(task: TaskImport) -> str:
    links = []
    for kind in ("failures", "warnings"):
        if task.result_available(kind):
            where = "XCom" if kind in task.xcom_results else _e((task.summary or {}).get(f"{kind}_path"))
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


def _plan(summary: Mapping[str, Any]) -> str:
    from marketo_provider.plan_table import plan_lines

    checks = summary.get("row_checks") or {}
    failures = {
        str(k): int(v.get("rows", 0))
        for k, v in (checks.get("failures") or {}).items()
        if isinstance(v, dict)
    }
    warnings = {
        str(k): int(v.get("rows", 0))
        for k, v in (checks.get("warnings") or {}).items()
        if isinstance(v, dict)
    }
    text = "\n".join(plan_lines(dict(summary)))
    return (
        '<p class="note">validate_only: nothing was sent. What the import would do:</p>'
        f'<pre id="plan">{_e(text)}</pre>'
        "<h2>Predicted by reason</h2>"
        + (
            _reasons("Rows predicted to fail", failures, "failure-chart", "#e53e3e")
            or "<p>No row is predicted to fail.</p>"
        )
        + _reasons("Rows predicted to warn", warnings, "warning-chart", "#d69e2e")
    )


WAITS = {"completion": "for its batches to finish", "queue_slot": "for a slot in Marketo's queue"}


def _progress(progress: dict[str, Any] | None) -> str:
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
        _count_row(
            "Parts submitted",
            "progress:parts_submitted",
            progress["parts_submitted"],
            f"of {total:,}" if isinstance(total, int) else "of a number not known yet",
        ),
        _count_row("Parts done", "progress:parts_done", progress["parts_done"]),
        _count_row("Imported so far", "progress:rows_processed", progress["rows_processed"]),
        _count_row("Failed so far", "progress:rows_failed", progress["rows_failed"]),
        _count_row("Warned so far", "progress:rows_with_warning", progress["rows_with_warning"]),
        _count_row("API calls so far", "progress:api_calls", progress["api_calls"]),
    ]
    parts = _table(
        ["part", "batch", "status", "origin"],
        (
            [
                f'<td class="n">{_e(p["part"])}</td>',
                f'<td class="n">{_e(p["batch_id"])}</td>',
                f"<td>{_e(p['status'] or 'not done yet')}</td>",
                f"<td>{_e(p['origin'])}</td>",
            ]
            for p in progress["parts"]
        ),
        element_id="progress-parts",
    )
    wait = WAITS.get(str(progress.get("wait")), "in the triggerer")
    return (
        f"<h2>Progress</h2><p id=progress>Waiting {escape(wait)}: import of {_e(progress['source'])}.</p>"
        + _table(["", "", ""], rows, element_id="progress-counts")
        + parts
    )


def task_page(task: TaskImport) -> str:
    """The "Marketo import" view of one task instance."""
    title = f"Marketo import: {task.task_id}"
    head = (
        f"<h1>{_e(title)}</h1><p><span class=state id=state>{_e(task.state or 'no state')}</span> "
        f"<span class=muted>{_e(task.operator)} · run {_e(task.run_id)}"
        f"{f' · map index {task.map_index}' if task.map_index >= 0 else ''}</span></p>"
    )
    summary = task.summary
    if not task.is_import:
        body = head + "<p>This task is not a Marketo import: it published no import summary.</p>"
        return _page(title, body, refresh=False)
    if summary is None:
        if task.running:
            what = (
                f'<p class="note" id="running">The import is running ({_e(task.state)}). It publishes its '
                f"counts, parts and files when it ends; this page refreshes every {REFRESH_SECONDS} s.</p>"
            ) + _progress(task.progress)
        else:
            what = (
                '<p class="note">This import published no summary: it ended before it had one (see the task '
                "log for why).</p>"
            )
        return _page(title, head + what, refresh=task.running)
    if task.is_plan:
        return _page(title, head + _plan(summary), refresh=False)
    parts = [head]
    if task.running:
        parts.append(
            f'<p class="note" id="running">The task is {_e(task.state)}: this page refreshes every {REFRESH_SECONDS} s.</p>'
        )
    parts.append(
        f"<p>Source <b id=source>{_e(summary.get('source'))}</b> into "
        f"<b>{_e(summary.get('object_type'))}</b>; "
        f'<span data-count="api_calls">{_n(summary.get("api_calls") or 0)}</span> API calls to Marketo.</p>'
    )
    parts.append("<h2>Counts</h2>" + _counts(summary))
    charts = _reasons(
        "Failed rows by reason", summary.get("failure_reasons") or {}, "failure-chart", "#e53e3e"
    ) + _reasons(
        "Rows with a warning by reason", summary.get("warning_reasons") or {}, "warning-chart", "#d69e2e"
    )
    parts.append("<h2>By reason</h2>" + (charts or "<p>No row failed or warned.</p>"))
    parts.append("<h2>Parts</h2>" + _parts(summary))
    parts.append("<h2>Rows</h2>" + _first_rows(task, "failures") + _first_rows(task, "warnings"))
    parts.append("<h2>Downloads</h2>" + _downloads(task))
    parts.append(
        '<p class="muted">Places: a CSV source\'s line numbers count from 1 with the header as line 1; '
        "a Parquet source's or a query's rows count from 1 (Source Line and origins alike).</p>"
    )
    return _page(title, "".join(parts), refresh=task.running)


def run_page(dag_id: str, run_id: str, tasks: Sequence[TaskImport]) -> str:
    """One line per import of a DAG run, each linking to its task's view."""
    title = f"Marketo imports of {run_id}"
    rows = []
    for t in tasks:
        s = t.summary or {}
        kind = "plan (validate_only)" if t.is_plan else ("import" if t.summary else "no summary yet")
        rows.append(
            [
                f'<td><a href="ti?{escape(task_query(t))}">{_e(t.task_id)}'
                f"{f' [{t.map_index}]' if t.map_index >= 0 else ''}</a></td>",
                f"<td>{_e(t.state)}</td>",
                f"<td>{escape(kind)}</td>",
                f"<td>{_e(s.get('source'))}</td>",
                f'<td class="n">{_n(s.get("rows_processed", s.get("records_to_send")))}</td>',
                f'<td class="n">{_n(s.get("rows_failed"))}</td>',
                f'<td class="n">{_n(s.get("rows_with_warning"))}</td>',
                f'<td class="n">{_n(len(s.get("batches") or []) or s.get("parts"))}</td>',
            ]
        )
    table = _table(
        ["task", "state", "", "source", "imported (to send)", "failed", "warned", "parts"],
        rows,
        element_id="imports",
    )
    body = f"<h1>{_e(title)}</h1><p class=muted>DAG {_e(dag_id)}</p>" + (
        table if rows else "<p>No Marketo import in this run.</p>"
    )
    return _page(title, body, refresh=any(t.running for t in tasks))
