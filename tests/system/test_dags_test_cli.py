"""``airflow dags test`` of a deferrable import whose Marketo connection is stored in Airflow's
database (not an environment variable): the trigger runs in-process there, where the async
connection lookup cannot be served, and falls back to a lookup that works."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from marketo_provider.testing import MarketoSandbox
from tests.helpers import leads_csv

DAG = """
import pendulum
from airflow.sdk import DAG
from marketo_provider.operators.bulk_import import MarketoBulkImportOperator

with DAG("db_connection_import", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False):
    MarketoBulkImportOperator(
        task_id="import", source={source!r}, deferrable=True, poll_interval=1, max_part_bytes=2000
    )
"""


def airflow(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "airflow", *args], capture_output=True, text=True, env=env, timeout=240
    )


def test_dags_test_with_the_connection_in_the_database(tmp_path: Path) -> None:
    home = tmp_path / "airflow"
    dags = home / "dags"
    dags.mkdir(parents=True)
    source = tmp_path / "leads.csv"
    source.write_bytes(leads_csv(100)[0])
    (dags / "db_connection_import.py").write_text(textwrap.dedent(DAG.format(source=str(source))))
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AIRFLOW_CONN_") and not key.startswith("AIRFLOW__")
    }
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        }
    )
    with MarketoSandbox(queued_seconds=0.05, import_seconds=0.2) as sandbox:
        migrated = airflow("db", "migrate", env=env)
        assert migrated.returncode == 0, migrated.stderr[-2000:]
        added = airflow(
            "connections", "add", "marketo_default", "--conn-json", sandbox.connection_json(), env=env
        )
        assert added.returncode == 0, added.stdout + added.stderr
        run = airflow("dags", "test", "db_connection_import", env=env)
        out = run.stdout + run.stderr
        assert run.returncode == 0 and "state=success" in out.replace(" ", ""), out[-4000:]
        assert len(sandbox.imported_rows("leads")) == 100
        assert sandbox.client_secret not in out
