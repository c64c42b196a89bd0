"""Query sources against real databases the tests start: SQLite, and PostgreSQL (streamed with a
server-side cursor) where the server and its Airflow provider are installed. Parts are
submitted to the sandbox with the hook."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from marketo_provider.sources import QuerySource, SourceError, preflight, source_parts
from marketo_provider.testing import MarketoSandbox
from tests.conftest import fast_hook, free_port

pytest.importorskip("airflow.providers.sqlite.hooks.sqlite")

ROWS = 20_000


def expected_rows(count: int) -> Counter[tuple[str, str]]:
    return Counter((f"lead{i}@example.com", f"Name, {i}" if i % 3 == 0 else f"Name{i}") for i in range(count))


def import_all(sandbox: MarketoSandbox, source: QuerySource) -> int:
    hook = fast_hook()
    checked = preflight(source, object_type="leads", describe=hook.describe)
    assert checked.parts is None and checked.header.names == ("email", "firstName")
    count = 0
    with source_parts(source) as parts:
        for part in parts:
            hook.submit_import("leads", part.reader(), filename=f"query-part{part.index}.csv")
            sandbox.run_until_idle()
            count += 1
    return count


@pytest.fixture
def sqlite_conn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    path = tmp_path / "crm.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE contacts (id INTEGER PRIMARY KEY, email_address TEXT, first_name TEXT)")
    db.executemany(
        "INSERT INTO contacts VALUES (?, ?, ?)",
        ((i, f"lead{i}@example.com", f"Name, {i}" if i % 3 == 0 else f"Name{i}") for i in range(ROWS)),
    )
    db.commit()
    db.close()
    monkeypatch.setenv("AIRFLOW_CONN_CRM", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    return "crm"


def test_sqlite_query_imported_once(marketo_env: MarketoSandbox, sqlite_conn: str) -> None:
    source = QuerySource.of(
        "SELECT email_address, first_name FROM contacts ORDER BY id",
        conn_id=sqlite_conn,
        column_mapping={"email_address": "email", "first_name": "firstName"},
        max_part_bytes=100_000,
        fetch_size=1000,
    )
    assert import_all(marketo_env, source) >= 5
    got = Counter((r["email"], r["firstName"]) for r in marketo_env.imported_rows("leads"))
    assert got == expected_rows(ROWS)


def test_empty_result_imports_nothing(marketo_env: MarketoSandbox, sqlite_conn: str) -> None:
    source = QuerySource.of("SELECT email_address AS email FROM contacts WHERE id < 0", conn_id=sqlite_conn)
    assert preflight(source, object_type="leads", check_columns=False).empty
    assert marketo_env.calls_to("/bulk/v1/*") == []


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT nope FROM contacts", "the query on 'crm' failed: no such column: nope"),
        (
            "SELECT email_address AS email, first_name AS email FROM contacts",
            "names these columns more than once: email \\(name the query's columns with AS\\)",
        ),
        ("SELECT email_address FROM contacts", "no 'email' column, the lookup field"),
    ],
)
def test_bad_queries_are_refused_before_any_import(
    marketo_env: MarketoSandbox, sqlite_conn: str, sql: str, message: str
) -> None:
    with pytest.raises(SourceError, match=message):
        preflight(QuerySource.of(sql, conn_id=sqlite_conn), object_type="leads", check_columns=False)
    assert marketo_env.calls_to("/bulk/v1/*") == []


def test_connection_that_is_not_a_database(marketo_env: MarketoSandbox) -> None:
    source = QuerySource.of("SELECT 1", conn_id="marketo_default")
    with pytest.raises(SourceError, match="'marketo_default' is not a SQL database connection"):
        preflight(source, object_type="leads", check_columns=False)


# ---- PostgreSQL --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server on a free loopback port (skipped where none is installed)."""
    pytest.importorskip("airflow.providers.postgres.hooks.postgres")
    initdb, server = shutil.which("initdb"), shutil.which("postgres")
    if not (initdb and server):
        pytest.skip("PostgreSQL is not installed")
    run_as: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        run_as = ["runuser", "-u", "postgres", "--"]
    folder = tempfile.mkdtemp(prefix="marketo-pg-")
    os.chmod(folder, 0o777)
    data = os.path.join(folder, "data")
    subprocess.run(
        [*run_as, initdb, "-A", "trust", "-U", "postgres", "-D", data], check=True, capture_output=True
    )
    port = free_port()
    process = subprocess.Popen(
        [*run_as, server, "-D", data, "-p", str(port), "-k", folder, "-h", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    try:
        import psycopg2

        for _ in range(100):
            try:
                psycopg2.connect(url).close()
                break
            except psycopg2.OperationalError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


def test_postgres_query_streamed_with_a_server_side_cursor(
    marketo_env: MarketoSandbox, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg2

    with psycopg2.connect(postgres_url) as db, db.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS contacts")
        cursor.execute("CREATE TABLE contacts (id INTEGER PRIMARY KEY, email_address TEXT, first_name TEXT)")
        cursor.execute(
            "INSERT INTO contacts SELECT i, 'lead' || i || '@example.com', "
            "CASE WHEN i %% 3 = 0 THEN 'Name, ' || i ELSE 'Name' || i END FROM generate_series(0, %s) AS i",
            (ROWS - 1,),
        )
    monkeypatch.setenv("AIRFLOW_CONN_CRM_PG", postgres_url)
    source = QuerySource.of(
        'SELECT email_address AS email, first_name AS "firstName" FROM contacts WHERE id >= %(low)s ORDER BY id',
        conn_id="crm_pg",
        parameters={"low": 0},
        max_part_bytes=100_000,
        fetch_size=500,
    )
    assert import_all(marketo_env, source) >= 5
    got = Counter((r["email"], r["firstName"]) for r in marketo_env.imported_rows("leads"))
    assert got == expected_rows(ROWS)
