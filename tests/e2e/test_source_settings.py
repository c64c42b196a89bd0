"""A source's settings as users write them in a DAG: on a ``Source``, on the operator, or both, and
a ``Source`` whose location is templated."""

from __future__ import annotations

import gzip
import itertools
from pathlib import Path
from typing import Any

import pendulum

from marketo_provider.operators.bulk_import import MarketoBulkImportOperator
from marketo_provider.sources import Source
from marketo_provider.testing import MarketoSandbox
from tests.e2e.conftest import task_states, task_xcom

_ids = itertools.count()
LOGICAL_DATE = pendulum.datetime(2026, 3, 14, tz="UTC")


def new_dag(name: str) -> Any:
    from airflow.sdk import DAG

    return DAG(f"{name}_{next(_ids)}", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False)


def imported_emails(sandbox: MarketoSandbox) -> list[str]:
    return sorted(r["email"] for r in sandbox.imported_rows("leads"))


def test_a_tsv_source_with_the_operator_left_at_its_defaults(
    run_dag: Any, marketo_env: MarketoSandbox, tmp_path: Path
) -> None:
    (tmp_path / "x.tsv").write_text("email\tfirstName\na@example.com\tAnn\nb@example.com\tBob\n")
    with new_dag("tsv_source") as dag:
        MarketoBulkImportOperator(
            task_id="import", source=Source.of(str(tmp_path / "x.tsv"), file_format="tsv"), poll_interval=0.05
        )
    dr = run_dag(dag)
    assert dr.state == "success", task_states(dr)
    assert imported_emails(marketo_env) == ["a@example.com", "b@example.com"]
    assert [c.query.get("format") for c in marketo_env.calls_to("/bulk/v1/leads.json", "POST")] == ["tsv"]


def test_columns_and_mapping_on_the_operator_apply_to_a_source(
    run_dag: Any, marketo_env: MarketoSandbox, tmp_path: Path
) -> None:
    unload = tmp_path / "unload"
    unload.mkdir()
    (unload / "data_0.csv.gz").write_bytes(gzip.compress(b"a@example.com,Ann\nb@example.com,Bob\n"))
    with new_dag("columns_beside") as dag:
        MarketoBulkImportOperator(
            task_id="import",
            source=Source.of(f"{unload}/"),
            columns=["email_address", "first"],
            column_mapping={"email_address": "email", "first": "firstName"},
            poll_interval=0.05,
        )
    dr = run_dag(dag)
    assert dr.state == "success", task_states(dr)
    rows = marketo_env.imported_rows("leads")
    assert sorted((r["email"], r["firstName"]) for r in rows) == [
        ("a@example.com", "Ann"),
        ("b@example.com", "Bob"),
    ]


def test_a_templated_source_location_under_a_dated_prefix(
    run_dag: Any, marketo_env: MarketoSandbox, tmp_path: Path
) -> None:
    day = tmp_path / "unload" / LOGICAL_DATE.to_date_string()
    day.mkdir(parents=True)
    (day / "part_0.csv.gz").write_bytes(gzip.compress(b"c@example.com,Cy\n"))
    (tmp_path / "unload" / "2026-03-13").mkdir()
    (tmp_path / "unload" / "2026-03-13" / "part_0.csv.gz").write_bytes(
        gzip.compress(b"old@example.com,Old\n")
    )
    with new_dag("templated_source") as dag:
        MarketoBulkImportOperator(
            task_id="import",
            source=Source.of(f"{tmp_path}/unload/{{{{ ds }}}}/", columns=["email", "firstName"]),
            poll_interval=0.05,
        )
    dr = run_dag(dag, logical_date=LOGICAL_DATE)
    assert dr.state == "success", task_states(dr)
    assert imported_emails(marketo_env) == ["c@example.com"]
    assert task_xcom(dr, "import")["rows_processed"] == 1


def test_a_setting_given_twice_and_different_fails_before_any_call(
    run_dag: Any, marketo_env: MarketoSandbox, tmp_path: Path
) -> None:
    (tmp_path / "x.tsv").write_text("email\na@example.com\n")
    with new_dag("disagreeing") as dag:
        MarketoBulkImportOperator(
            task_id="import", source=Source.of(str(tmp_path / "x.tsv"), file_format="tsv"), file_format="csv"
        )
    dr = run_dag(dag)
    assert task_states(dr) == {"import": "failed"}
    assert marketo_env.calls == []
