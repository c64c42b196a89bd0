"""The "Marketo import" view: a tab on task instances and DAG runs of Airflow's UI (an external
view shown in the UI's frame), served by a FastAPI app on the API server
(:mod:`marketo_provider.plugins.app`).

Every Airflow process loads plugins, task processes included; only the API server mounts the app,
so it is imported when the API server asks for it, never in the others.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/marketo-import"


class MarketoImportViewPlugin(AirflowPlugin):
    """Adds the "Marketo import" tab to task instances and the "Marketo imports" tab to DAG runs."""

    name = "marketo_import_view"
    external_views = [
        {
            "name": "Marketo import",
            "href": f"{URL_PREFIX}/ti?dag_id={{DAG_ID}}&run_id={{RUN_ID}}&task_id={{TASK_ID}}&map_index={{MAP_INDEX}}",
            "destination": "task_instance",
            "url_route": "marketo-import",
        },
        {
            "name": "Marketo imports",
            "href": f"{URL_PREFIX}/run?dag_id={{DAG_ID}}&run_id={{RUN_ID}}",
            "destination": "dag_run",
            "url_route": "marketo-imports",
        },
    ]

    @property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        from marketo_provider.plugins.app import app

        return [{"app": app, "url_prefix": URL_PREFIX, "name": "Marketo import"}]
