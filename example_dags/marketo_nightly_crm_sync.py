"""A nightly CRM sync that sends Marketo only the leads that changed.

The CRM exports its whole leads table every night. With ``changed_rows_only=True`` the operator
keeps, in ``state_path``, what Marketo confirmed at the last sync (per lead, a fingerprint of the
values sent), and sends only the leads that are new or changed since, plus those Marketo failed
last time: on a quiet night a few parts instead of every lead, in the import queue and the daily
API quota the company's other integrations share. On Sundays ``full_refresh`` sends everything
and builds the state again.

The state is kept only after an import Marketo completed; rows that failed, parts whose upload
outcome is unknown and every part of an import that failed are sent again next night. Two runs at
once cannot corrupt it: the second one stops, saying which run holds it.

Set the Airflow Variables ``marketo_crm_export`` (the export's URI), ``marketo_sync_state`` (a
folder that outlives runs) and ``marketo_source_conn_id`` to read elsewhere (``file://`` and local
paths work for a try-out).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from marketo_provider.operators.bulk_import import MarketoBulkImportOperator

with DAG(
    dag_id="marketo_nightly_crm_sync",
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["marketo", "example"],
) as dag:
    MarketoBulkImportOperator(
        task_id="sync_leads",
        source="{{ var.value.get('marketo_crm_export', 's3://crm-exports/leads/latest.csv.gz') }}",
        source_conn_id="{{ var.value.get('marketo_source_conn_id', 'aws_default') }}",
        object_type="leads",
        lookup_field="email",
        changed_rows_only=True,
        state_path="{{ var.value.get('marketo_sync_state', 's3://crm-exports/marketo-sync-state/leads/') }}",
        full_refresh="{{ (dag_run.logical_date or dag_run.run_after).isoweekday() == 7 }}",
        on_repeated_keys="keep_last",
        deferrable=True,
        poll_interval="{{ var.value.get('marketo_poll_interval', 30) }}",
        retries=2,
    )

if __name__ == "__main__":
    dag.test()
