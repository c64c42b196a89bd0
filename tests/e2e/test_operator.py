"""The bulk import end to end: real DAGs run with dag.test() over real HTTP against the sandbox."""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pendulum
import pytest

from marketo_provider._compat import AirflowException, AirflowFailException
from marketo_provider.api import MarketoQuotaExceededError, MarketoValueError
from marketo_provider.importing import ImportFailedError
from marketo_provider.operators.bulk_import import MarketoBulkImportOperator
from marketo_provider.sensors.bulk_import import MarketoBulkImportSensor
from marketo_provider.testing import MarketoSandbox
from tests.e2e.conftest import task_states, task_xcom
from tests.helpers import cars_csv, leads_csv

_ids = itertools.count()
HAS_TASK_STATE_STORE = tuple(int(x) for x in __import__("airflow").__version__.split(".")[:2]) >= (3, 3)


def dag_id(name: str) -> str:
    return f"{name}_{next(_ids)}"


def new_dag(name: str) -> Any:
    from airflow.sdk import DAG

    return DAG(dag_id(name), schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False)


@pytest.fixture
def queue_of_two(monkeypatch: pytest.MonkeyPatch) -> Iterator[MarketoSandbox]:
    """A sandbox whose queue holds two jobs, one importing at a time."""
    from marketo_provider.hooks.marketo import clear_token_cache

    clear_token_cache()
    # Jobs of a second: the parts are uploaded faster than that, so the queue fills (1016) even on a busy machine.
    with MarketoSandbox(queued_seconds=0.05, import_seconds=1.0, max_queued=2, max_importing=1) as sb:
        for key, value in sb.env().items():
            monkeypatch.setenv(key, value)
        yield sb


def rows_by_key(rows: list[dict[str, str]], key: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r[key]] = counts.get(r[key], 0) + 1
    return counts


CASES = {
    "leads": ({}, "email"),
    "program_members": ({"program_id": 1044, "program_member_status": "On List"}, "email"),
    "custom_objects": ({"custom_object_name": "car_c"}, "vin"),
}


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferrable", "sync"])
@pytest.mark.parametrize("object_type", list(CASES))
def test_each_object_type_in_parts_through_a_queue_of_two(
    run_dag: Any, queue_of_two: MarketoSandbox, tmp_path: Path, object_type: str, deferrable: bool
) -> None:
    kwargs, key = CASES[object_type]
    data = (
        cars_csv(300, fail_every=50)
        if object_type == "custom_objects"
        else leads_csv(300, fail_every=50, warn_every=70, multiline_every=9)[0]
    )
    source = tmp_path / "source.csv"
    source.write_bytes(data)
    with new_dag(f"parts_{object_type}") as dag:
        MarketoBulkImportOperator(
            task_id="import",
            source=str(source),
            object_type=object_type,
            poll_interval=0.05,
            deferrable=deferrable,
            max_part_bytes=4000,
            **kwargs,
        )
    dr = run_dag(dag)
    assert dr.state == "success", task_states(dr)
    summary = task_xcom(dr, "import")
    assert len(summary["batch_ids"]) >= 3
    # every part went through the queue of two: Marketo answered 1016 and the task waited for a slot
    refused = [c for c in queue_of_two.calls_to("/bulk/v1/*", "POST") if c.error_code == "1016"]
    assert refused, "the queue of two never filled"
    imported = queue_of_two.imported_rows(object_type, kwargs.get("custom_object_name"))
    expected = list(csv.DictReader(io.StringIO(data.decode())))
    failed = summary["rows_failed"]
    assert summary["rows_processed"] == len(imported) == len(expected) - failed
    assert set(rows_by_key(imported, key).values()) == {1}  # every row at most once...
    failures = list(csv.DictReader(io.StringIO(task_xcom(dr, "import", "failures"))))
    assert len(failures) == failed > 0
    # ...and every source row exactly once: imported or reported as failed
    assert sorted([r[key] for r in imported] + [r[key] for r in failures]) == sorted(r[key] for r in expected)
    assert summary["batch_ids"] == [j.batch_id for j in queue_of_two.jobs]
    assert [b["part"] for b in summary["batches"]] == list(range(len(summary["batch_ids"])))


