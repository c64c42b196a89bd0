"""OpenLineage datasets of an import: the source file in, the Marketo object out."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from marketo_provider.api import ConnectionSettings, ImportTarget, ObjectType


def source_dataset(source: Any) -> tuple[str, str]:
    """(namespace, name) of a source by OpenLineage's naming: ``s3://bucket`` + key, ``file`` + path."""
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
    name = target.object_type.value
    if target.object_type is ObjectType.PROGRAM_MEMBERS and target.program_id is not None:
        name = f"program_members/{target.program_id}"
    elif target.object_type is ObjectType.CUSTOM_OBJECTS and target.custom_object_name:
        name = f"custom_objects/{target.custom_object_name}"
    return f"marketo://{settings.instance_host}", name


def lineage_for_import(*, source: Any, settings: ConnectionSettings, target: ImportTarget) -> Any:
    """An ``OperatorLineage`` (needs apache-airflow-providers-openlineage, as the listener does)."""
    from airflow.providers.common.compat.openlineage.facet import Dataset
    from airflow.providers.openlineage.extractors import OperatorLineage

    in_ns, in_name = source_dataset(source)
    out_ns, out_name = marketo_dataset(settings, target)
    return OperatorLineage(
        inputs=[Dataset(namespace=in_ns, name=in_name)], outputs=[Dataset(namespace=out_ns, name=out_name)]
    )
