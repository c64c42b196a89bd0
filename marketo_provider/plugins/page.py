"""The "Marketo import" pages as self-contained HTML: inline style (``page.css``, read from the
package), charts as inline SVG, no script, font or style from anywhere else (air-gapped
deployments are common). Every value is escaped and passes
:func:`~marketo_provider.plugins.published.safe` (no URI credentials, no held secret)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from importlib.resources import files

from marketo_provider.plugins import sections
from marketo_provider.plugins.markup import escaped, html_table, number, task_query
from marketo_provider.plugins.published import TaskImport

REFRESH_SECONDS = 10

STYLE = files("marketo_provider.plugins").joinpath("page.css").read_text(encoding="utf-8")


def _page(title: str, body: str, *, refresh: bool) -> str:
    meta = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' if refresh else ""
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"{meta}<title>{escaped(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>"
    )


def task_page(task: TaskImport) -> str:
    """The "Marketo import" view of one task instance."""
    title = f"Marketo import: {task.task_id}"
    head = (
        f"<h1>{escaped(title)}</h1><p><span class=state id=state>{escaped(task.state or 'no state')}</span> "
        f"<span class=muted>{escaped(task.operator)} · run {escaped(task.run_id)}"
        f"{f' · map index {task.map_index}' if task.map_index >= 0 else ''}</span></p>"
    )
    summary = task.summary
    if not task.is_import:
        body = head + "<p>This task is not a Marketo import: it published no import summary.</p>"
        return _page(title, body, refresh=False)
    if summary is None:
        if task.running:
            what = (
                f'<p class="note" id="running">The import is running ({escaped(task.state)}). It publishes its '
                f"counts, parts and files when it ends; this page refreshes every {REFRESH_SECONDS} s.</p>"
            ) + sections.progress(task.progress)
        else:
            what = (
                '<p class="note">This import published no summary: it ended before it had one (see the task '
                "log for why).</p>"
            )
        return _page(title, head + what, refresh=task.running)
    if task.is_plan:
        return _page(title, head + sections.plan(summary), refresh=False)
    parts = [head]
    if task.running:
        parts.append(
            f'<p class="note" id="running">The task is {escaped(task.state)}: this page refreshes every {REFRESH_SECONDS} s.</p>'
        )
    parts.append(
        f"<p>Source <b id=source>{escaped(summary.get('source'))}</b> into "
        f"<b>{escaped(summary.get('object_type'))}</b>; "
        f'<span data-count="api_calls">{number(summary.get("api_calls") or 0)}</span> API calls to Marketo.</p>'
    )
    parts.append("<h2>Counts</h2>" + sections.counts(summary))
    charts = sections.reasons(
        "Failed rows by reason", summary.get("failure_reasons") or {}, "failure-chart", "#e53e3e"
    ) + sections.reasons(
        "Rows with a warning by reason", summary.get("warning_reasons") or {}, "warning-chart", "#d69e2e"
    )
    parts.append("<h2>By reason</h2>" + (charts or "<p>No row failed or warned.</p>"))
    parts.append("<h2>Parts</h2>" + sections.parts(summary))
    parts.append(
        "<h2>Rows</h2>" + sections.first_rows(task, "failures") + sections.first_rows(task, "warnings")
    )
    parts.append("<h2>Downloads</h2>" + sections.downloads(task))
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
                f'<td><a href="ti?{escape(task_query(t))}">{escaped(t.task_id)}'
                f"{f' [{t.map_index}]' if t.map_index >= 0 else ''}</a></td>",
                f"<td>{escaped(t.state)}</td>",
                f"<td>{escape(kind)}</td>",
                f"<td>{escaped(s.get('source'))}</td>",
                f'<td class="n">{number(s.get("rows_processed", s.get("records_to_send")))}</td>',
                f'<td class="n">{number(s.get("rows_failed"))}</td>',
                f'<td class="n">{number(s.get("rows_with_warning"))}</td>',
                f'<td class="n">{number(len(s.get("batches") or []) or s.get("parts"))}</td>',
            ]
        )
    table = html_table(
        ["task", "state", "", "source", "imported (to send)", "failed", "warned", "parts"],
        rows,
        element_id="imports",
    )
    body = f"<h1>{escaped(title)}</h1><p class=muted>DAG {escaped(dag_id)}</p>" + (
        table if rows else "<p>No Marketo import in this run.</p>"
    )
    return _page(title, body, refresh=any(t.running for t in tasks))
