"""Query results and warehouse unloads imported end to end: real DAGs with dag.test() against the
sandbox, a real SQLite database and real gzip files."""

from __future__ import annotations

import gzip
import itertools
import json
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pendulum
import pytest

from marketo_provider.operators.bulk_import import MarketoBulkImportOperator
from marketo_provider.sources import Source
from marketo_provider.testing import MarketoSandbox
from marketo_provider.transfers.sql_to_marketo import SqlToMarketoOperator
from tests.e2e.conftest import task_states, task_xcom

pytest.importorskip("airflow.providers.sqlite.hooks.sqlite")

_ids = itertools.count()


def new_dag(name: str) -> Any:
    from airflow.sdk import DAG

    return DAG(f"{name}_{next(_ids)}", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False)


@pytest.fixture
def queue_of_two(monkeypatch: pytest.MonkeyPatch) -> Iterator[MarketoSandbox]:
    """A sandbox whose queue holds two jobs, one importing at a time: the import has to wait for
    slots, and goes on by reading the source again from where it stopped."""
    from marketo_provider.hooks.marketo import clear_token_cache

    clear_token_cache()
    with MarketoSandbox(queued_seconds=0.05, import_seconds=0.2, max_queued=2, max_importing=1) as sb:
        for key, value in sb.env().items():
            monkeypatch.setenv(key, value)
        yield sb


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A SQLite database of 100,000 contacts behind the Airflow connection ``warehouse``."""
    path = tmp_path / "warehouse.db"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE contacts (id INTEGER PRIMARY KEY, email_address TEXT, first_name TEXT, "
        "company TEXT, score REAL)"
    )
    db.executemany(
        "INSERT INTO contacts VALUES (?, ?, ?, ?, ?)",
        (
            (
                i,
                f"lead{i}@example.com",
                f'Name "{i}", Jr.' if i % 1000 == 0 else f"Name{i}",
                None if i % 7 == 0 else f"Company {i % 97}",
                i / 4,
            )
            for i in range(100_000)
        ),
    )
    db.commit()
    db.close()
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    return path


def test_query_of_100000_rows_through_a_full_queue(
    run_dag: Any, queue_of_two: MarketoSandbox, warehouse: Path
) -> None:
    with new_dag("sql_to_marketo") as dag:
        SqlToMarketoOperator(
            task_id="import",
            sql="SELECT email_address, first_name, company FROM contacts WHERE id < :limit ORDER BY id",
            parameters={"limit": 100_000},
            sql_conn_id="warehouse",
            column_mapping={"email_address": "email", "first_name": "firstName"},
            max_part_bytes=600_000,
            poll_interval=0.05,
            deferrable=True,
        )
    dr = run_dag(dag)
    assert dr.state == "success", task_states(dr)
    summary = task_xcom(dr, "import")
    assert len(summary["batch_ids"]) >= 5
    # the queue filled, so the import went on after waits: the query ran again each time
    assert [c for c in queue_of_two.calls_to("/bulk/v1/*", "POST") if c.error_code == "1016"]
    imported = queue_of_two.imported_rows("leads")
    assert summary["rows_processed"] == len(imported) == 100_000
    got = Counter((r["email"], r["firstName"], r["company"]) for r in imported)
    expected = Counter(
        (
            f"lead{i}@example.com",
            f'Name "{i}", Jr.' if i % 1000 == 0 else f"Name{i}",
            "" if i % 7 == 0 else f"Company {i % 97}",
        )
        for i in range(100_000)
    )
    assert got == expected


def test_query_with_an_unknown_column_fails_before_any_import(
    run_dag: Any, marketo_env: MarketoSandbox, warehouse: Path
) -> None:
    with new_dag("sql_unknown_column") as dag:
        SqlToMarketoOperator(
            task_id="import",
            sql="SELECT email_address AS email, first_name FROM contacts",
            sql_conn_id="warehouse",
            poll_interval=0.05,
        )
    dr = run_dag(dag)
    assert dr.state == "failed"
    assert marketo_env.calls_to("/bulk/v1/*") == []


def test_warehouse_unload_prefix_without_headers(
    run_dag: Any, marketo_env: MarketoSandbox, tmp_path: Path
) -> None:
    unload = tmp_path / "unload"
    unload.mkdir()
    expected = []
    for k in range(4):
        lines = [f"lead{k * 500 + i}@example.com,First{i},Company {k}" for i in range(500)]
        expected += lines
        (unload / f"data_0_0_{k}.csv.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    with new_dag("unload_to_marketo") as dag:
        MarketoBulkImportOperator(
            task_id="import",
            source=Source.of(f"{unload}/", columns=["email", "firstName", "company"], max_part_bytes=10_000),
            max_part_bytes=10_000,
            poll_interval=0.05,
            deferrable=True,
        )
    dr = run_dag(dag)
    assert dr.state == "success", task_states(dr)
    imported = marketo_env.imported_rows("leads")
    assert Counter(f"{r['email']},{r['firstName']},{r['company']}" for r in imported) == Counter(expected)
    assert len(task_xcom(dr, "import")["batch_ids"]) >= 4
