"""The rows of a SQL query into Marketo, without a file in between.

``SqlToMarketoOperator`` runs the query through any Airflow SQL connection (PostgreSQL, MySQL,
Snowflake, SQLite, ...), fetches the rows in batches and writes them as CSV straight into parts
under Marketo's 10 MB limit. The result's column names become the header: name them as Marketo
does with ``AS``, or rename them with ``column_mapping`` as here.

Order the query by a unique key: when the import goes on after waiting for a slot in Marketo's
queue, or after a retry, the query runs again and the rows already submitted are skipped.

Set the Airflow Variable ``marketo_sql_conn_id`` to the connection of your database.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from marketo_provider.transfers.sql_to_marketo import SqlToMarketoOperator

with DAG(
    dag_id="marketo_sql_query",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["marketo", "example"],
) as dag:
    SqlToMarketoOperator(
        task_id="import_new_signups",
        sql="""
            SELECT email_address, first_name, last_name, company
            FROM signups
            WHERE signed_up_on >= '{{ (dag_run.logical_date or dag_run.run_after) | ds }}'
            ORDER BY id
        """,
        sql_conn_id="{{ var.value.get('marketo_sql_conn_id', 'postgres_default') }}",
        column_mapping={
            "email_address": "email",
            "first_name": "firstName",
            "last_name": "lastName",
        },
        object_type="leads",
        deferrable=True,
        poll_interval="{{ var.value.get('marketo_poll_interval', 30) }}",
    )

if __name__ == "__main__":
    dag.test()
