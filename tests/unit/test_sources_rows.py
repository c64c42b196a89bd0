"""Rows of a query written as CSV: values, quoting, and resuming by skipping what was submitted."""

from __future__ import annotations

import csv
import datetime
import io
from decimal import Decimal

import pytest

from marketo_provider.api import FileFormat
from marketo_provider.sources import QuerySource, SourceError
from marketo_provider.sources.header import Header
from marketo_provider.sources.parts import iter_parts
from marketo_provider.sources.query import RowsBody

ROWS = [
    ("a@example.com", None, True, datetime.datetime(2024, 5, 1, 12, 30), Decimal("1.50"), 7),
    ("b@example.com", "two\nlines", False, datetime.date(2024, 5, 2), 2.25, -1),
    ("c@example.com", 'quote " and, comma', None, datetime.time(8, 0), Decimal("0"), 0),
    ("d@example.com", "lone\rcarriage return", None, None, None, None),
]


def batches(rows: list[tuple], size: int) -> RowsBody:
    pending = [rows[i : i + size] for i in range(0, len(rows), size)]
    return RowsBody(lambda: pending.pop(0) if pending else [], FileFormat.CSV, "query on test")


def read_all(body: RowsBody) -> bytes:
    out = io.BytesIO()
    buffer = memoryview(bytearray(7))  # small reads on purpose
    while n := body.readinto(buffer):
        out.write(buffer[:n])
    return out.getvalue()


def test_values_are_written_as_marketo_reads_them() -> None:
    data = read_all(batches(ROWS, 3))
    parsed = list(csv.reader(io.StringIO(data.decode(), newline="")))
    assert parsed == [
        ["a@example.com", "", "true", "2024-05-01T12:30:00", "1.50", "7"],
        ["b@example.com", "two\nlines", "false", "2024-05-02", "2.25", "-1"],
        ["c@example.com", 'quote " and, comma', "", "08:00:00", "0", "0"],
        ["d@example.com", "lone\rcarriage return", "", "", "", ""],
    ]
    assert b'"lone\rcarriage return"' in data  # a lone CR is quoted too


def test_binary_values_are_refused() -> None:
    with pytest.raises(SourceError, match="binary column"):
        read_all(batches([("a@example.com", b"\x00\x01")], 10))


def test_rows_are_cut_into_parts_with_the_header() -> None:
    rows = [(f"lead{i}@example.com", f"Name, {i}") for i in range(1000)]
    header = Header(names=("email", "firstName"), line=b"email,firstName\r\n", source_offset=0)
    parts = [bytes(p.data) for p in iter_parts(batches(rows, 64), header, max_part_bytes=2000)]
    assert len(parts) > 10 and all(p.startswith(header.line) and len(p) <= 2000 for p in parts)
    parsed = [r for p in parts for r in list(csv.reader(io.StringIO(p.decode(), newline="")))[1:]]
    assert parsed == [list(r) for r in rows]


def test_resume_skips_what_was_submitted() -> None:
    rows = [(f"lead{i}@example.com", f"Name{i}") for i in range(500)]
    header = Header(names=("email", "firstName"), line=b"email,firstName\r\n", source_offset=0)
    full = [
        (p.source_start, bytes(p.data)) for p in iter_parts(batches(rows, 50), header, max_part_bytes=1500)
    ]
    body = batches(rows, 50)
    body.skip_to(full[4][0])
    resumed = [
        (p.source_start, bytes(p.data)) for p in iter_parts(body, header, max_part_bytes=1500, first_index=4)
    ]
    assert resumed == full[4:]


def test_resume_notices_other_rows() -> None:
    rows = [(f"lead{i}@example.com", f"Name{i}") for i in range(100)]
    body = batches([("x@example.com", "a much longer name than before"), *rows], 10)
    with pytest.raises(SourceError, match="returns other rows than when earlier parts were submitted"):
        body.skip_to(len("lead0@example.com,Name0\r\n") * 3)
    with pytest.raises(SourceError, match="returns other rows"):
        batches(rows[:2], 10).skip_to(10_000)  # fewer rows than before


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sql": " "}, "sql is empty"),
        ({"conn_id": ""}, "conn_id is empty"),
        ({"fetch_size": 0}, "fetch_size must be a positive whole number"),
        ({"column_mapping": {"a": "email", "b": "email"}}, "maps both 'a' and 'b' to 'email'"),
    ],
)
def test_query_source_is_checked_when_built(kwargs: dict, message: str) -> None:
    options = {"sql": "SELECT 1", "conn_id": "warehouse", **kwargs}
    with pytest.raises(SourceError, match=message):
        QuerySource.of(options.pop("sql"), **options)
