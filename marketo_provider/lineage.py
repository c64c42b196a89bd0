"""Lineage of an import, the source in and the Marketo object out: OpenLineage datasets, Airflow's
hook lineage, and the Airflow asset a downstream DAG can be scheduled on."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from marketo_provider.api import ConnectionSettings, ImportTarget, ObjectType

__all__ = [
    "lineage_for_import",
    "marketo_asset",
    "marketo_asset_uri",
    "marketo_dataset",
    "marketo_dataset_name",
    "report_hook_lineage",
    "source_dataset",
]


def source_dataset(source: Any) -> tuple[str, str] | None:
    """(namespace, name) of a source by OpenLineage's naming: ``s3://bucket`` + key, ``file`` + path;
    None for a query (its tables are the SQL operator's lineage, not ours)."""
    source = getattr(source, "location", source)  # a sources.Source
    if source is None or hasattr(source, "sql"):
        return None
    text = str(source)
    if "://" not in text:
        return "file", os.path.abspath(text)
    parts = urlsplit(text)
    if parts.scheme == "file":
        return "file", parts.path
    bucket = parts.netloc.rsplit("@", 1)[-1]  # drop a conn id given as userinfo
    return f"{parts.scheme}://{bucket}", parts.path.lstrip("/")


def marketo_dataset(settings: ConnectionSettings, target: ImportTarget) -> tuple[str, str]:
    """(namespace, name) of the Marketo object: ``marketo://<instance host>`` and the target."""
    return f"marketo://{settings.instance_host}", marketo_dataset_name(target)


def lineage_for_import(*, source: Any, settings: ConnectionSettings, target: ImportTarget) -> Any:
    """An ``OperatorLineage`` (needs apache-airflow-providers-openlineage, as the listener does)."""
    from airflow.providers.common.compat.openlineage.facet import Dataset
    from airflow.providers.openlineage.extractors import OperatorLineage

    read = source_dataset(source)
    out_ns, out_name = marketo_dataset(settings, target)
    inputs = [Dataset(namespace=read[0], name=read[1])] if read else []
    return OperatorLineage(inputs=inputs, outputs=[Dataset(namespace=out_ns, name=out_name)])


def marketo_asset_uri(host: str, target: ImportTarget) -> str:
    """The URI of the Marketo object an import writes, e.g. ``marketo://123-abc-456.mktorest.com/leads``
    (``program_members/<id>``, ``custom_objects/<api name>``)."""
    host = host.split("://", 1)[-1].split("/", 1)[0].lower()
    return f"marketo://{host}/{marketo_dataset_name(target)}"


def marketo_dataset_name(target: ImportTarget) -> str:
    name = target.object_type.value
    if target.object_type is ObjectType.PROGRAM_MEMBERS and target.program_id is not None:
        name = f"program_members/{target.program_id}"
    elif target.object_type is ObjectType.CUSTOM_OBJECTS and target.custom_object_name:
        name = f"custom_objects/{target.custom_object_name}"
    return name


def marketo_asset(
    host: str,
    object_type: str | ObjectType = "leads",
    *,
    program_id: int | None = None,
    custom_object_name: str | None = None,
) -> Any:
    """An Airflow ``Asset`` for a Marketo object, to put in an import's ``outlets`` and in a
    downstream DAG's ``schedule``::

        leads = marketo_asset("123-ABC-456.mktorest.com", "leads")
        MarketoBulkImportOperator(task_id="import_leads", ..., outlets=[leads])
        with DAG("after_leads_import", schedule=[leads], ...): ...
    """
    from airflow.sdk import Asset

    target = ImportTarget.of(object_type, program_id=program_id, custom_object_name=custom_object_name)
    return Asset(marketo_asset_uri(host, target))


def _hook_lineage_collector() -> Any:
    try:
        from airflow.sdk.lineage import get_hook_lineage_collector
    except ImportError:  # Airflow 3.1
        from airflow.providers.common.compat.lineage.hook import (  # type: ignore[assignment]
            get_hook_lineage_collector,
        )
    return get_hook_lineage_collector()


def report_hook_lineage(hook: Any, source: Any, target: ImportTarget) -> None:
    """Tell Airflow's hook lineage collector what the import read and wrote."""
    collector = _hook_lineage_collector()
    read = source_dataset(source)
    if read is not None:
        namespace, name = read
        collector.add_input_asset(
            context=hook, uri=f"file://{name}" if namespace == "file" else f"{namespace}/{name}"
        )
    collector.add_output_asset(context=hook, uri=marketo_asset_uri(hook.settings.rest_url, target))