def test_results_merged_exactly_in_xcom(run_dag: Any, marketo_env: MarketoSandbox, tmp_path: Path) -> None:
    data, expected = leads_csv(400, fail_every=37, warn_every=41, multiline_every=5)
    source = tmp_path / "leads.csv"
    source.write_bytes(data)
    with new_dag("xcom_results") as dag:
        MarketoBulkImportOperator(
            task_id="import", source=str(source), poll_interval=0.05, deferrable=True, max_part_bytes=5000
        )
    dr = run_dag(dag)
    assert dr.state == "success"
    summary = task_xcom(dr, "import")
    jobs = marketo_env.jobs
    assert len(jobs) == len(summary["batch_ids"]) >= 3
    assert summary["rows_processed"] == sum(j.processed for j in jobs) == expected["processed"]
    assert summary["rows_failed"] == sum(j.failed for j in jobs) == expected["failed"]
    assert summary["rows_with_warning"] == sum(j.warned for j in jobs) == expected["warned"]
    assert summary["failures_path"] is None and summary["warnings_path"] is None
    source_lines = data.decode().split("\n")
    for kind, reason in (("failures", "Import Failure Reason"), ("warnings", "Import Warning Reason")):
        text = task_xcom(dr, "import", kind)
        merged = list(csv.reader(io.StringIO(text)))
        assert merged[0] == ["email", "firstName", "leadScore", "address", "Source", "Source Line", reason]
        marketos = [
            row
            for j in jobs
            for row in list(csv.reader(io.StringIO(getattr(j, f"{kind}_file").decode())))[1:]
        ]
        assert [r[:4] + r[6:] for r in merged[1:]] == marketos  # every part's rows in order, nothing else
        assert {r[4] for r in merged[1:]} == {str(source)}
        # each row names the line its record starts on
        assert all(source_lines[int(r[5]) - 1].startswith(r[0] + ",") for r in merged[1:])
        assert text.count(reason) == 1


def test_results_under_a_file_results_path(run_dag: Any, marketo_env: MarketoSandbox, tmp_path: Path) -> None:
    data, expected = leads_csv(200, fail_every=20, warn_every=30)
    source = tmp_path / "leads.csv"
    source.write_bytes(data)
    results = tmp_path / "results"
    with new_dag("path_results") as dag:
        MarketoBulkImportOperator(
            task_id="import",
            source=f"file://{source}",
            poll_interval=0.05,
            deferrable=False,
            max_part_bytes=3000,
            results_path=f"file://{results}/{{{{ run_id }}}}/",
        )
    dr = run_dag(dag)
    assert dr.state == "success"
    summary = task_xcom(dr, "import")
    folder = results / dr.run_id
    assert summary["failures_path"] == f"file://{folder}/failures.csv"
    assert summary["warnings_path"] == f"file://{folder}/warnings.csv"
    failures = list(csv.DictReader((folder / "failures.csv").open()))
    warnings = list(csv.DictReader((folder / "warnings.csv").open()))
    assert len(failures) == expected["failed"] == summary["rows_failed"]
    assert len(warnings) == expected["warned"] == summary["rows_with_warning"]
    assert task_xcom(dr, "import", "failures") is None


def test_no_file_written_without_rows(run_dag: Any, marketo_env: MarketoSandbox, tmp_path: Path) -> None:
    source = tmp_path / "leads.csv"
    source.write_bytes(leads_csv(20)[0])
    with new_dag("clean_results") as dag:
        MarketoBulkImportOperator(
            task_id="import", source=str(source), poll_interval=0.05, results_path=f"file://{tmp_path}/out"
        )
    dr = run_dag(dag)
    assert dr.state == "success"
    summary = task_xcom(dr, "import")
    assert summary["failures_path"] is None and summary["warnings_path"] is None
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferrable", "poke"])
def test_submit_then_sensor(
    run_dag: Any, marketo_env: MarketoSandbox, tmp_path: Path, deferrable: bool
) -> None:
    data, expected = leads_csv(150, fail_every=10)
    source = tmp_path / "leads.csv"
    source.write_bytes(data)
    with new_dag("sensor") as dag:
        submit = MarketoBulkImportOperator(
            task_id="submit",
            source=str(source),
            wait_for_completion=False,
            deferrable=deferrable,
            max_part_bytes=2500,
        )
        wait = MarketoBulkImportSensor(
            task_id="wait",
            batch_ids="{{ ti.xcom_pull(task_ids='submit')['batch_ids'] }}",
            poll_interval=0.05,
            deferrable=deferrable,
            timeout=60,
        )
        submit >> wait
    dr = run_dag(dag)
    assert dr.state == "success", task_states(dr)
    submitted = task_xcom(dr, "submit")
    assert {b["status"] for b in submitted["batches"]} == {"Queued"} and submitted["rows_processed"] == 0
    summary = task_xcom(dr, "wait")
    assert summary["batch_ids"] == submitted["batch_ids"] and len(summary["batch_ids"]) >= 2
    assert summary["rows_failed"] == expected["failed"] and summary["rows_processed"] == expected["processed"]
    assert len(task_xcom(dr, "wait", "failures").splitlines()) == expected["failed"] + 1


