"""Load the dealership's car records into the Marketo custom object ``car_c``.

Rows are matched on the object's dedupe field (``vin`` here), which the file must carry; the
pre-flight check reads it from Marketo's describe call before anything is uploaded.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from marketo_provider.operators.bulk_import import MarketoBulkImportOperator

with DAG(
    dag_id="marketo_cars_custom_object",
    schedule="@weekly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["marketo", "example"],
) as dag:
    MarketoBulkImportOperator(
        task_id="import_cars",
        source="{{ var.value.get('marketo_cars_source', '/data/dealer/cars.tsv') }}",
        object_type="custom_objects",
        custom_object_name="car_c",
        file_format="{{ var.value.get('marketo_cars_format', 'tsv') }}",
        results_path="{{ var.value.get('marketo_results_root', '/data/marketo-results') }}/cars/{{ (dag_run.logical_date or dag_run.run_after) | ds }}/",
        deferrable=True,
        poll_interval="{{ var.value.get('marketo_poll_interval', 30) }}",
    )

if __name__ == "__main__":
    dag.test()
