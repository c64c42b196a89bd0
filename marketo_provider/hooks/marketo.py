"""MarketoHook: the one place that talks to Marketo."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook

from marketo_provider.get_provider_info import CONN_FIELDS, UI_FIELD_BEHAVIOUR


class MarketoHook(BaseHook):
    """Talks to Adobe Marketo Engage's REST API with an Airflow connection of type ``marketo``.

    :param marketo_conn_id: the Airflow connection: host is the REST API endpoint, login the
        client id, password the client secret.
    """

    conn_name_attr = "marketo_conn_id"
    default_conn_name = "marketo_default"
    conn_type = "marketo"
    hook_name = "Adobe Marketo Engage"

    def __init__(self, marketo_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.marketo_conn_id = marketo_conn_id

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """The extra fields of the connection form (Airflow 3.1; 3.2+ reads provider info)."""
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import StringField

        return {
            name: StringField(
                lazy_gettext(spec["label"]), widget=BS3TextFieldWidget(), description=spec["description"]
            )
            for name, spec in CONN_FIELDS.items()
        }

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Relabelled and hidden standard fields (Airflow 3.1; 3.2+ reads provider info)."""
        return {
            "hidden_fields": list(UI_FIELD_BEHAVIOUR["hidden-fields"]),
            "relabeling": dict(UI_FIELD_BEHAVIOUR["relabeling"]),
            "placeholders": dict(UI_FIELD_BEHAVIOUR["placeholders"]),
        }
