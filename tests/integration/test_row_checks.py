"""Rows Marketo would refuse, found before upload, over real HTTP against a sandbox that applies the
same documented rules in its own code; every failed row traced back to its file and line; repeated
keys found and, when asked, only the last row of a key sent; header names in any case."""

from __future__ import annotations

import csv
import gzip
import io
import logging
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from marketo_provider.api import ImportSpec
from marketo_provider.hooks.marketo import clear_token_cache
from marketo_provider.importing import BulkImport, ImportAbortedError, ImportOptions, ImportState
from marketo_provider.sources import QuerySource, Source, SourceError, preflight, resolve_source
from marketo_provider.testing import MarketoSandbox
from tests.conftest import fast_hook
from tests.helpers import _field, write_schema
from tests.unit.test_fields import VALUES_OF_TYPE

LOG = logging.getLogger("tests.row_checks")

# A lead describe with a field of every type Adobe's Field Types page documents.
EVERY_TYPE = {
    "leads": {
        "requestId": "a1#1",
        "success": True,
        "result": [
            {
                "name": "API Lead",
                "searchableFields": [["email"], ["id"]],
                "fields": [
                    _field("id", "Id", "integer", updateable=False),
                    _field("email", "Email Address", "email", 255),
                    _field("firstName", "First Name", "string", 255),
                    _field("code", "Code", "string", 5),
                    _field("leadScore", "Lead Score", "integer"),
                    _field("priority", "Priority", "score"),
                    _field("discount", "Discount", "percent"),
                    _field("weight", "Weight", "float"),
                    _field("annualRevenue", "Annual Revenue", "currency"),
                    _field("unsubscribed", "Unsubscribed", "boolean"),
                    _field("dateOfBirth", "Date of Birth", "date"),
                    _field("lastSeen", "Last Seen", "datetime"),
                    _field("website", "Website", "url", 255),
                    _field("notes", "Notes", "text"),
                ],
            }
        ],
    }
}
COLUMNS = [
    "email", "firstName", "code", "leadScore", "priority", "discount", "weight", "annualRevenue",
    "unsubscribed", "dateOfBirth", "lastSeen", "website", "notes",
]  # fmt: skip
GOOD = {
    "email": "",
    "firstName": "Ann",
    "code": "AB1",
    "leadScore": "42",
    "priority": "7",
    "discount": "15",
    "weight": "70.5",
    "annualRevenue": "1200.00",
    "unsubscribed": "false",
    "dateOfBirth": "1990-12-31",
    "lastSeen": "2024-05-07T15:41:32-05:00",
    "website": "https://example.com/",
    "notes": "fine",
}
# One bad value of each kind, and the reason Marketo (the sandbox) gives for it.
BAD = [
    ("leadScore", "n/a", "Invalid data type in field Lead Score"),
    ("priority", "high", "Invalid data type in field Priority"),
    ("discount", "12.5", "Invalid data type in field Discount"),
    ("weight", "heavy", "Invalid data type in field Weight"),
    ("annualRevenue", "1,200", "Invalid data type in field Annual Revenue"),
    ("unsubscribed", "yes", "Invalid data type in field Unsubscribed"),
    ("dateOfBirth", "31/12/1990", "Invalid data type in field Date of Birth"),
    ("lastSeen", "yesterday", "Invalid data type in field Last Seen"),
    ("website", "example.com", "Invalid data type in field Website"),
    ("code", "TOO-LONG", "Value too long for field Code"),
    ("firstName", "x" * 256, "Value too long for field First Name"),
    ("notes", "é" * 15_001, "Value too long for field Notes"),
    ("email", "", "Lookup field 'email' is required and has no value"),
]


