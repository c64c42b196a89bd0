"""Every row decision holds in every way of running: real DAGs (dag.test()) against the sandbox,
for each row option (skip, keep_last, changed_rows_only, all three) and each way of running
(on a worker, deferrable, submitted and concluded by the sensor, a task that fails after some
parts and is retried). Each source row is imported exactly once or is in the failures file with
its reason and its line; the summary's counts add up; with changed_rows_only the next night sends
only what changed and no lock is left."""

from __future__ import annotations

import csv
import io
import itertools
import time
from pathlib import Path
from typing import Any

import pendulum
import pytest

from marketo_provider.operators.bulk_import import MarketoBulkImportOperator
from marketo_provider.sensors.bulk_import import MarketoBulkImportSensor
from marketo_provider.testing import MarketoSandbox
from tests.e2e.conftest import task_states, task_xcom

_ids = itertools.count()
ROWS = 60
BAD = {7, 33}  # a Lead Score that is not a number: Marketo refuses the row
NO_KEY = {12}  # no email
REPEATS = {40: 3, 41: 20}  # row 40 repeats row 3's email, row 41 row 20's
CHANGED = {5, 50}  # changed before the second night

POLICIES: dict[str, dict[str, Any]] = {
    "skip": {"on_invalid_rows": "skip"},
    "keep_last": {"on_repeated_keys": "keep_last"},
    "changed": {"changed_rows_only": True},
    "all_three": {"on_invalid_rows": "skip", "on_repeated_keys": "keep_last", "changed_rows_only": True},
}
MODES = ["worker", "deferrable", "sensor", "retried"]


def write_source(path: Path, night: int) -> None:
    lines = ["email,firstName,leadScore\n"]
    for i in range(ROWS):
        email = "" if i in NO_KEY else f"u{REPEATS.get(i, i)}@example.com"
        name = f"Row{i}" + ("b" if night > 1 and i in CHANGED else "")
        score = "n/a" if i in BAD else str(i % 90)
        lines.append(f"{email},{name},{score}\n")
    path.write_text("".join(lines))


def line_of(i: int) -> int:
    return i + 2  # the header is line 1


def expected_night(options: dict[str, Any], night: int) -> tuple[set[int], set[int], set[int], set[int]]:
    """(rows sent, rows refused before upload, rows kept out otherwise, rows Marketo fails)."""
    skip = options.get("on_invalid_rows") == "skip"
    keep_last = options.get("on_repeated_keys") == "keep_last"
    invalid = BAD | NO_KEY
    everything = set(range(ROWS))
    refused = invalid if skip else set()
    earlier = set(REPEATS.values()) if keep_last else set()
    unchanged: set[int] = set()
    if options.get("changed_rows_only") and night > 1:
        # Confirmed last night: every row Marketo imported, per key the last one sent; unchanged
        # since unless in CHANGED. Rows without a key and rows that failed are sent again.
        unchanged = everything - invalid - CHANGED
    sent = everything - refused - earlier - unchanged
    return sent, refused, (earlier | unchanged) - refused, sent & invalid


def new_dag(name: str) -> Any:
    from airflow.sdk import DAG

    return DAG(f"{name}_{next(_ids)}", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False)


def build(mode: str, source: Path, results: Path, state: Path, options: dict[str, Any]) -> tuple[Any, str]:
    common: dict[str, Any] = {
        "source": str(source),
        "poll_interval": 0.05,
        "max_part_bytes": 700,
        "results_path": str(results),
        **options,
    }
    if options.get("changed_rows_only"):
        common["state_path"] = str(state)
    with new_dag(f"ledger_{mode}") as dag:
        if mode == "sensor":
            submit = MarketoBulkImportOperator(
                task_id="submit", wait_for_completion=False, deferrable=True, **common
            )
            MarketoBulkImportSensor(
                task_id="wait",
                batch_ids=submit.output,
                poll_interval=0.05,
                deferrable=True,
                timeout=120,
                results_path=str(results),
            )
            return dag, "wait"
        extra: dict[str, Any] = {"deferrable": mode == "deferrable"}
        if mode == "retried":
            extra.update(retries=1, retry_delay=pendulum.duration(seconds=0))
        MarketoBulkImportOperator(task_id="import", **common, **extra)
    return dag, "import"


def failures_of(results: Path) -> list[dict[str, str]]:
    path = results / "failures.csv"
    return list(csv.DictReader(io.StringIO(path.read_text()))) if path.exists() else []


