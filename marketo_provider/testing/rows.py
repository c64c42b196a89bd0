"""Checking a finished job's rows, and the failures and warnings files Marketo writes for it.

A file that cannot be read at all fails the job; otherwise each row is imported, imported with a
warning, or failed with a reason, and the two result files repeat the uploaded header with one
last column, ``Import Failure Reason`` or ``Import Warning Reason``, in the job's format.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field

from marketo_provider.testing.catalog import FieldSpec, value_error, value_warning
from marketo_provider.testing.spec import FAILURE_REASON_COLUMN, WARNING_REASON_COLUMN, ObjectType


class FileUnreadable(Exception):
    """The file cannot be read as the job's format: the whole job fails with this message."""


@dataclass
class Outcome:
    """What checking a job's rows found."""

    fail_message: str | None = None
    header: list[str] = field(default_factory=list)
    rows: list[dict[str, str]] = field(default_factory=list)
    failures: list[list[str]] = field(default_factory=list)
    warnings: list[list[str]] = field(default_factory=list)


@dataclass(frozen=True)
class JobRowRules:
    """What a row of one job must satisfy, on Marketo's side (the client's prediction of it is
    :class:`marketo_provider.sources.checks.RowRules`)."""

    object_type: ObjectType
    fields: dict[str, FieldSpec]  # the fields the object has, by name
    required: tuple[str, ...]  # fields every row must fill
    lead_exists: Callable[[int], bool] = lambda lead_id: False  # for lookupField=id (update only)


def check_rows(content: bytes, delimiter: str, rules: JobRowRules) -> Outcome:
    """Read a job's file and sort its rows; raise :class:`FileUnreadable` when it cannot be read."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileUnreadable(f"Failed to import: file is not UTF-8 (byte {exc.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        records = list(reader)
    except csv.Error as exc:
        raise FileUnreadable(f"Failed to import: malformed file ({exc})") from None
    if not records:
        raise FileUnreadable("Failed to import: file is empty")
    header = records[0]
    unknown = [name for name in header if name not in rules.fields]
    outcome = Outcome(header=header)
    for values in records[1:]:
        if values == []:
            continue
        reason, warning, row = check_row(header, values, unknown, rules)
        if reason:
            outcome.failures.append([*values, reason])
            continue
        outcome.rows.append(row)
        if warning:
            outcome.warnings.append([*values, warning])
    return outcome


def check_row(
    header: list[str], values: list[str], unknown: list[str], rules: JobRowRules
) -> tuple[str | None, str | None, dict[str, str]]:
    """``(failure reason, warning, row)`` of one record; the reason is None when it imports."""
    if len(values) != len(header):
        return f"Invalid row: {len(values)} values for {len(header)} columns", None, {}
    row = dict(zip(header, values, strict=True))
    kind = rules.object_type
    if any(not row.get(name) for name in rules.required):
        if kind is ObjectType.CUSTOM_OBJECTS:
            return "missing.dedupe.fields", None, row
        label = "Lookup field" if kind is ObjectType.LEADS else "Field"
        return f"{label} '{rules.required[0]}' is required and has no value", None, row
    if unknown:
        return f"Field not found: {', '.join(unknown)}", None, row
    for name, value in row.items():
        reason = value_error(rules.fields[name], value)
        if reason:
            return reason, None, row
    if kind is ObjectType.LEADS and rules.required == ("id",) and not rules.lead_exists(int(row["id"])):
        return f"Lead not found for id {row['id']}", None, row
    warning = next(
        (w for name, value in row.items() if (w := value_warning(rules.fields[name], value))), None
    )
    return None, warning, row


def result_file(header: list[str], reason_column: str, rows: list[list[str]], delimiter: str) -> bytes:
    """A failures or warnings file: the uploaded header, the reason column last, one line a row."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow([*header, reason_column])
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def failures_file(outcome: Outcome, delimiter: str) -> bytes:
    return (
        result_file(outcome.header, FAILURE_REASON_COLUMN, outcome.failures, delimiter)
        if outcome.failures
        else b""
    )


def warnings_file(outcome: Outcome, delimiter: str) -> bytes:
    return (
        result_file(outcome.header, WARNING_REASON_COLUMN, outcome.warnings, delimiter)
        if outcome.warnings
        else b""
    )


__all__ = ["FileUnreadable", "JobRowRules", "Outcome", "check_rows", "result_file"]
