"""End-to-end fixtures: a migrated Airflow metadata database (once per session) and a DAG runner."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def airflow_db() -> None:
    from airflow.utils import db

    db.resetdb()


def store_dag(dag: Any) -> None:
    """Store a DAG defined in a test so dag.test() can run it."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=os.devnull)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)


@pytest.fixture
def run_dag(airflow_db: None) -> Iterator[Callable[..., Any]]:
    def run(dag: Any, **kwargs: Any) -> Any:
        store_dag(dag)
        return dag.test(**kwargs)

    yield run


def task_xcom(dag_run: Any, task_id: str, key: str = "return_value") -> Any:
    """An XCom value of a task in a finished run."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=task_id, key=key)
            .one_or_none()
        )
        return None if row is None else XComModel.deserialize_value(row)


def task_states(dag_run: Any) -> dict[str, str]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id).all()
        return {ti.task_id: ti.state for ti in tis}
