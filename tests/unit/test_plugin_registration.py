"""The "Marketo import" view is registered as Airflow documents for providers: the provider info
names the plugin, and the ``airflow.plugins`` entry point (what Airflow loads with its default
lazy provider discovery) points at the same class."""

from __future__ import annotations

from importlib.metadata import entry_points

from airflow.plugins_manager import AirflowPlugin

from marketo_provider.get_provider_info import get_provider_info
from marketo_provider.plugins.app import app
from marketo_provider.plugins.import_view import MarketoImportViewPlugin


def test_the_provider_info_and_the_entry_point_name_one_plugin() -> None:
    (plugin,) = get_provider_info()["plugins"]
    assert plugin == {
        "name": "marketo_import_view",
        "plugin-class": "marketo_provider.plugins.import_view.MarketoImportViewPlugin",
    }
    (entry,) = [e for e in entry_points(group="airflow.plugins") if e.name == plugin["name"]]
    assert entry.load() is MarketoImportViewPlugin
    assert (
        issubclass(MarketoImportViewPlugin, AirflowPlugin) and MarketoImportViewPlugin.name == plugin["name"]
    )


def test_the_plugin_adds_a_tab_to_task_instances_and_dag_runs_served_by_its_app() -> None:
    views = {v["destination"]: v for v in MarketoImportViewPlugin.external_views}
    assert views["task_instance"]["name"] == "Marketo import"
    assert views["task_instance"]["href"] == (
        "/marketo-import/ti?dag_id={DAG_ID}&run_id={RUN_ID}&task_id={TASK_ID}&map_index={MAP_INDEX}"
    )
    assert views["dag_run"]["href"] == "/marketo-import/run?dag_id={DAG_ID}&run_id={RUN_ID}"
    assert len({v["url_route"] for v in views.values()}) == 2  # routes of their own in the UI
    (mounted,) = MarketoImportViewPlugin().fastapi_apps  # Airflow reads it from the plugin's instance
    assert mounted["app"] is app and mounted["url_prefix"] == "/marketo-import"
    paths = {route.path for route in app.routes}
    assert {"/ti", "/run", "/summary", "/download"} <= paths
    # every route goes through the app's dependencies: Airflow's DAG, task instance and XCom reads
    assert len(app.router.dependencies) == 3
