from __future__ import annotations

from pathlib import Path

import pendulum

from marketo_provider.operators.bulk_import import MarketoBulkImportOperator
from marketo_provider.testing import MarketoSandbox
from tests.e2e.conftest import task_xcom


def test_smoke(run_dag, marketo_env: MarketoSandbox, tmp_path: Path) -> None:
    from airflow.sdk import DAG

    src = tmp_path / "leads.csv"
    src.write_bytes(b"email,firstName,leadScore\na@example.com,A,1\nb@example.com,B,x\nbad,C,3\n")
    with DAG("smoke", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
        MarketoBulkImportOperator(task_id="imp", source=str(src), poll_interval=0.1, deferrable=True)
    dr = run_dag(dag)
    assert dr.state == "success"
    print(task_xcom(dr, "imp"))
    print(task_xcom(dr, "imp", "failures"))
