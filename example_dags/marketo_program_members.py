"""Add the registrants of a webinar to its Marketo program with the status "Registered".

The registration platform drops ``registrants/<date>.csv`` (it needs an ``email`` column; other
columns may be lead fields or program member custom fields). Failures and warnings are pushed to
XCom (no results_path), which suits small daily files.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from marketo_provider.operators.bulk_import import MarketoBulkImportOperator

with DAG(
    dag_id="marketo_webinar_registrants",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["marketo", "example"],
) as dag:
    MarketoBulkImportOperator(
        task_id="import_registrants",
        source="{{ var.value.get('marketo_registrants_source', '/data/webinars/registrants/' ~ (dag_run.logical_date or dag_run.run_after) | ds ~ '.csv') }}",
        object_type="program_members",
        program_id="{{ var.value.get('marketo_webinar_program_id', 1044) }}",
        program_member_status="Registered",
        deferrable=True,
        poll_interval="{{ var.value.get('marketo_poll_interval', 30) }}",
    )

if __name__ == "__main__":
    dag.test()