def test_failed_job_fails_the_task_after_publishing(
    run_dag: Any, marketo_env: MarketoSandbox, tmp_path: Path
) -> None:
    source = tmp_path / "leads.csv"
    source.write_bytes(leads_csv(100, fail_every=10)[0])
    marketo_env.fail_next_job("Failed to import: the file could not be processed")
    with new_dag("failed_job") as dag:
        MarketoBulkImportOperator(
            task_id="import", source=str(source), poll_interval=0.05, deferrable=True, max_part_bytes=2000
        )
    dr = run_dag(dag)
    assert dr.state == "failed"
    summary = task_xcom(dr, "import")
    assert summary["batches"][0]["status"] == "Failed"
    assert summary["batches"][0]["message"] == "Failed to import: the file could not be processed"
    assert task_xcom(dr, "import", "failures")  # the other parts' failures were still published


def test_max_failed_rows(run_dag: Any, marketo_env: MarketoSandbox, tmp_path: Path) -> None:
    source = tmp_path / "leads.csv"
    source.write_bytes(leads_csv(30, fail_every=10)[0])
    with new_dag("max_failed") as dag:
        MarketoBulkImportOperator(task_id="ok", source=str(source), poll_interval=0.05, max_failed_rows=3)
        # Values not checked before upload: Marketo's counts decide, after the results are published.
        MarketoBulkImportOperator(
            task_id="too_many", source=str(source), poll_interval=0.05, max_failed_rows=2, check_values=False
        )
    dr = run_dag(dag)
    states = task_states(dr)
    assert states == {"ok": "success", "too_many": "failed"}
    assert task_xcom(dr, "too_many")["rows_failed"] == 3
    assert task_xcom(dr, "too_many", "failures").count("\n") == 4


def test_max_failed_rows_stops_before_upload_when_predicted(
    run_dag: Any, marketo_env: MarketoSandbox, tmp_path: Path
) -> None:
    source = tmp_path / "leads.csv"
    source.write_bytes(leads_csv(30, fail_every=10)[0])
    with new_dag("max_failed_predicted") as dag:
        MarketoBulkImportOperator(
            task_id="too_many", source=str(source), poll_interval=0.05, max_failed_rows="{{ 1 + 1 }}"
        )
    dr = run_dag(dag)
    assert task_states(dr) == {"too_many": "failed"}
    assert marketo_env.calls_to("/bulk/v1/*") == []  # stopped in pre-flight: nothing sent
    assert task_xcom(dr, "too_many") is None


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferrable", "sync"])
def test_deadline(run_dag: Any, marketo_env: MarketoSandbox, tmp_path: Path, deferrable: bool) -> None:
    source = tmp_path / "leads.csv"
    source.write_bytes(leads_csv(10)[0])
    marketo_env.hold_next_jobs(1)  # the job never finishes: only the deadline ends the wait
    with new_dag("deadline") as dag:
        MarketoBulkImportOperator(
            task_id="import", source=str(source), poll_interval=0.05, timeout=2, deferrable=deferrable
        )
    dr = run_dag(dag)
    assert dr.state == "failed"
    # The deadline counts from the start: a pre-flight slowed by a busy machine may use it up before
    # the part is sent. Either way nothing finished, and a job sent is still there (Marketo cannot
    # cancel it).
    assert {j.status for j in marketo_env.jobs} <= {"Queued"}


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferrable", "sync"])
def test_1016_storm(run_dag: Any, marketo_env: MarketoSandbox, tmp_path: Path, deferrable: bool) -> None:
    data, expected = leads_csv(120)
    source = tmp_path / "leads.csv"
    source.write_bytes(data)
    marketo_env.inject_fault("/bulk/v1/leads.json", code="1016", count=6)
    with new_dag("storm") as dag:
        MarketoBulkImportOperator(
            task_id="import",
            source=str(source),
            poll_interval=0.05,
            deferrable=deferrable,
            max_part_bytes=1500,
        )
    dr = run_dag(dag)
    assert dr.state == "success"
    assert len([c for c in marketo_env.calls_to("/bulk/v1/leads.json") if c.error_code == "1016"]) == 6
    assert set(rows_by_key(marketo_env.imported_rows("leads"), "email").values()) == {1}
    assert len(marketo_env.imported_rows("leads")) == expected["rows"]


