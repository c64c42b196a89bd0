"""Values checked before upload, in a DAG: a CRM export whose datetime field holds W3C date-only
values (good) and impossible dates and times (bad), imported with ``on_invalid_rows="skip"``."""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pendulum
import pytest

from marketo_provider.operators.bulk_import import MarketoBulkImportOperator
from marketo_provider.testing import MarketoSandbox
from tests.e2e.conftest import task_states, task_xcom
from tests.helpers import _field, write_schema

_ids = itertools.count()

DESCRIBE = {
    "leads": {
        "requestId": "e2e#1",
        "success": True,
        "result": [
            {
                "name": "API Lead",
                "searchableFields": [["email"], ["id"]],
                "fields": [
                    _field("id", "Id", "integer", updateable=False),
                    _field("email", "Email Address", "email", 255),
                    _field("firstName", "First Name", "string", 255),
                    _field("lastSeen", "Last Seen", "datetime"),
                    _field("dateOfBirth", "Date of Birth", "date"),
                ],
            }
        ],
    }
}
# Good values of the datetime field: every W3C level, most of them the plain dates CRMs export.
GOOD_LAST_SEEN = [
    "2026-03-14", "2026-03-15", "2024-02-29", "2026", "2026-03", "2026-03-14T09:30Z",
    "2026-03-14T09:30:15+01:00", "2026-03-14T09:30:15.250-05:00", "2026-03-14T23:59:59+14:00", "",
]  # fmt: skip
# Bad rows: (column, value); each is refused before upload, never sent.
BAD = [
    ("lastSeen", "2026-02-30"),
    ("lastSeen", "2026-04-31T10:00Z"),
    ("lastSeen", "2026-03-14T25:00Z"),
    ("lastSeen", "2026-03-14T10:61Z"),
    ("lastSeen", "2026-03-14T10:00+15:00"),
    ("lastSeen", "2025-02-29"),
    ("lastSeen", "2026-03-14 10:00"),
    ("dateOfBirth", "2026-02-29"),
    ("dateOfBirth", "1990-06-31"),
]
REASONS = {
    "lastSeen": "Invalid data type in field Last Seen",
    "dateOfBirth": "Invalid data type in field Date of Birth",
}


@pytest.fixture
def typed_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MarketoSandbox]:
    from marketo_provider.hooks.marketo import clear_token_cache

    schema = write_schema(tmp_path / "describe.json", DESCRIBE)
    with MarketoSandbox(schema=str(schema), queued_seconds=0.05, import_seconds=0.1) as sb:
        clear_token_cache()
        for key, value in sb.env().items():
            monkeypatch.setenv(key, value)
        yield sb


def test_date_only_datetimes_are_sent_and_impossible_dates_kept_out(
    run_dag: Any, typed_env: MarketoSandbox, tmp_path: Path
) -> None:
    from airflow.sdk import DAG

    rows = [["email", "firstName", "lastSeen", "dateOfBirth"]]
    good: set[str] = set()
    bad: dict[int, str] = {}  # line -> reason
    for i in range(120):
        email = f"lead{i}@example.com"
        if i % 13 == 5:
            column, value = BAD[(i // 13) % len(BAD)]
            row = {
                "email": email,
                "firstName": f"N{i}",
                "lastSeen": "2026-03-14",
                "dateOfBirth": "1990-01-01",
            }
            row[column] = value
            bad[len(rows) + 1] = REASONS[column]
        else:
            row = {
                "email": email,
                "firstName": f"N{i}",
                "lastSeen": GOOD_LAST_SEEN[i % len(GOOD_LAST_SEEN)],
                "dateOfBirth": "2000-02-29" if i % 2 else "1990-12-31",
            }
            good.add(email)
        rows.append(list(row.values()))
    rows.append(["not-an-email", "Warned", "2026-03-14", ""])  # a warning: sent, and imported
    good.add("not-an-email")
    assert len(bad) >= len(BAD)
    path = tmp_path / "crm.csv"
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    path.write_text(out.getvalue())

    with DAG(
        f"w3c_dates_{next(_ids)}", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False
    ) as dag:
        MarketoBulkImportOperator(
            task_id="import",
            source=str(path),
            on_invalid_rows="skip",
            max_part_bytes=2_000,
            poll_interval=0.05,
        )
    dr = run_dag(dag)
    assert dr.state == "success", task_states(dr)

    sent = typed_env.imported_rows("leads")
    assert {r["email"] for r in sent} == good  # every good row, the date-only datetimes included
    assert {r["lastSeen"] for r in sent} >= {"2026-03-14", "2026", "2026-03"}
    summary = task_xcom(dr, "import")
    assert (summary["rows_failed"], summary["rows_kept_out"]) == (0, len(bad))
    assert summary["rows_with_warning"] == 1 and len(summary["batch_ids"]) > 1
    refused = list(csv.DictReader(io.StringIO(task_xcom(dr, "import", "failures"))))
    assert {int(r["Source Line"]): r["Import Failure Reason"] for r in refused} == {
        line: f"Refused before upload: {reason}" for line, reason in bad.items()
    }
    # The refused rows as they were read (their first column is the email).
    assert {next(iter(r.values())) for r in refused} == {rows[line - 1][0] for line in bad}
