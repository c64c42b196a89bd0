"""A whole Airflow (scheduler, triggerer, API server, DAG processor, LocalExecutor) runs an example
DAG against the sandbox: the operator defers to a real triggerer and resumes on a worker."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from marketo_provider.testing import MarketoSandbox
from tests.conftest import free_port
from tests.system.processes import stop_tree, wait_for

EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"


@pytest.mark.timeout(420)
def test_example_dag_in_a_real_airflow(tmp_path: Path) -> None:
    source = tmp_path / "registrants.csv"
    source.write_text("email,firstName\nann@example.com,Ann\nbob@example.com,Bob\n")
    api_port = free_port()
    with MarketoSandbox(queued_seconds=0.5, import_seconds=1.0) as sandbox:
        env = {
            **os.environ,
            **sandbox.env(),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "AIRFLOW_HOME": str(tmp_path / "home"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(EXAMPLES),
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{api_port}/execution/",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW_VAR_MARKETO_REGISTRANTS_SOURCE": str(source),
            # Whatever the interval, the trigger holds its event out of Airflow's window for the
            # exit of the worker that deferred (docs/troubleshooting.rst; test_resumes.py polls
            # every 2 s).
            "AIRFLOW_VAR_MARKETO_POLL_INTERVAL": "10",
        }
        log_path = tmp_path / "standalone.log"
        with log_path.open("w") as log:
            airflow = subprocess.Popen(
                [sys.executable, "-m", "airflow", "standalone"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_for(lambda: "Airflow is ready" in log_path.read_text(), 180, "Airflow to start")

            def cli(*args: str) -> str:
                done = subprocess.run(
                    [sys.executable, "-m", "airflow", *args],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                return done.stdout

            def runs() -> list[dict]:
                out = cli("dags", "list-runs", "marketo_webinar_registrants", "-o", "json")
                lines = [line for line in out.splitlines() if line.startswith("[{") or line.strip() == "[]"]
                return json.loads(lines[-1]) if lines else []

            def query(sql: str, *params: Any) -> list[tuple[Any, ...]]:
                """Airflow's metadata database, read directly: waiting costs no CLI process per poll."""
                database = tmp_path / "home" / "airflow.db"
                if not database.exists():
                    return []
                with contextlib.closing(sqlite3.connect(database, timeout=10)) as db:
                    try:
                        return db.execute(sql, params).fetchall()
                    except sqlite3.OperationalError:  # tables not created yet, or locked for long
                        return []

            dag_id = "marketo_webinar_registrants"
            # What `airflow dags list` lists: the serialized DAGs.
            wait_for(
                lambda: query("SELECT 1 FROM serialized_dag WHERE dag_id = ?", dag_id),
                120,
                "the DAG to be parsed",
            )
            # Tasks report to the API server: on a busy machine it may start after the scheduler, and a
            # task started before it answers dies with its calls unanswered (Airflow's, not the import's).
            wait_for(
                lambda: _answers(f"http://localhost:{api_port}/api/v2/monitor/health"), 180, "the API server"
            )
            cli("dags", "unpause", dag_id)
            cli("dags", "trigger", dag_id)
            # Unpausing also starts the latest scheduled run: both runs must finish, and succeed.
            wait_for(
                lambda: (
                    (states := query("SELECT state FROM dag_run WHERE dag_id = ?", dag_id))
                    and all(state in ("success", "failed") for (state,) in states)
                ),
                180,
                "the runs to finish",
            )
            assert all(r["state"] == "success" for r in runs()), log_path.read_text()[-5000:]
            text = log_path.read_text()
            assert "deferred" in text.lower()  # waited in the real triggerer
            assert {r["email"] for r in sandbox.imported_rows("program_members")} == {
                "ann@example.com",
                "bob@example.com",
            }
            assert sandbox.client_secret not in text
        finally:
            stop_tree(airflow)


def _answers(url: str) -> bool:
    """Whether the server at ``url`` answers (any HTTP status)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