def every_type_rows() -> tuple[list[list[str]], dict[int, str], dict[int, str]]:
    """Rows (header first), the failing rows by line with their reason, the warned rows by line."""
    rows = [COLUMNS]
    failing: dict[int, str] = {}
    warned: dict[int, str] = {}
    n = 0
    for field, value, reason in BAD:
        for _ in range(3):  # good rows beside each bad one
            n += 1
            rows.append([{**GOOD, "email": f"good{n}@example.com"}[c] for c in COLUMNS])
        n += 1
        row = {**GOOD, "email": f"bad{n}@example.com", field: value}
        rows.append([row[c] for c in COLUMNS])
        failing[len(rows)] = reason
    rows.append([{**GOOD, "email": "not-an-email"}[c] for c in COLUMNS])
    warned[len(rows)] = "Invalid email address"
    return rows, failing, warned


def csv_bytes(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


@pytest.fixture
def typed_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MarketoSandbox]:
    schema = write_schema(tmp_path / "describe.json", EVERY_TYPE)
    with MarketoSandbox(schema=str(schema), queued_seconds=0.05, import_seconds=0.1) as sb:
        clear_token_cache()
        for key, value in sb.env().items():
            monkeypatch.setenv(key, value)
        yield sb


def run_import(source: Any, xcom: dict[str, Any], **options: Any) -> dict[str, Any]:
    spec_options = options.pop("spec", {})
    run = BulkImport(
        fast_hook(),
        ImportSpec.of("leads", **spec_options),
        source,
        ImportOptions.of(poll_interval=0.05, **options),
        log=LOG,
    )
    state = run.begin(None)
    assert state is not None
    while (wait := run.advance(state)) is not None:
        run.wait(state, wait)
    return run.conclude(state, xcom.__setitem__)


def merged_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_predictions_match_what_marketo_then_refuses_and_every_failure_names_its_line(
    typed_sandbox: MarketoSandbox, tmp_path: Path
) -> None:
    rows, failing, warned = every_type_rows()
    path = tmp_path / "leads.csv"
    path.write_bytes(csv_bytes(rows))
    source = Source.of(str(path), max_part_bytes=32_000)
    checked = preflight(source, object_type="leads", describe=fast_hook().describe)
    assert checked.checks is not None and checked.parts is not None and checked.parts > 1
    predicted = checked.checks
    assert dict(predicted.failures) == dict(Counter(failing.values()))
    assert dict(predicted.warnings) == {"Invalid email address": 1}
    assert predicted.verdicts["Invalid data type in field Lead Score"].value == "fails"
    assert predicted.verdicts["Invalid data type in field Date of Birth"].value == "may_fail"
    assert predicted.examples["Invalid data type in field Lead Score"] == [
        f"{path}, line {min(k for k, v in failing.items() if 'Lead Score' in v)}"
    ]
    xcom: dict[str, Any] = {}
    summary = run_import(source, xcom)
    assert summary["failure_reasons"] == dict(predicted.failures)  # what Marketo refused, as predicted
    assert summary["warning_reasons"] == dict(predicted.warnings)
    failures = merged_rows(xcom["failures"])
    assert {int(r["Source Line"]): r["Import Failure Reason"] for r in failures} == failing
    assert {r["Source"] for r in failures} == {str(path)}
    warnings = merged_rows(xcom["warnings"])
    assert {int(r["Source Line"]): r["Import Warning Reason"] for r in warnings} == warned
    assert all(b["origin"].startswith("leads.csv bytes ") for b in summary["batches"])


def test_failures_traced_through_a_gzip_prefix_of_many_files(
    marketo_env: MarketoSandbox, tmp_path: Path
) -> None:
    unload = tmp_path / "unload"
    unload.mkdir()
    expected: dict[tuple[str, int], str] = {}
    for f in range(3):
        lines = []
        for i in range(400):
            score = "n/a" if i % 97 == 5 else str(i)
            email = "" if i % 131 == 7 else f"u{f}-{i}@example.com"
            lines.append(f"{email},Name {i},{score}\n")
            if not email:
                expected[(f"data_{f}.csv.gz", i + 1)] = "Lookup field 'email' is required and has no value"
            elif score == "n/a":
                expected[(f"data_{f}.csv.gz", i + 1)] = "Invalid data type in field Lead Score"
        (unload / f"data_{f}.csv.gz").write_bytes(gzip.compress("".join(lines).encode()))
    source = Source.of(f"{unload}/", columns=["email", "firstName", "leadScore"], max_part_bytes=6_000)
    xcom: dict[str, Any] = {}
    summary = run_import(source, xcom)
    failures = merged_rows(xcom["failures"])
    found = {(Path(r["Source"]).name, int(r["Source Line"])): r["Import Failure Reason"] for r in failures}
    assert found == expected and summary["rows_failed"] == len(expected)
    assert len(summary["batches"]) > 3


