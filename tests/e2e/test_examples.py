"""The example DAGs: they load without errors and each runs against the sandbox to success."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pendulum
import pytest

from marketo_provider.testing import MarketoSandbox
from tests.e2e.conftest import task_states, task_xcom
from tests.helpers import cars_csv, leads_csv
from tests.s3 import S3Server

EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"


def test_example_folder_loads_without_import_errors() -> None:
    from marketo_provider.testing.dags import dag_bag

    bag = dag_bag(str(EXAMPLES))
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {
        "marketo_leads_from_object_storage",
        "marketo_webinar_registrants",
        "marketo_cars_custom_object",
        "marketo_submit_then_wait",
        "marketo_warehouse_unload",
        "marketo_sql_query",
        "marketo_nightly_crm_sync",
    }


def load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


@pytest.fixture
def variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("AIRFLOW_VAR_MARKETO_POLL_INTERVAL", "0.1")
    monkeypatch.setenv("AIRFLOW_VAR_MARKETO_SOURCE_CONN_ID", "")
    monkeypatch.setenv("AIRFLOW_VAR_MARKETO_RESULTS_ROOT", f"file://{tmp_path}/results")
    return tmp_path


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with S3Server() as server:
        yield server


def test_leads_from_object_storage(
    run_dag: Any,
    marketo_env: MarketoSandbox,
    variables: Path,
    s3: S3Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The example as written for S3: the export and the results in a bucket, through the Amazon
    provider and an aws connection (moto's S3 server on loopback)."""
    data, expected = leads_csv(500, fail_every=25, warn_every=40, multiline_every=7)
    bucket = s3.bucket()
    s3.put(f"s3://{bucket}/leads/2026-01-02.csv", data)
    monkeypatch.setenv(*s3.env_item())
    monkeypatch.setenv("AIRFLOW_VAR_MARKETO_SOURCE_CONN_ID", s3.conn_id)
    monkeypatch.setenv("AIRFLOW_VAR_MARKETO_LEADS_SOURCE", f"s3://{bucket}/leads/2026-01-02.csv")
    monkeypatch.setenv("AIRFLOW_VAR_MARKETO_RESULTS_ROOT", f"s3://{bucket}/marketo-results")
    monkeypatch.setenv("AIRFLOW_VAR_MARKETO_NEWSLETTER_LIST_ID", "77")
    dr = run_dag(load("marketo_leads_from_object_storage"))
    assert dr.state == "success", task_states(dr)
    summary = task_xcom(dr, "import_leads")
    assert summary["rows_failed"] == expected["failed"] and summary["rows_processed"] == expected["processed"]
    results = f"s3://{bucket}/marketo-results/{dr.run_id}"
    assert summary["failures_path"] == f"{results}/failures.csv"
    assert summary["warnings_path"] == f"{results}/warnings.csv"
    failures = s3.get(summary["failures_path"]).decode()
    assert failures.startswith("email,firstName,leadScore,address,Source,Source Line,Import Failure Reason\n")
    assert failures.count("Invalid data type in field Lead Score") == expected["failed"]
    assert len(marketo_env.imported_rows("leads")) == expected["processed"]
    assert len(marketo_env.backend.static_lists[77]) == expected["processed"]


def test_program_members(
    run_dag: Any, marketo_env: MarketoSandbox, variables: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (variables / "registrants.csv").write_bytes(
        b"email,firstName,registrationCode\na@example.com,Ann,R1\nb@example.com,Bob,R2\n"
    )
    monkeypatch.setenv("AIRFLOW_VAR_MARKETO_REGISTRANTS_SOURCE", str(variables / "registrants.csv"))
    dr = run_dag(load("marketo_program_members"))
    assert dr.state == "success", task_states(dr)
    assert set(marketo_env.backend.program_members[1044].values()) == {"Registered"}


def test_custom_objects(
    run_dag: Any, marketo_env: MarketoSandbox, variables: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tsv = cars_csv(40, fail_every=10).replace(b",", b"\t")
    (variables / "cars.tsv").write_bytes(tsv)
    monkeypatch.setenv("AIRFLOW_VAR_MARKETO_CARS_SOURCE", str(variables / "cars.tsv"))
    dr = run_dag(load("marketo_custom_objects"))
    assert dr.state == "success", task_states(dr)
    summary = task_xcom(dr, "import_cars")
    assert summary["rows_processed"] == 36 and summary["rows_failed"] == 4
    assert (
        Path(summary["failures_path"].removeprefix("file://"))
        .read_text()
        .startswith("vin\tmake\tyear\tcustomerEmail\tSource\tSource Line\tImport Failure Reason\n")
    )


def test_submit_then_wait(
    run_dag: Any, marketo_env: MarketoSandbox, variables: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, _ = leads_csv(300, warn_every=30, fail_every=150)
    (variables / "leads.csv").write_bytes(data)
    monkeypatch.setenv("AIRFLOW_VAR_MARKETO_LEADS_SOURCE", str(variables / "leads.csv"))
    dr = run_dag(load("marketo_submit_then_wait"))
    assert dr.state == "success", task_states(dr)
    triage = task_xcom(dr, "triage_failures")
    assert triage == {"failed": 2, "by_reason": {"Invalid data type in field Lead Score": 2}}
    # the sensor was given the operator's summary: it names the source, as the operator does
    assert task_xcom(dr, "wait_for_leads")["source"] == task_xcom(dr, "submit_leads")["source"]
    assert task_xcom(dr, "submit_leads")["source"] == str(variables / "leads.csv")


def test_nightly_crm_sync_sends_only_what_changed(
    run_dag: Any, marketo_env: MarketoSandbox, variables: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    export = variables / "leads.csv"
    rows = [f"u{i}@example.com,First{i},{i % 90}\n" for i in range(300)]
    export.write_text("email,firstName,leadScore\n" + "".join(rows))
    monkeypatch.setenv("AIRFLOW_VAR_MARKETO_CRM_EXPORT", str(export))
    monkeypatch.setenv("AIRFLOW_VAR_MARKETO_SYNC_STATE", str(variables / "state"))
    first = run_dag(load("marketo_nightly_crm_sync"), logical_date=pendulum.datetime(2026, 3, 10, tz="UTC"))
    assert first.state == "success", task_states(first)
    assert task_xcom(first, "sync_leads")["changes"]["rows_new"] == 300
    rows[5] = "u5@example.com,Renamed5,5\n"
    export.write_text("email,firstName,leadScore\n" + "".join(rows))
    imported = len(marketo_env.imported_rows("leads"))
    second = run_dag(load("marketo_nightly_crm_sync"), logical_date=pendulum.datetime(2026, 3, 11, tz="UTC"))
    assert second.state == "success", task_states(second)
    assert [r["email"] for r in marketo_env.imported_rows("leads")[imported:]] == ["u5@example.com"]
    changes = task_xcom(second, "sync_leads")["changes"]
    assert (changes["rows_changed"], changes["rows_unchanged"], changes["state_generation"]) == (1, 299, 2)
    sunday = run_dag(load("marketo_nightly_crm_sync"), logical_date=pendulum.datetime(2026, 3, 15, tz="UTC"))
    assert sunday.state == "success", task_states(sunday)
    assert task_xcom(sunday, "sync_leads")["changes"]["full"] is True  # full_refresh on Sundays
