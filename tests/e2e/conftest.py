"""End-to-end fixtures: a migrated Airflow metadata database (once per session) and a DAG runner."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from marketo_provider.testing.dags import prepare_database, task_states, task_xcom
from marketo_provider.testing.dags import run_dag as _run_dag

__all__ = ["task_states", "task_xcom"]


@pytest.fixture(scope="session")
def airflow_db() -> None:
    prepare_database()


@pytest.fixture
def run_dag(airflow_db: None) -> Callable[..., Any]:
    return _run_dag