def test_token_expiry_during_the_wait(run_dag: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from marketo_provider.hooks.marketo import clear_token_cache

    clear_token_cache()
    with MarketoSandbox(queued_seconds=0.1, import_seconds=2.5, token_life=1) as sb:
        for key, value in sb.env().items():
            monkeypatch.setenv(key, value)
        source = tmp_path / "leads.csv"
        source.write_bytes(leads_csv(20)[0])
        sb.inject_fault("/bulk/v1/leads/batch/*", code="602")
        with new_dag("token_expiry") as dag:
            MarketoBulkImportOperator(
                task_id="import", source=str(source), poll_interval=0.2, deferrable=True
            )
        dr = run_dag(dag)
        assert dr.state == "success"
        assert len(sb.calls_to("/identity/oauth/token")) >= 3
        assert all(c.error_code in (None, "602") for c in sb.calls)


def test_retried_task_reattaches_and_never_submits_a_part_twice(
    run_dag: Any, marketo_env: MarketoSandbox, tmp_path: Path
) -> None:
    data, expected = leads_csv(200)
    source = tmp_path / "leads.csv"
    source.write_bytes(data)
    # two parts go through, then an upload is refused with an error that stops the task
    marketo_env.inject_fault("/bulk/v1/leads.json", method="POST", http_status=500, skip=2)
    with new_dag("retry") as dag:
        MarketoBulkImportOperator(
            task_id="import",
            source=str(source),
            poll_interval=0.05,
            max_part_bytes=2500,
            retries=1,
            retry_delay=pendulum.duration(seconds=0),
        )
    dr = run_dag(dag)
    assert dr.state == "success", task_states(dr)
    posts = marketo_env.calls_to("/bulk/v1/leads.json", "POST")
    assert [c.status for c in posts][:4] == [200, 200, 500, 200]
    accepted = [c.batch_id for c in posts if c.batch_id]
    summary = task_xcom(dr, "import")
    rows = marketo_env.imported_rows("leads")
    if not HAS_TASK_STATE_STORE:
        # Airflow < 3.3 (documented): the retry starts over and submits every part again
        assert accepted[2:] == summary["batch_ids"]
        assert len(rows_by_key(rows, "email")) == expected["rows"] < len(rows)
        return
    assert accepted == summary["batch_ids"] and len(accepted) == len(set(accepted)) >= 4
    assert [b["part"] for b in summary["batches"]] == list(range(len(accepted)))
    assert len(rows) == expected["rows"] and set(rows_by_key(rows, "email").values()) == {1}
    # the describe call of the pre-flight ran once: the retry resumed instead of starting over
    assert len(marketo_env.calls_to("/rest/v1/leads/describe2.json")) == 1


def test_header_only_source_makes_no_call(run_dag: Any, marketo_env: MarketoSandbox, tmp_path: Path) -> None:
    source = tmp_path / "leads.csv"
    source.write_bytes(b"email,firstName\n")
    with new_dag("header_only") as dag:
        MarketoBulkImportOperator(task_id="import", source=str(source), check_columns=False)
    dr = run_dag(dag)
    assert dr.state == "success"
    assert task_xcom(dr, "import")["batch_ids"] == []
    assert marketo_env.calls == []


def test_bad_input_fails_before_any_import(run_dag: Any, marketo_env: MarketoSandbox, tmp_path: Path) -> None:
    source = tmp_path / "members.csv"
    source.write_bytes(b"firstName,company\nAnn,Acme\n")
    with new_dag("bad_input") as dag:
        MarketoBulkImportOperator(
            task_id="import",
            source=str(source),
            object_type="program_members",
            program_id=7,
            program_member_status="On List",
            retries=3,
        )
    dr = run_dag(dag)
    assert dr.state == "failed"
    assert marketo_env.calls_to("/bulk/v1/*") == []


FAILURES: dict[str, BaseException] = {}
RAISED: dict[str, BaseException] = {}


def _note_failure(context: Any) -> None:
    error = context.get("exception")
    if error is not None:
        FAILURES[context["ti"].task_id] = error


class _FailureListener:
    """What a failed task raised, as Airflow's listeners are told it."""

    from airflow.listeners import hookimpl

    @hookimpl
    def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: Any) -> None:
        if isinstance(error, BaseException):
            RAISED[task_instance.task_id] = error


