"""Submit a large lead import, let other work run, then wait for it and act on the failures.

``wait_for_completion=False`` returns as soon as Marketo has accepted every part; the sensor
waits for the batches in the triggerer and publishes the merged failures and warnings; the last
task reads the failures and decides whether they need a person.
"""

from __future__ import annotations

import csv
import io
from collections import Counter

import pendulum
from airflow.sdk import DAG, task

from marketo_provider.operators.bulk_import import MarketoBulkImportOperator
from marketo_provider.sensors.bulk_import import MarketoBulkImportSensor

with DAG(
    dag_id="marketo_submit_then_wait",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["marketo", "example"],
) as dag:
    submit = MarketoBulkImportOperator(
        task_id="submit_leads",
        source="{{ var.value.get('marketo_leads_source', '/data/crm/leads/' ~ (dag_run.logical_date or dag_run.run_after) | ds ~ '.csv') }}",
        object_type="leads",
        wait_for_completion=False,
    )

    wait = MarketoBulkImportSensor(
        task_id="wait_for_leads",
        batch_ids=submit.output,  # the summary: its batch ids, and the source the log names
        object_type="leads",
        deferrable=True,
        poll_interval="{{ var.value.get('marketo_poll_interval', 30) }}",
        timeout=6 * 3600,
    )

    @task
    def triage_failures(summary: dict, **context) -> dict:
        """Count failed rows by Marketo's reason; bad data types mean the CRM mapping broke."""
        failures = context["ti"].xcom_pull(task_ids="wait_for_leads", key="failures")
        reasons: Counter[str] = Counter()
        if failures:
            for row in csv.DictReader(io.StringIO(failures)):
                reasons[row["Import Failure Reason"]] += 1
        mapping_errors = sum(n for reason, n in reasons.items() if reason.startswith("Invalid data type"))
        if mapping_errors > 0.01 * max(summary["rows_processed"], 1):
            raise ValueError(
                f"{mapping_errors} rows have values of the wrong type; check the CRM field mapping"
            )
        return {"failed": sum(reasons.values()), "by_reason": dict(reasons)}

    submit >> wait >> triage_failures(wait.output)

if __name__ == "__main__":
    dag.test()
