"""The "Marketo import" page from what a task published: escaped, without credentials, refreshing
while the task runs, and counts that say whether they add up."""

from __future__ import annotations

import re
from typing import Any

from marketo_provider.plugins.app import _without_secrets
from marketo_provider.plugins.charts import bar_chart
from marketo_provider.plugins.page import run_page, task_page
from marketo_provider.plugins.published import TaskImport

FAILURES = (
    "email,leadScore,Source,Source Line,Import Failure Reason\n"
    "a@example.com,x,s3://bucket/in/leads.csv,7,Invalid data type in field Lead Score\n"
)


def summary(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "object_type": "leads",
        "source": "s3://AKIAEXAMPLE:wJalrXUtnFEMI@bucket/in/leads.csv",
        "batch_ids": [11, 12],
        "batches": [
            {
                "batch_id": 11,
                "part": 0,
                "status": "Complete",
                "rows_processed": 40,
                "rows_failed": 1,
                "rows_with_warning": 0,
                "origin": "leads.csv bytes 30-900",
            },
            {
                "batch_id": 12,
                "part": 1,
                "status": "Complete",
                "rows_processed": 50,
                "rows_failed": 0,
                "rows_with_warning": 2,
                "origin": "leads.csv bytes 900-1,800",
            },
        ],
        "rows_processed": 90,
        "rows_failed": 1,
        "rows_with_warning": 2,
        "failures_path": None,
        "warnings_path": None,
        "failure_reasons": {"Invalid data type in field Lead Score": 1},
        "warning_reasons": {"<script>alert(1)</script>": 2},
        "api_calls": 9,
        "resumes": 1,
        "parts_outcome_unknown": [],
        "parts_sent_twice": [],
        "row_checks": {"records": 95},
        "rows_kept_out": 4,
        "rows": {
            "records": 95,
            "blank_lines": 0,
            "rows": 95,
            "rows_to_send": 91,
            "rows_kept_out": 4,
            "kept_out": {"refused": 3, "without_key": 0, "earlier_repeats": 1, "unchanged": 0},
        },
        "changes": {
            "rows_new": 60,
            "rows_changed": 31,
            "rows_unchanged": 4,
            "keys_vanished": 2,
            "full": False,
        },
    }
    return {**base, **changes}


def task(state: str = "success", published: dict[str, Any] | None = None, **kw: Any) -> TaskImport:
    return TaskImport(
        dag_id="d",
        run_id="r",
        task_id="t",
        map_index=-1,
        state=state,
        operator="MarketoBulkImportOperator",
        summary=published,
        **kw,
    )


def count(page: str, key: str) -> str:
    match = re.search(rf'data-count="{re.escape(key)}">([^<]*)<', page)
    assert match, key
    return match.group(1)


def test_counts_by_cause_that_add_up() -> None:
    page = task_page(task(published=summary(), xcom_results={"failures": FAILURES}))
    assert count(page, "records") == "95"
    assert count(page, "rows_kept_out") == "4"
    assert count(page, "kept_out:refused") == "3"
    assert count(page, "kept_out:earlier repeats") == "1"
    assert count(page, "rows_sent") == "91"
    assert count(page, "changes:rows_new") == "60" and count(page, "changes:rows_unchanged") == "4"
    assert count(page, "changes:rows_changed") == "31" and count(page, "changes:keys_vanished") == "2"
    assert count(page, "resumes") == "1" and count(page, "api_calls") == "9"
    assert (
        '<p id="adds-up" class="ok">95 records = 4 kept out + 91 sent (90 imported + 1 failed).</p>' in page
    )


def test_counts_that_do_not_add_up_say_by_how_much() -> None:
    page = task_page(task(published=summary(rows_kept_out=0, rows=None)))
    assert 'id="adds-up" class="warn"' in page and "4 rows not counted" in page


def test_no_credential_and_nothing_unescaped() -> None:
    page = task_page(task(published=summary(), xcom_results={"failures": FAILURES}))
    assert "wJalrXUtnFEMI" not in page and "AKIAEXAMPLE" not in page
    assert "s3://***@bucket/in/leads.csv" in page
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    masked = _without_secrets(summary())
    assert masked["source"] == "s3://***@bucket/in/leads.csv"
    assert "wJalrXUtnFEMI" not in str(masked)


