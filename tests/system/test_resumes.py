"""A deferrable import of many parts in a real Airflow (API server, scheduler with LocalExecutor,
DAG processor, triggerer; PostgreSQL) whose own batches keep Marketo's queue full, polling every
2 s. The task resumes a few times, never inside Airflow's window for the exit of the worker that
deferred it (on Airflow 3.1 the scheduler fails a task resumed there: apache/airflow#72716), and
every row reaches Marketo once, with no retry."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from marketo_provider.testing import MarketoSandbox
from tests.system.cluster import LocalAirflow, Servers, find_servers
from tests.system.processes import Processes

SERVERS = find_servers()
pytestmark = pytest.mark.skipif(not isinstance(SERVERS, Servers), reason=str(SERVERS))

DAG_ID = "marketo_system_resumes"
TASK = "import_leads"
PART_BYTES = 2000
HEADER = "email,firstName,leadScore\n"

DAG_FILE = f'''
"""An import that keeps Marketo's queue full, polling every 2 s."""
import pendulum
from airflow.sdk import DAG

from marketo_provider.operators.bulk_import import MarketoBulkImportOperator

with DAG(
    dag_id="{DAG_ID}",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
):
    MarketoBulkImportOperator(
        task_id="{TASK}",
        source="{{{{ dag_run.conf['source'] }}}}",
        object_type="leads",
        deferrable=True,
        poll_interval=2,
        max_part_bytes={PART_BYTES},
        retries=0,
    )
'''


def write_source(path: Path, rows: int) -> list[str]:
    emails = [f"resumes-{i}@example.com" for i in range(rows)]
    path.write_text(HEADER + "".join(f"{email},Name{i},{i % 100}\n" for i, email in enumerate(emails)))
    return emails


def summary_of(airflow: LocalAirflow, run_id: str) -> dict[str, Any]:
    rows = airflow.postgres.query(
        "SELECT value FROM xcom WHERE dag_id = %s AND run_id = %s AND task_id = %s AND key = 'return_value'",
        DAG_ID,
        run_id,
        TASK,
    )
    value = rows[0][0]
    return value if isinstance(value, dict) else json.loads(value)


@pytest.mark.timeout(900)
def test_a_deferred_import_polling_every_two_seconds_resumes_a_few_times(tmp_path: Path) -> None:
    assert isinstance(SERVERS, Servers)
    source = tmp_path / "leads.csv"
    emails = write_source(source, 1_700)  # about 30 parts
    processes = Processes(tmp_path / "logs")
    with MarketoSandbox(queued_seconds=0.2, import_seconds=4.0) as sandbox:
        airflow = LocalAirflow(
            tmp_path / "airflow", processes, SERVERS, {"resumes.py": DAG_FILE}, sandbox.env()
        )
        try:
            airflow.start()
            airflow.wait_for_dags([DAG_ID])
            airflow.trigger(DAG_ID, "resumes", {"source": str(source)})
            state = airflow.wait_for_run(DAG_ID, "resumes", timeout=720)
            assert state == "success", processes.tails()
            assert airflow.task(DAG_ID, "resumes", TASK)["try_number"] == 1  # no retry was needed
            summary = summary_of(airflow, "resumes")
            parts = len(summary["batch_ids"])
            assert parts >= 25
            uploads = Counter(job.filename for job in sandbox.jobs)
            assert uploads == {f"leads-part{i:04d}.csv": 1 for i in range(parts)}  # no part twice
            imported = Counter(row["email"] for row in sandbox.imported_rows("leads"))
            assert sorted(imported.elements()) == sorted(emails)  # every row, each once
            assert 1 <= summary["resumes"] <= math.ceil((parts - 10) / 4) + 2, summary["resumes"]
        finally:
            airflow.stop()