@pytest.fixture
def failures() -> Iterator[Any]:
    """What a task raised, as its ``on_failure_callback`` sees it (``context["exception"]``). Airflow
    3.1's ``dag.test()`` runs the callbacks without it (its workers set it): there the error its
    listeners are told is taken, the same object."""
    try:
        from airflow.sdk.listener import get_listener_manager
    except ImportError:  # Airflow 3.1
        from airflow.listeners.listener import get_listener_manager  # type: ignore[no-redef]
    manager = get_listener_manager()
    listener = _FailureListener()
    manager.add_listener(listener)
    FAILURES.clear()
    RAISED.clear()
    try:
        yield lambda task_id: FAILURES.get(task_id) or RAISED[task_id]
    finally:
        manager.pm.unregister(listener)


def test_a_failure_callback_tells_our_errors_apart_by_class(
    run_dag: Any, marketo_env: MarketoSandbox, tmp_path: Path, failures: Any
) -> None:
    members = tmp_path / "members.csv"
    members.write_bytes(b"firstName,company\nAnn,Acme\n")
    leads = tmp_path / "leads.csv"
    leads.write_bytes(leads_csv(30, fail_every=10)[0])
    with new_dag("failure_callback") as dag:
        MarketoBulkImportOperator(
            task_id="bad_input",
            source=str(members),
            object_type="program_members",
            program_id=7,
            program_member_status="On List",
            on_failure_callback=_note_failure,
        )
        MarketoBulkImportOperator(
            task_id="too_many",
            source=str(leads),
            poll_interval=0.05,
            max_failed_rows=2,
            check_values=False,
            on_failure_callback=_note_failure,
        )
    dr = run_dag(dag)
    assert task_states(dr) == {"bad_input": "failed", "too_many": "failed"}
    bad_input, too_many = failures("bad_input"), failures("too_many")
    assert isinstance(bad_input, MarketoValueError) and isinstance(bad_input, AirflowFailException)
    assert isinstance(too_many, ImportFailedError) and isinstance(too_many, AirflowException)
    assert too_many.problems and str(too_many) == "; ".join(too_many.problems)


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferrable", "sync"])
def test_a_polling_error_keeps_its_class_whether_the_wait_was_deferred_or_not(
    run_dag: Any, marketo_env: MarketoSandbox, tmp_path: Path, deferrable: bool, failures: Any
) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_bytes(leads_csv(20)[0])
    marketo_env.inject_fault("/bulk/v1/leads/batch/*", code="607", count=1000)
    task_id = f"quota_{'deferred' if deferrable else 'sync'}"
    with new_dag(task_id) as dag:
        MarketoBulkImportOperator(
            task_id=task_id,
            source=str(leads),
            poll_interval=0.05,
            deferrable=deferrable,
            on_failure_callback=_note_failure,
        )
    dr = run_dag(dag)
    assert task_states(dr) == {task_id: "failed"}
    failure = failures(task_id)
    assert isinstance(failure, MarketoQuotaExceededError) and isinstance(failure, AirflowException)
    assert failure.code == "607" and "607" in str(failure)


def test_upload_with_unknown_outcome_is_never_resent(
    run_dag: Any, marketo_env: MarketoSandbox, tmp_path: Path
) -> None:
    data, _ = leads_csv(120, fail_every=15)
    source = tmp_path / "leads.csv"
    source.write_bytes(data)
    # the second upload is processed by Marketo, but the answer is lost on the way back
    marketo_env.inject_fault(
        "/bulk/v1/leads.json", method="POST", drop_connection=True, after_processing=True, skip=1
    )
    with new_dag("uncertain") as dag:
        MarketoBulkImportOperator(
            task_id="import",
            source=str(source),
            poll_interval=0.05,
            max_part_bytes=2000,
            retries=1,
            retry_delay=pendulum.duration(seconds=0),
        )
    dr = run_dag(dag)
    assert dr.state == "failed"  # says which part may be missing instead of guessing
    posts = marketo_env.calls_to("/bulk/v1/leads.json", "POST")
    assert len(posts) == len(marketo_env.jobs)  # one upload per part, the lost answer included; none resent
    rows = marketo_env.imported_rows("leads")
    assert set(rows_by_key(rows, "email").values()) == {1}
    summary = task_xcom(dr, "import")
    assert len(summary["batch_ids"]) == len(posts) - 1  # every part but the one whose answer was lost
    assert task_xcom(dr, "import", "failures")  # results of the others still published