def test_failures_traced_to_query_rows(
    marketo_env: MarketoSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "crm.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE leads (id INTEGER PRIMARY KEY, email TEXT, score TEXT)")
        conn.executemany(
            "INSERT INTO leads VALUES (?, ?, ?)",
            [(i, f"q{i}@example.com", "bad" if i % 50 == 3 else str(i)) for i in range(1, 301)],
        )
    monkeypatch.setenv("AIRFLOW_CONN_CRM", f'{{"conn_type": "sqlite", "host": "{db}"}}')
    source = resolve_source(
        QuerySource.of("SELECT email, score AS leadScore FROM leads ORDER BY id", conn_id="crm"),
        max_part_bytes=2_000,
    )
    xcom: dict[str, Any] = {}
    run_import(source, xcom)
    rows = {int(r["Source Line"]) for r in merged_rows(xcom["failures"])}
    assert rows == {i for i in range(1, 301) if i % 50 == 3}
    assert {r["Source"] for r in merged_rows(xcom["failures"])} == {"query on crm"}


def repeated_source(tmp_path: Path) -> Path:
    path = tmp_path / "leads.csv"
    lines = ["email,firstName\n"]
    lines += [f"u{i}@example.com,First{i}\n" for i in range(300)]
    lines += [f"u{i}@example.com,Second{i}\n" for i in range(0, 300, 60)]  # repeated in a later part
    path.write_text("".join(lines))
    return path


def test_repeated_keys_are_counted_and_located(marketo_env: MarketoSandbox, tmp_path: Path) -> None:
    path = repeated_source(tmp_path)
    checked = preflight(
        Source.of(str(path), max_part_bytes=3_000), object_type="leads", describe=fast_hook().describe
    )
    assert checked.checks is not None and checked.parts is not None and checked.parts > 2
    assert (checked.checks.repeated_keys, checked.checks.repeated_rows) == (5, 5)
    assert checked.checks.repeated_examples[0] == f"the same email on {path}, line 2, {path}, line 302"


def test_keep_last_sends_one_row_per_key_the_last(marketo_env: MarketoSandbox, tmp_path: Path) -> None:
    path = repeated_source(tmp_path)
    summary = run_import(Source.of(str(path), max_part_bytes=3_000), {}, on_repeated_keys="keep_last")
    sent = marketo_env.imported_rows("leads")
    by_email = Counter(r["email"] for r in sent)
    assert set(by_email.values()) == {1} and len(by_email) == 300
    assert {r["firstName"] for r in sent if r["email"] == "u60@example.com"} == {"Second60"}
    assert summary["rows_kept_out"] == 5 and summary["rows_processed"] == 300


def test_repeated_keys_can_stop_the_import(marketo_env: MarketoSandbox, tmp_path: Path) -> None:
    with pytest.raises(ImportAbortedError, match="5 rows repeat an earlier row's key"):
        run_import(Source.of(str(repeated_source(tmp_path))), {}, on_repeated_keys="fail")
    assert marketo_env.calls_to("/bulk/v1/*") == []


def test_invalid_rows_skipped_go_into_the_failures_refused_before_upload(
    typed_sandbox: MarketoSandbox, tmp_path: Path
) -> None:
    rows, failing, _ = every_type_rows()
    path = tmp_path / "leads.csv"
    path.write_bytes(csv_bytes(rows))
    xcom: dict[str, Any] = {}
    summary = run_import(Source.of(str(path), max_part_bytes=32_000), xcom, on_invalid_rows="skip")
    assert summary["rows_failed"] == 0 and summary["rows_kept_out"] == len(failing)
    failures = merged_rows(xcom["failures"])
    assert {int(r["Source Line"]): r["Import Failure Reason"] for r in failures} == {
        line: f"Refused before upload: {reason}" for line, reason in failing.items()
    }
    assert len(typed_sandbox.imported_rows("leads")) == len(rows) - 1 - len(failing)


