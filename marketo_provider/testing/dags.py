"""Run DAGs against the sandbox in tests: store a DAG, run it with ``dag.test()``, read its XComs.

Set ``AIRFLOW_HOME`` to a temporary folder before Airflow is imported and call
:func:`prepare_database` once per test session.
"""

from __future__ import annotations

import os
from typing import Any


def prepare_database() -> None:
    """Create a fresh Airflow metadata database in ``AIRFLOW_HOME`` (drops what is there)."""
    from airflow.utils import db

    db.resetdb()


def dag_bag(dag_folder: str) -> Any:
    """A ``DagBag`` of a folder (its ``import_errors`` tell whether every file loads)."""
    return _dagbag_module().DagBag(dag_folder=dag_folder)


def _dagbag_module() -> Any:
    try:  # Airflow 3.2+
        from airflow.dag_processing import dagbag
    except ImportError:  # Airflow 3.1
        from airflow.models import dagbag  # type: ignore[no-redef]
    return dagbag


def store_dag(dag: Any) -> None:
    """Store a DAG defined in code (a test, a script) so ``dag.test()`` can run it."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    DagBag, sync_bag_to_db = _dagbag_module().DagBag, _dagbag_module().sync_bag_to_db
    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=os.devnull)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)


def run_dag(dag: Any, **kwargs: Any) -> Any:
    """Store and run a DAG in this process with ``dag.test()``; returns the finished DagRun.

    Deferred tasks run their trigger inline, so deferrable operators work as in production.
    """
    store_dag(dag)
    return dag.test(**kwargs)


def task_xcom(dag_run: Any, task_id: str, key: str = "return_value") -> Any:
    """An XCom value of a task in a finished run, or None."""
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
    """``{task_id: state}`` of a finished run."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id).all()
        return {ti.task_id: str(ti.state) for ti in tis}
