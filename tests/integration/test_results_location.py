"""The results location: checked before the first upload (nothing reaches Marketo when it cannot be
written), and written with the source's connection when it is on the same storage, as the
README's minimal DAG has it (``source_conn_id`` only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from marketo_provider._compat import AirflowFailException
from marketo_provider.operators.bulk_import import MarketoBulkImportOperator
from marketo_provider.testing import MarketoSandbox
from tests.helpers import leads_csv
from tests.s3 import S3Server


class FakeTI:
    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


@pytest.fixture
def no_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials anywhere botocore looks, and no instance metadata service to ask."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))


@pytest.mark.parametrize("where", ["under a file", "read-only", "unknown scheme", "no credentials"])
def test_a_results_location_that_cannot_be_written_stops_the_import_before_any_call(
    marketo_env: MarketoSandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    no_aws_credentials: None,
    where: str,
) -> None:
    source = tmp_path / "leads.csv"
    source.write_bytes(leads_csv(20)[0])
    (tmp_path / "a-file").write_text("not a folder")
    kwargs: dict[str, Any] = {}
    with S3Server() as s3:
        if where == "no credentials":
            conn = {"conn_type": "aws", "extra": {"endpoint_url": s3.endpoint, "region_name": "us-east-1"}}
            monkeypatch.setenv("AIRFLOW_CONN_S3_WITHOUT_KEYS", json.dumps(conn))
            s3.client.create_bucket(Bucket="results")
            kwargs = {"results_conn_id": "s3_without_keys"}
        results = {
            "under a file": str(tmp_path / "a-file" / "results"),
            "read-only": "/proc/marketo-results/",
            "unknown scheme": "nosuchscheme://bucket/results/",
            "no credentials": "s3://results/run1/",
        }[where]
        op = MarketoBulkImportOperator(task_id="import", source=str(source), results_path=results, **kwargs)
        with pytest.raises(AirflowFailException, match="results_path") as raised:
            op.execute({"ti": FakeTI()})  # type: ignore[arg-type]
    assert "Nothing was sent to Marketo" in str(raised.value) or "not a location" in str(raised.value)
    assert marketo_env.calls == []  # not even the describe call
    if where == "no credentials":  # s3fs falls back to anonymous requests, which S3 refuses
        assert "PermissionError: Forbidden" in str(raised.value), raised.value


def test_the_readme_dag_writes_its_results_with_the_source_connection(
    marketo_env: MarketoSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, expected = leads_csv(60, fail_every=7, warn_every=11)
    with S3Server() as s3:
        monkeypatch.setenv(*s3.env_item())
        s3.client.create_bucket(Bucket="crm-exports")
        s3.put("s3://crm-exports/leads/2026-11-23.csv", data)
        ti = FakeTI()
        op = MarketoBulkImportOperator(
            task_id="import_leads",
            source="s3://crm-exports/leads/2026-11-23.csv",
            source_conn_id=s3.conn_id,
            object_type="leads",
            lookup_field="email",
            list_id=1234,
            results_path="s3://crm-exports/marketo-results/run1/",  # no results_conn_id, as in the README
            poll_interval=0.05,
        )
        summary = op.execute({"ti": ti})  # type: ignore[arg-type]
        assert summary["failures_path"] == "s3://crm-exports/marketo-results/run1/failures.csv"
        failures = s3.get(summary["failures_path"]).decode()
        assert failures.count("\n") == expected["failed"] + 1
        assert (
            summary["rows_failed"] == expected["failed"]
            and summary["rows_with_warning"] == expected["warned"]
        )
