"""Provider metadata, read by Airflow through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from marketo_provider import __version__

__all__ = [
    "CONN_FIELDS",
    "UI_FIELD_BEHAVIOUR",
    "get_provider_info",
]

# The connection form, declared once: Airflow >= 3.2 reads it from here, and the hook's
# ``get_connection_form_widgets`` / ``get_ui_field_behaviour`` build the 3.1 form from the same data.
CONN_FIELDS: dict[str, dict[str, Any]] = {
    "identity_url": {
        "label": "Identity URL",
        "description": "Identity service base URL; defaults to <REST API endpoint>/identity.",
        "schema": {"type": ["string", "null"], "format": "url"},
    },
    "timeout": {
        "label": "Timeout (seconds)",
        "description": "Seconds to wait for Marketo on each call (default 60; uploads get longer).",
        "schema": {"type": ["number", "null"], "minimum": 1},
    },
    "verify": {
        "label": "Verify TLS",
        "description": "true, false, or the path of a CA bundle (default true).",
        "schema": {"type": ["string", "null"]},
    },
}

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "port"],
    "relabeling": {"host": "REST API endpoint", "login": "Client ID", "password": "Client Secret"},
    "placeholders": {
        "host": "https://123-ABC-456.mktorest.com",
        "login": "Client ID from Admin > LaunchPoint > View Details",
        "password": "Client Secret from Admin > LaunchPoint > View Details",
        "identity_url": "https://123-ABC-456.mktorest.com/identity",
        "timeout": "60",
        "verify": "true",
    },
}


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-marketo",
        "name": "Adobe Marketo Engage",
        "description": "Load leads, program members and custom objects into Adobe Marketo Engage "
        "with the Bulk Import API.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Adobe Marketo Engage",
                "external-doc-url": "https://experienceleague.adobe.com/en/docs/marketo-developer/marketo/rest/bulk-import/bulk-import",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {"integration-name": "Adobe Marketo Engage", "python-modules": ["marketo_provider.hooks.marketo"]}
        ],
        "operators": [
            {
                "integration-name": "Adobe Marketo Engage",
                "python-modules": ["marketo_provider.operators.bulk_import"],
            }
        ],
        "sensors": [
            {
                "integration-name": "Adobe Marketo Engage",
                "python-modules": ["marketo_provider.sensors.bulk_import"],
            }
        ],
        "triggers": [
            {
                "integration-name": "Adobe Marketo Engage",
                "python-modules": ["marketo_provider.triggers.bulk_import"],
            }
        ],
        "transfers": [
            {
                "source-integration-name": "Common SQL",
                "target-integration-name": "Adobe Marketo Engage",
                "python-module": "marketo_provider.transfers.sql_to_marketo",
                "how-to-guide": "https://airflow-provider-marketo.readthedocs.io/en/latest/sources.html",
            }
        ],
        # The "Marketo import" view (Airflow 3.1+ UI): loaded by the API server once the package is installed.
        "plugins": [
            {
                "name": "marketo_import_view",
                "plugin-class": "marketo_provider.plugins.import_view.MarketoImportViewPlugin",
            }
        ],
        "connection-types": [
            {
                "connection-type": "marketo",
                "hook-class-name": "marketo_provider.hooks.marketo.MarketoHook",
                "hook-name": "Adobe Marketo Engage",
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            }
        ],
    }
