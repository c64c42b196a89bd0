"""A warehouse unload, many gzip files under one prefix, into Marketo.

Warehouses unload a table to object storage as many compressed files. Snowflake, for example::

    COPY INTO @crm_stage/leads/2026-01-01/ FROM (SELECT email, first_name AS "firstName", ...)
      FILE_FORMAT = (TYPE = CSV COMPRESSION = GZIP FIELD_OPTIONALLY_ENCLOSED_BY = '"')
      HEADER = TRUE;

writes ``data_0_0_0.csv.gz``, ``data_0_1_0.csv.gz``, ... The operator reads every file under the
prefix (a location ending in ``/``) in sorted order, decompresses them as it goes, checks that
every file has the same header, and cuts the records into parts under Marketo's 10 MB limit
(parts may span files). A glob such as ``s3://bucket/leads/data_*.csv.gz`` works too.

Files unloaded without a header line (``HEADER = FALSE``, the default) need their column names:
pass ``source=Source.of("s3://.../", columns=["email", "firstName", ...], conn_id=...)``
(see the sources page of the documentation).

Set the Airflow Variables ``marketo_unload_prefix`` / ``marketo_source_conn_id`` to read
elsewhere (``file://`` works for a try-out).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from marketo_provider.operators.bulk_import import MarketoBulkImportOperator

with DAG(
    dag_id="marketo_warehouse_unload",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["marketo", "example"],
) as dag:
    MarketoBulkImportOperator(
        task_id="import_unloaded_leads",
        # a prefix: every file under it, compressed or not, is one source
        source="{{ var.value.get('marketo_unload_prefix', 's3://crm-stage/leads/' ~ (dag_run.logical_date or dag_run.run_after) | ds ~ '/') }}",
        source_conn_id="{{ var.value.get('marketo_source_conn_id', 'aws_default') }}",
        object_type="leads",
        lookup_field="email",
        deferrable=True,
        poll_interval="{{ var.value.get('marketo_poll_interval', 30) }}",
        max_failed_rows=5000,
    )

if __name__ == "__main__":
    dag.test()
