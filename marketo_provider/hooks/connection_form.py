"""The connection form of the ``marketo`` connection type as Airflow 3.1 asks a hook for it
(Airflow 3.2 and later read the same fields from the provider info)."""

from __future__ import annotations

from typing import Any

from marketo_provider.get_provider_info import CONN_FIELDS, UI_FIELD_BEHAVIOUR


class ConnectionForm:
    """The extra fields, relabelled and hidden standard fields of the hook's connection form."""

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """The extra fields of the connection form."""
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
        """Relabelled and hidden standard fields."""
        return {
            "hidden_fields": list(UI_FIELD_BEHAVIOUR["hidden-fields"]),
            "relabeling": dict(UI_FIELD_BEHAVIOUR["relabeling"]),
            "placeholders": dict(UI_FIELD_BEHAVIOUR["placeholders"]),
        }
