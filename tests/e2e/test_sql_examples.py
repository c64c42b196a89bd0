"""The example DAGs for warehouse unloads and SQL queries run against the sandbox to success."""

from __future__ import annotations

import gzip
import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from marketo_provider.testing import MarketoSandbox
from tests.e2e.conftest import task_states, task_xcom
from tests.e2e.test_examples import load


@pytest.fixture
def variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_MARKETO_POLL_INTERVAL", "0.1")
    monkeypatch.setenv("AIRFLOW_VAR_MARKETO_SOURCE_CONN_ID", "")


def test_warehouse_unload(
    run_dag: Any,
    marketo_env: MarketoSandbox,
    variables: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    unload = tmp_path / "leads" / "2026-01-01"
    unload.mkdir(parents=True)
    expected = []
    for k in range(3):
        lines = [f"lead{k}_{i}@example.com,First{i}" for i in range(200)]
        expected += lines
        (unload / f"data_0_{k}_0.csv.gz").write_bytes(
            gzip.compress(("email,firstName\n" + "\n".join(lines)).encode())
        )
    monkeypatch.setenv("AIRFLOW_VAR_MARKETO_UNLOAD_PREFIX", f"file://{unload}/")
    dr = run_dag(load("marketo_warehouse_unload"))
    assert dr.state == "success", task_states(dr)
    assert task_xcom(dr, "import_unloaded_leads")["rows_processed"] == 600
    got = Counter(f"{r['email']},{r['firstName']}" for r in marketo_env.imported_rows("leads"))
    assert got == Counter(expected)


def test_sql_query(
    run_dag: Any,
    marketo_env: MarketoSandbox,
    variables: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("airflow.providers.sqlite.hooks.sqlite")
    path = tmp_path / "app.db"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE signups (id INTEGER PRIMARY KEY, email_address TEXT, first_name TEXT, last_name TEXT, "
        "company TEXT, signed_up_on TEXT)"
    )
    db.executemany(
        "INSERT INTO signups VALUES (?, ?, ?, ?, ?, ?)",
        [
            (i, f"s{i}@example.com", f"F{i}", f"L{i}", "Acme", "2999-01-01" if i % 2 else "2000-01-01")
            for i in range(100)
        ],
    )
    db.commit()
    db.close()
    monkeypatch.setenv("AIRFLOW_CONN_APP_DB", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    monkeypatch.setenv("AIRFLOW_VAR_MARKETO_SQL_CONN_ID", "app_db")
    dr = run_dag(load("marketo_sql_query"))
    assert dr.state == "success", task_states(dr)
    got = sorted(r["email"] for r in marketo_env.imported_rows("leads"))
    assert got == sorted(f"s{i}@example.com" for i in range(1, 100, 2))
    assert {r["lastName"] for r in marketo_env.imported_rows("leads")} == {f"L{i}" for i in range(1, 100, 2)}
