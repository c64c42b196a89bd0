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


def test_marketo_asset_for_a_downstream_schedule() -> None:
    from marketo_provider.lineage import marketo_asset

    assert marketo_asset("https://123-ABC-456.mktorest.com", "leads").uri == (
        "marketo://123-abc-456.mktorest.com/leads"
    )
    cars = marketo_asset("123-ABC-456.mktorest.com", "custom_objects", custom_object_name="car_c")
    assert cars.uri == "marketo://123-abc-456.mktorest.com/custom_objects/car_c"


def test_hook_lineage_reports_the_source_and_the_marketo_object(monkeypatch: pytest.MonkeyPatch) -> None:
    from marketo_provider import lineage

    seen: list[tuple[str, str]] = []

    class Collector:
        def add_input_asset(self, *, context: object, uri: str) -> None:
            seen.append(("in", uri))

        def add_output_asset(self, *, context: object, uri: str) -> None:
            seen.append(("out", uri))

    class Hook:
        settings = ConnectionSettings(
            "c", "https://123-ABC-456.mktorest.com", "https://x/identity", "id", "pw"
        )

    monkeypatch.setattr(lineage, "_hook_lineage_collector", lambda: Collector())
    lineage.report_hook_lineage(Hook(), "s3://bucket/leads.csv", ImportTarget(ObjectType.LEADS))
    assert seen == [("in", "s3://bucket/leads.csv"), ("out", "marketo://123-abc-456.mktorest.com/leads")]
