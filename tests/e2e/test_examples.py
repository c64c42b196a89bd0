"""The example DAGs: they load without errors and each runs against the sandbox to success."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from marketo_provider.testing import MarketoSandbox
from tests.e2e.conftest import task_states, task_xcom
from tests.helpers import cars_csv, leads_csv

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


def test_leads_from_object_storage(
    run_dag: Any, marketo_env: MarketoSandbox, variables: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, expected = leads_csv(500, fail_every=25, warn_every=40, multiline_every=7)
    (variables / "leads.csv").write_bytes(data)
    monkeypatch.setenv("AIRFLOW_VAR_MARKETO_LEADS_SOURCE", f"file://{variables}/leads.csv")
    monkeypatch.setenv("AIRFLOW_VAR_MARKETO_NEWSLETTER_LIST_ID", "77")
    dr = run_dag(load("marketo_leads_from_object_storage"))
    assert dr.state == "success", task_states(dr)
    summary = task_xcom(dr, "import_leads")
    assert summary["rows_failed"] == expected["failed"] and summary["rows_processed"] == expected["processed"]
    assert summary["failures_path"] == f"file://{variables}/results/{dr.run_id}/failures.csv"
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
        .startswith("vin\tmake\tyear\tcustomerEmail\tImport Failure Reason\n")
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