@pytest.mark.parametrize("policy", list(POLICIES))
@pytest.mark.parametrize("mode", MODES)
def test_every_row_is_imported_once_or_reported_in_every_way_of_running(
    run_dag: Any, marketo_env: MarketoSandbox, tmp_path: Path, mode: str, policy: str
) -> None:
    options = POLICIES[policy]
    source, state = tmp_path / "leads.csv", tmp_path / "state"
    nights = 2 if options.get("changed_rows_only") else 1
    for night in range(1, nights + 1):
        write_source(source, night)
        results = tmp_path / f"results-{night}"
        before = len(marketo_env.imported_rows("leads"))
        if mode == "retried" and night == 1:
            # two parts go through, then an upload fails the task; the retry carries on
            marketo_env.inject_fault("/bulk/v1/leads.json", method="POST", http_status=500, skip=2)
        dag, task = build(mode, source, results, state, options)
        dr = run_dag(dag)
        sent, refused, kept_out, marketo_fails = expected_night(options, night)
        failures = failures_of(results)
        summary = task_xcom(dr, task)
        assert dr.state == "success" and summary is not None, task_states(dr)
        imported = [r["firstName"] for r in marketo_env.imported_rows("leads")[before:]]
        # every row sent and not failed is imported exactly once; nothing else is imported
        assert sorted(imported) == sorted(_name(i, night) for i in sent - marketo_fails)
        # every failed or refused row is in the failures file once, with its line
        by_line = {int(r["Source Line"]): r for r in failures}
        assert len(by_line) == len(failures) == len(refused | marketo_fails)
        assert set(by_line) == {line_of(i) for i in refused | marketo_fails}
        for i in refused:
            assert by_line[line_of(i)]["Import Failure Reason"].startswith("Refused before upload: ")
            assert by_line[line_of(i)]["Source"] == str(source)
        assert list(failures[0])[:3] == ["email", "firstName", "leadScore"] if failures else True
        # the counts add up
        rows = summary["rows"]
        assert rows["rows"] == ROWS == rows["rows_to_send"] + rows["rows_kept_out"]
        assert rows["rows_kept_out"] == sum(rows["kept_out"].values()) == len(refused | kept_out)
        assert rows["rows_to_send"] == len(sent) == summary["rows_processed"] + summary["rows_failed"]
        assert summary["rows_kept_out"] == rows["rows_kept_out"]
        if options.get("changed_rows_only"):
            changes = rows["changes"]
            assert changes["rows_new"] + changes["rows_changed"] + changes["rows_sent_again"] + changes[
                "rows_without_key"
            ] == len(sent)
            if night == 1:
                assert changes["rows_sent_again"] == 0  # no import before: nothing failed last time
            assert not (state / "lock.json").exists()
            assert summary["changes"]["state_generation"] == night


def _name(i: int, night: int) -> str:
    return f"Row{i}" + ("b" if night > 1 and i in CHANGED else "")


@pytest.mark.parametrize("how", ["failed", "timed_out"])
def test_a_night_that_fails_leaves_no_lock_and_the_next_sends_what_was_not_confirmed(
    run_dag: Any, marketo_env: MarketoSandbox, tmp_path: Path, how: str
) -> None:
    source, state = tmp_path / "leads.csv", tmp_path / "state"

    def night(n: int, **extra: Any) -> Any:
        with new_dag(f"nightly_{how}") as dag:
            MarketoBulkImportOperator(
                task_id="import",
                source=str(source),
                poll_interval=0.05,
                max_part_bytes=700,
                changed_rows_only=True,
                state_path=str(state),
                **extra,
            )
        return run_dag(dag)

    write_source(source, 1)
    assert night(1).state == "success"
    write_source(source, 2)  # rows 5 and 50 change
    before = len(marketo_env.imported_rows("leads"))
    if how == "failed":
        marketo_env.fail_next_job("Failed to import: internal error")
        dr = night(2)
    else:
        marketo_env.hold_next_jobs(1)  # its one part never finishes: the timeout ends the night
        dr = night(2, timeout=2)
        marketo_env.release()
    assert dr.state == "failed"
    assert not (state / "lock.json").exists()  # released however the import ended
    # what the failed night sent goes on in Marketo (it cannot cancel an import): let it finish
    waited = time.monotonic()
    while {j.status for j in marketo_env.jobs} - {"Complete", "Failed"}:
        assert time.monotonic() - waited < 120, [j.status for j in marketo_env.jobs]
        time.sleep(0.05)
    before = len(marketo_env.imported_rows("leads"))
    dr = night(3)
    assert dr.state == "success", task_states(dr)
    sent = sorted(r["firstName"] for r in marketo_env.imported_rows("leads")[before:])
    # what night 2 did not get confirmed, and that only (the rows Marketo refuses are sent every night)
    assert sent == sorted(["Row5b", "Row50b"])
    assert not (state / "lock.json").exists()
