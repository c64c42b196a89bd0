"""OpenLineage names of an import: the source in, the Marketo object out."""

from __future__ import annotations

import pytest

from marketo_provider.api import ConnectionSettings, ImportTarget, ObjectType
from marketo_provider.lineage import marketo_dataset, source_dataset


def test_lineage_names() -> None:
    settings = ConnectionSettings("c", "https://123-ABC-456.mktorest.com", "https://x/identity", "id", "pw")
    assert source_dataset("s3://aws_default@crm-exports/leads/2026.csv") == (
        "s3://crm-exports",
        "leads/2026.csv",
    )
    assert source_dataset("file:///data/l.csv") == ("file", "/data/l.csv")
    assert marketo_dataset(settings, ImportTarget(ObjectType.CUSTOM_OBJECTS, custom_object_name="car_c")) == (
        "marketo://123-abc-456.mktorest.com",
        "custom_objects/car_c",
    )
    pm = ImportTarget(ObjectType.PROGRAM_MEMBERS, program_id=1044)
    assert marketo_dataset(settings, pm)[1] == "program_members/1044"


def test_openlineage_facets(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    monkeypatch.setenv(
        "AIRFLOW_CONN_MARKETO_DEFAULT",
        json.dumps(
            {"conn_type": "marketo", "host": "123-ABC-456.mktorest.com", "login": "id", "password": "pw"}
        ),
    )
    from marketo_provider.operators.bulk_import import MarketoBulkImportOperator

    op = MarketoBulkImportOperator(task_id="t", source="s3://bucket/leads.csv", object_type="leads")
    lineage = op.get_openlineage_facets_on_complete(None)
    assert [(d.namespace, d.name) for d in lineage.inputs] == [("s3://bucket", "leads.csv")]
    assert [(d.namespace, d.name) for d in lineage.outputs] == [
        ("marketo://123-abc-456.mktorest.com", "leads")
    ]
