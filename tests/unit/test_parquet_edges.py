"""Parquet values Marketo cannot take are refused naming the column and row, as a CSV source's
are: a year past 9999 (also one reached in the column's time zone) and NUL in text."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from marketo_provider.sources import Source, SourceError, preflight  # noqa: E402


def check_file(tmp_path: Path, table: Any) -> Any:
    path = tmp_path / "leads.parquet"
    pq.write_table(table, path)
    return preflight(Source.of(str(path)), object_type="leads", check_columns=False)


def emails(n: int) -> Any:
    return pa.array([f"u{i}@example.com" for i in range(n)])


def test_the_last_second_of_9999_in_berlin_is_refused(tmp_path: Path) -> None:
    last = datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.timezone.utc)
    ok = datetime.datetime(2026, 1, 31, 8, 30, tzinfo=datetime.timezone.utc)
    stamps = pa.array([ok, ok, last], pa.timestamp("s", tz="Europe/Berlin"))
    table = pa.table({"email": emails(3), "seen": stamps})
    with pytest.raises(SourceError) as raised:
        check_file(tmp_path, table)
    message = str(raised.value)
    assert "a date in the year 10000" in message and "in column 'seen' (row 2)" in message
    assert "years 1 to 9999" in message


def test_the_same_instant_as_utc_is_taken(tmp_path: Path) -> None:
    last = datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.timezone.utc)
    table = pa.table({"email": emails(1), "seen": pa.array([last], pa.timestamp("s", tz="UTC"))})
    assert check_file(tmp_path, table).records == 1


def test_a_date_past_9999_is_refused(tmp_path: Path) -> None:
    days = pa.array([0, 3_000_000], pa.date32())  # 1970-01-01, and a day in the year 10183
    table = pa.table({"email": emails(2), "born": days})
    with pytest.raises(SourceError, match=r"a date in the year 10183 .* in column 'born' \(row 1\)"):
        check_file(tmp_path, table)


def test_nul_in_text_is_refused_naming_the_column_and_row(tmp_path: Path) -> None:
    table = pa.table({"email": emails(3), "note": pa.array(["fine", None, "bad\x00byte"])})
    with pytest.raises(SourceError, match=r"a NUL character.* in column 'note' \(row 2\)"):
        check_file(tmp_path, table)