def test_invalid_rows_stop_before_anything_is_sent(typed_sandbox: MarketoSandbox, tmp_path: Path) -> None:
    rows, failing, _ = every_type_rows()
    path = tmp_path / "leads.csv"
    path.write_bytes(csv_bytes(rows))
    with pytest.raises(ImportAbortedError, match=f"{len(failing)} rows Marketo would or may refuse"):
        run_import(Source.of(str(path)), {}, on_invalid_rows="fail")
    with pytest.raises(ImportAbortedError, match="more than max_failed_rows=3"):
        run_import(Source.of(str(path)), {}, max_failed_rows=3)
    assert typed_sandbox.calls_to("/bulk/v1/*") == []


def test_adobes_example_header_imports_under_describes_names(
    marketo_env: MarketoSandbox, tmp_path: Path
) -> None:
    path = tmp_path / "adobe.csv"
    path.write_text(
        "FirstName,LastName,Email,Company\n"
        "Marvin,Gaye,marvin@example.com,Motown\n"
        "Aretha,Franklin,aretha@example.com,Atlantic\n"
    )
    summary = run_import(Source.of(str(path)), {})
    assert summary["rows_processed"] == 2
    assert sorted(marketo_env.imported_rows("leads"), key=lambda r: r["email"]) == [
        {"firstName": "Aretha", "lastName": "Franklin", "email": "aretha@example.com", "company": "Atlantic"},
        {"firstName": "Marvin", "lastName": "Gaye", "email": "marvin@example.com", "company": "Motown"},
    ]


