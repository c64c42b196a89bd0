"""Registration with Airflow: the provider info is valid and Airflow discovers the provider."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import airflow
import jsonschema
import pytest

from marketo_provider.get_provider_info import get_provider_info
from marketo_provider.hooks.marketo import MarketoHook

AIRFLOW_VERSION = tuple(int(x) for x in airflow.__version__.split(".")[:2])


def test_provider_info_validates_against_airflows_schema() -> None:
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    info = get_provider_info()
    jsonschema.validate(info, schema)
    assert info["package-name"] == importlib.metadata.metadata("airflow-provider-marketo")["Name"]
    assert info["versions"][0] == importlib.metadata.version("airflow-provider-marketo")


def test_connection_form_relabels_and_offers_the_extras() -> None:
    (conn,) = get_provider_info()["connection-types"]
    assert conn["connection-type"] == "marketo"
    assert conn["hook-class-name"] == "marketo_provider.hooks.marketo.MarketoHook"
    assert set(conn["conn-fields"]) == {"identity_url", "timeout", "verify"}
    relabel = conn["ui-field-behaviour"]["relabeling"]
    assert relabel == {"host": "REST API endpoint", "login": "Client ID", "password": "Client Secret"}
    assert "host" in conn["ui-field-behaviour"]["placeholders"]
    # Airflow 3.1 asks the hook; it answers from the same data
    behaviour = MarketoHook.get_ui_field_behaviour()
    assert behaviour["relabeling"] == relabel and behaviour["hidden_fields"] == ["schema", "port"]


def test_entry_point_is_registered() -> None:
    eps = importlib.metadata.entry_points(group="apache_airflow_provider")
    ours = [ep for ep in eps if ep.value.startswith("marketo_provider.")]
    assert len(ours) == 1 and ours[0].load()()["name"] == "Adobe Marketo Engage"


def test_providers_manager_sees_the_connection_type() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert "airflow-provider-marketo" in manager.providers
    hook_info = manager.hooks["marketo"]
    assert hook_info is not None and hook_info.hook_class_name == "marketo_provider.hooks.marketo.MarketoHook"
    assert hook_info.connection_id_attribute_name == "marketo_conn_id"
    if AIRFLOW_VERSION < (3, 2):
        # 3.1 builds the form from the hook's methods, which need flask-appbuilder's widgets
        pytest.importorskip(
            "flask_appbuilder", reason="Airflow 3.1 without flask-appbuilder shows no extra fields"
        )
    widgets = manager.connection_form_widgets
    assert {"extra__marketo__identity_url", "extra__marketo__timeout", "extra__marketo__verify"} <= set(
        widgets
    )
    assert manager.field_behaviours["marketo"]["relabeling"]["host"] == "REST API endpoint"
