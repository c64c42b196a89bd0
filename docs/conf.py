"""Sphinx configuration for the airflow-provider-marketo documentation."""

from __future__ import annotations

import os
import sys
import tempfile

sys.path.insert(0, os.path.abspath(".."))
# Importing the provider imports Airflow: give it a throwaway home so building the docs touches nothing.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="marketo-docs-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

from marketo_provider import __version__

project = "airflow-provider-marketo"
author = "airflow-provider-marketo maintainers"
copyright = "2026, airflow-provider-marketo maintainers"
release = version = __version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": False}
suppress_warnings = ["ref.python"]
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path = ["_static"]
html_theme_options = {
    "description": "Load data into Adobe Marketo Engage from Apache Airflow",
    "fixed_sidebar": True,
}
