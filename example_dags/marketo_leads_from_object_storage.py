"""Daily CRM export of leads, from object storage into Marketo and onto a static list.

The export lands as ``s3://crm-exports/leads/<date>.csv`` (any size: it is cut into parts under
Marketo's 10 MB limit). Failures and warnings are merged into one file each under
``s3://crm-exports/marketo-results/<run id>/``. Set the Airflow Variables
``marketo_leads_source`` / ``marketo_results_root`` to read and write elsewhere (``file://`` works
for a try-out).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from marketo_provider.operators.bulk_import import MarketoBulkImportOperator

with DAG(
    dag_id="marketo_leads_from_object_storage",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["marketo", "example"],
) as dag:
    MarketoBulkImportOperator(
        task_id="import_leads",
        source="{{ var.value.get('marketo_leads_source', 's3://crm-exports/leads/' ~ (dag_run.logical_date or dag_run.run_after) | ds ~ '.csv') }}",
        source_conn_id="{{ var.value.get('marketo_source_conn_id', 'aws_default') }}",
        object_type="leads",
        lookup_field="email",
        list_id="{{ var.value.get('marketo_newsletter_list_id', 1234) }}",
        results_path="{{ var.value.get('marketo_results_root', 's3://crm-exports/marketo-results') }}/{{ run_id }}/",
        results_conn_id="{{ var.value.get('marketo_source_conn_id', 'aws_default') }}",
        # Marketo processes imports in the background; wait for them in the triggerer.
        deferrable=True,
        poll_interval="{{ var.value.get('marketo_poll_interval', 30) }}",
        # A few bad rows are expected in a CRM export; thousands mean the export is broken.
        max_failed_rows=5000,
    )

if __name__ == "__main__":
    dag.test()