def test_every_header_problem_in_one_message(marketo_env: MarketoSandbox, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("FirstNme,Mail,Compny\nA,a@example.com,X\n")
    with pytest.raises(SourceError) as caught:
        run_import(Source.of(str(path)), {})
    text = str(caught.value)
    assert "has no 'email' column" in text and "'FirstNme' (closest: firstName" in text and "'Compny'" in text


def test_a_header_line_read_as_headerless_is_never_imported(
    marketo_env: MarketoSandbox, tmp_path: Path
) -> None:
    path = tmp_path / "with-header.csv"
    path.write_text("EMAIL,FirstName\na@example.com,A\n")
    with pytest.raises(SourceError, match="starts with a header line"):
        run_import(Source.of(str(path), columns=["email", "firstName"]), {})
    assert marketo_env.calls_to("/bulk/v1/*") == []


def test_validate_only_plan_says_what_would_fail(typed_sandbox: MarketoSandbox, tmp_path: Path) -> None:
    rows, failing, _ = every_type_rows()
    path = tmp_path / "leads.csv"
    path.write_bytes(csv_bytes(rows))
    run = BulkImport(
        fast_hook(), ImportSpec.of("leads"), Source.of(str(path), max_part_bytes=32_000),
        ImportOptions.of(on_invalid_rows="skip"), log=LOG,
    )  # fmt: skip
    plan = run.plan()
    assert plan["records"] == len(rows) - 1 and plan["records_to_send"] == len(rows) - 1 - len(failing)
    assert plan["row_checks"]["rows_predicted_to_fail"] == len(failing)
    assert plan["row_checks"]["rows_certain_to_fail"] == 2  # Lead Score, empty email
    header_bytes = len(csv_bytes([COLUMNS]))
    assert len(plan["part_origins"]) == plan["parts"]
    assert plan["part_origins"][0].startswith(f"leads.csv bytes {header_bytes:,}-")
    assert typed_sandbox.calls_to("/bulk/v1/*") == []
    assert ImportState.from_json({**ImportState("x", "leads", None, 1.0).to_json()}).row_checks is None


# The column of EVERY_TYPE that holds each documented type.
COLUMN_OF_TYPE = {
    "integer": "leadScore", "score": "priority", "percent": "discount", "float": "weight",
    "currency": "annualRevenue", "boolean": "unsubscribed", "date": "dateOfBirth", "datetime": "lastSeen",
    "url": "website", "email": "email",
}  # fmt: skip
LENGTHS = {
    "code": ["ABCDE", "ABCDEF", "é" * 5, "é" * 6],  # a string of length 5
    "firstName": ["x" * 255, "x" * 256],  # a string of describe's default 255
    "notes": ["é" * 15_000, "é" * 15_001, "x" * 30_000, "x" * 30_001],  # a text area: 30,000 bytes
}


def every_value_rows() -> list[list[str]]:
    """The header, then a row for each value of each documented type (good, bad, impossible and
    forms Adobe is silent on) among good values, and rows with more than one problem."""
    rows = [COLUMNS]
    n = 0

    def row(**values: str) -> None:
        nonlocal n
        n += 1
        rows.append([{**GOOD, "email": f"row{n}@example.com", **values}[c] for c in COLUMNS])

    for data_type, values in VALUES_OF_TYPE.items():
        for value in values:
            row(**{COLUMN_OF_TYPE[data_type]: value})
    for column, values in LENGTHS.items():
        for value in values:
            row(**{column: value})
    row(leadScore="n/a", email="not-an-email")  # fails, and its email would be warned
    row(dateOfBirth="2026-02-30", lastSeen="2026-03-14 10:00", leadScore="9999999999")  # may fail thrice
    row(lastSeen="2026-03-14", priority="high", email="")  # an empty key, and more
    return rows


def test_every_documented_type_predicted_exactly_as_the_sandbox_refuses(
    typed_sandbox: MarketoSandbox, tmp_path: Path
) -> None:
    """What pre-flight predicts fails or may fail is exactly what the sandbox (the same documented
    rules in its own code) refuses, for the reason it gives; nothing it imports is predicted to fail;
    what it warns about is predicted warned."""
    rows = every_value_rows()
    path = tmp_path / "leads.csv"
    path.write_bytes(csv_bytes(rows))
    source = Source.of(str(path), max_part_bytes=64_000)
    checked = preflight(source, object_type="leads", describe=fast_hook().describe)
    assert checked.checks is not None and checked.rules is not None and checked.parts is not None
    assert checked.parts > 1
    predicted = checked.rules.problems(rows[1:])  # by index of the record; its line is index + 2
    failing = {i + 2: p.reason for i, p in predicted.items() if p.verdict.predicted_failure}
    warned = {i + 2: p.reason for i, p in predicted.items() if not p.verdict.predicted_failure}
    assert len(failing) > 60 and warned

    xcom: dict[str, Any] = {}
    summary = run_import(source, xcom)
    refused = {int(r["Source Line"]): r["Import Failure Reason"] for r in merged_rows(xcom["failures"])}
    assert refused == {line: reason.removesuffix(" (past 32 bits)") for line, reason in failing.items()}
    imported = len(rows) - 1 - len(refused)
    assert (summary["rows_processed"], summary["rows_failed"]) == (imported, len(refused))
    assert len(typed_sandbox.imported_rows("leads")) == imported
    sandbox_warned = {
        int(r["Source Line"]): r["Import Warning Reason"] for r in merged_rows(xcom["warnings"])
    }
    assert sandbox_warned == warned

    # The plan counts each problem under its reason and each row once in the totals.
    report = checked.checks
    assert report.rows_failing == len(failing) and report.rows_warned == len(warned)
    every_reason = Counter(r for p in predicted.values() for r in {q.reason for q in p.problems})
    assert {**report.failures, **report.warnings} == dict(every_reason)
    assert report.warnings["Invalid email address"] == len(warned) + 1  # one row also fails
    assert report.verdicts["Invalid data type in field Lead Score"].value == "fails"
    assert report.verdicts["Invalid data type in field Lead Score (past 32 bits)"].value == "may_fail"
    assert report.rows_certain_to_fail == sum(
        1 for p in predicted.values() if any(q.verdict.value == "fails" for q in p.problems)
    )