def test_the_failed_rows_lead_with_their_place_and_reason() -> None:
    page = task_page(task(published=summary(), xcom_results={"failures": FAILURES}))
    table = page.split('id="failures-rows"')[1].split("</table>")[0]
    assert "<th>Source</th><th>Source Line</th><th>Import Failure Reason</th><th>email</th>" in table
    assert (
        "<td>s3://bucket/in/leads.csv</td><td>7</td><td>Invalid data type in field Lead Score</td>" in table
    )
    assert (
        'id="download-failures" href="download?dag_id=d&amp;run_id=r&amp;task_id=t&amp;map_index=-1&amp;kind=failures"'
        in page
    )
    assert 'id="download-warnings"' not in page  # nothing published for them


def test_a_running_import_refreshes_and_says_what_it_lacks() -> None:
    page = task_page(task(state="deferred"))
    assert '<meta http-equiv="refresh" content="10">' in page
    assert 'id="running"' in page and 'id="counts"' not in page
    finished = task_page(task(state="failed"))
    assert "http-equiv" not in finished and "published no summary" in finished


def test_the_parts_on_a_timeline_when_their_times_are_published() -> None:
    first, second = summary()["batches"]
    batches = [
        {
            **first,
            "submitted_at": "2026-01-02T03:04:00+00:00",
            "importing_at": "2026-01-02T03:04:20+00:00",
            "done_at": "2026-01-02T03:04:40+00:00",
        },
        {**second, "submitted_at": "2026-01-02T03:04:40+00:00", "done_at": "2026-01-02T03:05:20+00:00"},
    ]
    page = task_page(task(published=summary(batches=batches)))
    assert '<span title="2026-01-02T03:04:00+00:00">submitted 03:04:00</span>' in page
    assert 'id="timeline-missing"' not in page
    svg = page.split('<svg id="timeline"')[1].split("</svg>")[0]
    rects = re.findall(r'<rect class="(\w+)" x="([\d.]+)" y="\d+" width="([\d.]+)"', svg)
    # 80 s over 520 px from x=120: part 0 queued 20 s, importing 20 s; part 1 never seen importing
    assert rects == [
        ("queued", "120", "130"),
        ("importing", "250", "130"),
        ("queued", "380", "260"),  # never seen importing: grey up to done, not an invented start
        ("importing", "640", "1"),
    ]
    assert "80 s</text>" in svg
    assert 'id="timeline-missing"' in task_page(task(published=summary()))


def test_bars_are_proportional_and_largest_first() -> None:
    svg = bar_chart("t", {"b": 5, "a": 10, "c": 1}, element_id="x", colour="red")
    reasons = re.findall(r'data-reason="([^"]+)" data-rows="(\d+)"', svg)
    assert reasons == [("a", "10"), ("b", "5"), ("c", "1")]
    widths = [int(w) for w in re.findall(r'<rect x="\d+" y="\d+" width="(\d+)"', svg)]
    assert widths == [300, 150, 30]
    assert bar_chart("t", {}, element_id="x", colour="red") == ""


def test_the_run_page_has_one_line_per_import() -> None:
    plan = task(published={"validate_only": True, "source": "x.csv", "records_to_send": 7, "parts": 1})
    page = run_page("d", "r", [task(published=summary()), plan])
    rows = page.split('id="imports"')[1].split("</tbody>")[0].count("<tr>") - 1
    assert rows == 2 and "plan (validate_only)" in page and "wJalrXUtnFEMI" not in page


def test_where_the_uis_frame_drops_downloads_the_view_says_so() -> None:
    import airflow

    before_33 = tuple(int(x) for x in airflow.__version__.split(".")[:2]) < (3, 3)
    page = task_page(task(published=summary(), xcom_results={"failures": FAILURES}))
    assert ('id="frame-blocks-downloads"' in page) is before_33
    assert (
        'id="own-page" href="ti?dag_id=d&amp;run_id=r&amp;task_id=t&amp;map_index=-1"' in page
    ) is before_33
