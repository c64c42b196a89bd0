"""Parquet sources: every Arrow type written in the form Marketo documents, columns Marketo cannot
take refused before anything is read, cutting and resuming on row boundaries, many files."""

from __future__ import annotations

import csv
import datetime
import decimal
import io
import sys
from pathlib import Path
from typing import Any

import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from marketo_provider.sources import (  # noqa: E402
    Preflight,
    Source,
    SourceError,
    open_body,
    preflight,
    source_parts,
)

UTC = datetime.timezone.utc


def write(path: Path, table: Any, **kwargs: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, **kwargs)
    return path


def check(source: Source) -> Preflight:
    return preflight(source, object_type="leads", check_columns=False)


def cut(source: Source, resume_at: tuple[int, int] | None = None) -> list[tuple[int, int, int, bytes, str]]:
    with source_parts(source, resume_at=resume_at) as parts:
        return [(p.index, p.source_start, p.source_end, bytes(p.data), p.origin) for p in parts]


def lines(source: Source) -> list[str]:
    """The CSV records of every part (header lines removed), as text."""
    out = []
    for *_, data, _ in cut(source):
        out += data.decode().split("\n", 1)[1].splitlines(keepends=True)
    return out


def rows(source: Source) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    for *_, data, _ in cut(source):
        found += csv.DictReader(
            io.StringIO(data.decode(), newline=""), delimiter=source.file_format.delimiter
        )
    return found


# ---- values --------------------------------------------------------------------------------


def test_every_value_in_the_form_marketo_documents(tmp_path: Path) -> None:
    instant = datetime.datetime(2026, 7, 1, 12, 30, 45, 999_999, tzinfo=UTC)
    table = pa.table(
        {
            "email": ["a@example.com", None],
            "born": pa.array([datetime.date(1990, 1, 31), None], pa.date32()),
            "born64": pa.array([datetime.date(1990, 1, 31), None], pa.date64()),
            "paris": pa.array([instant, None], pa.timestamp("us", tz="Europe/Paris")),
            "kolkata": pa.array([instant, None], pa.timestamp("ns", tz="Asia/Kolkata")),
            "utc": pa.array([instant, None], pa.timestamp("ms", tz="UTC")),
            "offset": pa.array([instant, None], pa.timestamp("s", tz="-03:00")),
            "naive": pa.array([instant.replace(tzinfo=None), None], pa.timestamp("us")),
            "before1970": pa.array(
                [datetime.datetime(1969, 12, 31, 23, 59, 59, 500_000), None], pa.timestamp("us")
            ),
            "flag": pa.array([True, None]),
            "off": pa.array([False, None]),
            "price": pa.array([decimal.Decimal("1234.50"), None], pa.decimal128(10, 2)),
            "wide": pa.array(
                [decimal.Decimal("-0.000000000000000000000000000001"), None], pa.decimal256(40, 30)
            ),
            "big": pa.array([1e21, None]),
            "tiny": pa.array([1.5e-7, None]),
            "half": pa.array([0.5, None], pa.float32()),
            "whole": pa.array([3.0, None]),
            "count": pa.array([-42, None], pa.int64()),
            "small": pa.array([7, None], pa.uint8()),
            "at": pa.array([datetime.time(9, 30), None], pa.time32("s")),
            "category": pa.array(["gold", None]).dictionary_encode(),
            "nothing": pa.array([None, None], pa.null()),
        }
    )
    source = Source.of(write(tmp_path / "leads.parquet", table))
    (first, second) = rows(source)
    assert first == {
        "email": "a@example.com",
        "born": "1990-01-31",
        "born64": "1990-01-31",
        "paris": "2026-07-01T14:30:45+02:00",
        "kolkata": "2026-07-01T18:00:45+05:30",
        "utc": "2026-07-01T12:30:45+00:00",
        "offset": "2026-07-01T09:30:45-03:00",
        "naive": "2026-07-01T12:30:45+00:00",
        "before1970": "1969-12-31T23:59:59+00:00",
        "flag": "true",
        "off": "false",
        "price": "1234.50",
        "wide": "-0.000000000000000000000000000001",
        "big": "1000000000000000000000",
        "tiny": "0.00000015",
        "half": "0.5",
        "whole": "3",
        "count": "-42",
        "small": "7",
        "at": "09:30:00",
        "category": "gold",
        "nothing": "",
    }
    assert set(second.values()) == {""}  # nulls are empty fields


@pytest.mark.parametrize(("file_format", "delimiter"), [("csv", ","), ("tsv", "\t"), ("ssv", ";")])
def test_text_is_quoted_only_where_it_must_be(tmp_path: Path, file_format: str, delimiter: str) -> None:
    values = ["plain", "a,b", "a\tb", "a;b", 'say "hi"', "two\nlines", "cr\ronly", ""]
    table = pa.table({"email": [f"x{i}@example.com" for i in range(len(values))], "note": values})
    source = Source.of(write(tmp_path / "notes.parquet", table), file_format=file_format)
    assert [r["note"] for r in rows(source)] == values

    def field(v: str) -> str:
        needs = any(c in v for c in (delimiter, '"', "\n", "\r"))
        return '"' + v.replace('"', '""') + '"' if needs else v

    expected = "".join(f"x{i}@example.com{delimiter}{field(v)}\n" for i, v in enumerate(values))
    assert "".join(lines(source)) == expected
    assert f'x4@example.com{delimiter}"say ""hi"""\n' in expected


def test_one_column_keeps_an_empty_value_off_a_blank_line(tmp_path: Path) -> None:
    table = pa.table({"email": ["a@example.com", None, "", "b@example.com"]})
    source = Source.of(write(tmp_path / "emails.parquet", table))
    assert lines(source) == ["a@example.com\n", '""\n', '""\n', "b@example.com\n"]
    assert check(source).records == 4


def test_nan_is_refused_naming_the_column_and_row(tmp_path: Path) -> None:
    table = pa.table({"email": ["a@example.com"] * 3, "score": [1.0, 2.0, float("nan")]})
    source = Source.of(write(tmp_path / "scores.parquet", table))
    with pytest.raises(SourceError, match=r"has nan in column 'score' \(row 2\); .* write NULL"):
        check(source)


# ---- what is refused -------------------------------------------------------------------------


def test_nested_and_binary_columns_are_refused_naming_each(tmp_path: Path) -> None:
    table = pa.table(
        {
            "email": ["a@example.com"],
            "tags": pa.array([["a", "b"]]),
            "address": pa.array([{"city": "Paris"}]),
            "attributes": pa.array([[("k", "v")]], pa.map_(pa.string(), pa.string())),
            "photo": pa.array([b"\x89PNG"], pa.binary()),
            "hash": pa.array([b"0123456789abcdef"], pa.binary(16)),
            "wait": pa.array([datetime.timedelta(seconds=5)], pa.duration("s")),
        }
    )
    source = Source.of(write(tmp_path / "leads.parquet", table))
    with pytest.raises(SourceError) as caught:
        check(source)
    message = str(caught.value)
    assert message.startswith(f"import source {tmp_path}/leads.parquet has columns that cannot be imported: ")
    for name in ("tags", "address", "attributes"):
        assert f"'{name}' is nested (" in message
    for name in ("photo", "hash"):
        assert f"'{name}' is binary (" in message
    assert "'wait' is of type duration[s], which has no Marketo field type" in message
    assert "'email'" not in message


def test_columns_do_not_apply_to_parquet(tmp_path: Path) -> None:
    path = write(tmp_path / "leads.parquet", pa.table({"email": ["a@example.com"]}))
    with pytest.raises(SourceError, match="is Parquet, whose files name their columns; leave columns unset"):
        check(Source.of(path, columns=["email"]))


def test_pyarrow_missing_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "leads.parquet", pa.table({"email": ["a@example.com"]}))
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(
        SourceError,
        match=r"leads\.parquet is Parquet; reading Parquet needs pyarrow, which is not installed: "
        r"pip install 'airflow-provider-marketo\[parquet\]'",
    ):
        check(Source.of(path))


def test_a_broken_parquet_file_is_named(tmp_path: Path) -> None:
    good = write(tmp_path / "leads.parquet", pa.table({"email": ["a@example.com"] * 100}))
    (tmp_path / "broken.parquet").write_bytes(good.read_bytes()[:-30])
    with pytest.raises(SourceError, match=r"broken\.parquet is not a valid Parquet file"):
        check(Source.of(tmp_path / "broken.parquet"))


def test_mixed_folders_are_refused_either_way(tmp_path: Path) -> None:
    write(tmp_path / "a" / "part-0.parquet", pa.table({"email": ["a@example.com"]}))
    (tmp_path / "a" / "part-1.csv").write_bytes(b"email\nb@example.com\n")
    with pytest.raises(SourceError, match=r"part-1\.csv is not a Parquet file, but .* is read as Parquet"):
        check(Source.of(f"{tmp_path}/a/"))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "part-0.csv").write_bytes(b"email\nb@example.com\n")
    write(tmp_path / "b" / "part-1.parquet", pa.table({"email": ["a@example.com"]}))
    with pytest.raises(SourceError, match=r"part-1\.parquet is a Parquet file among delimited text files"):
        check(Source.of(f"{tmp_path}/b/"))


def test_every_file_needs_the_same_columns(tmp_path: Path) -> None:
    write(tmp_path / "u" / "part-0.parquet", pa.table({"email": ["a@example.com"], "n": [1]}))
    write(tmp_path / "u" / "part-1.parquet", pa.table({"email": ["b@example.com"], "m": [1]}))
    with pytest.raises(SourceError, match=r"the columns of .*part-1\.parquet differ from the first file's"):
        check(Source.of(f"{tmp_path}/u/"))


# ---- names -----------------------------------------------------------------------------------


def test_column_mapping_renames_parquet_columns(tmp_path: Path) -> None:
    table = pa.table({"EMAIL_ADDRESS": ["a@example.com"], "FIRST_NAME": ["Ann"]})
    path = write(tmp_path / "leads.parquet", table)
    source = Source.of(path, column_mapping={"EMAIL_ADDRESS": "email", "FIRST_NAME": "firstName"})
    checked = check(source)
    assert checked.header.names == ("email", "firstName") and checked.records == 1
    assert cut(source)[0][3] == b"email,firstName\na@example.com,Ann\n"
    with pytest.raises(SourceError, match=r"column_mapping names columns that .* does not have: 'EMAIL'"):
        check(Source.of(path, column_mapping={"EMAIL": "email"}))


# ---- cutting, resuming, many files -------------------------------------------------------------


def unload(folder: Path, files: int, per_file: int, row_group_size: int) -> list[str]:
    """Parquet files as an unload writes them; returns the rows' CSV lines in order."""
    expected = []
    for k in range(files):
        ids = range(k * per_file, (k + 1) * per_file)
        notes = [f"note {i}" if i % 5 else f"line one\nline {i}" for i in ids]
        table = pa.table({"email": [f"lead{i}@example.com" for i in ids], "notes": notes})
        write(folder / f"data_0_0_{k}.snappy.parquet", table, row_group_size=row_group_size)
        expected += [
            f"lead{i}@example.com,{n}\n" if "\n" not in n else f'lead{i}@example.com,"{n}"\n'
            for i, n in zip(ids, notes, strict=True)
        ]
    (folder / "_SUCCESS").write_bytes(b"")
    (folder / "empty.parquet").write_bytes(b"")  # a 0-byte file is no data
    return expected


def test_parts_cut_between_rows_across_row_groups_and_files(tmp_path: Path) -> None:
    expected = unload(tmp_path / "unload", files=3, per_file=400, row_group_size=70)
    source = Source.of(f"{tmp_path}/unload/", max_part_bytes=4000)
    checked = check(source)
    assert checked.records == 1200 and checked.header.names == ("email", "notes")
    parts = cut(source)
    assert checked.parts == len(parts) > 6
    assert all(p[3].startswith(b"email,notes\n") and len(p[3]) <= 4000 for p in parts)
    assert "".join(p[3].decode().split("\n", 1)[1] for p in parts) == "".join(expected)
    # the origins name the files and rows (from 1, the last included, as Source Line counts
    # them), across a file's end
    assert parts[0][4].startswith("data_0_0_0.snappy.parquet rows 1-")
    spanning = next(p[4] for p in parts if "; " in p[4])
    assert (
        spanning.startswith("data_0_0_0.snappy.parquet rows ")
        and "-400; data_0_0_1.snappy.parquet rows 1-" in spanning
    )


def test_resumes_after_any_part_with_the_same_parts(tmp_path: Path) -> None:
    unload(tmp_path / "unload", files=2, per_file=300, row_group_size=50)
    source = Source.of(f"{tmp_path}/unload/", max_part_bytes=3000)
    parts = cut(source)
    for k in (1, len(parts) // 2, len(parts) - 1):
        assert cut(source, resume_at=(k, parts[k - 1][2])) == parts[k:]


def test_resuming_off_a_row_boundary_says_the_source_changed(tmp_path: Path) -> None:
    unload(tmp_path / "unload", files=1, per_file=100, row_group_size=30)
    source = Source.of(f"{tmp_path}/unload/", max_part_bytes=2000)
    parts = cut(source)
    with pytest.raises(
        SourceError, match=r"changed since earlier parts were submitted: byte .* start of a row"
    ):
        cut(source, resume_at=(1, parts[0][2] - 3))
    with pytest.raises(SourceError, match="changed since earlier parts were submitted"):
        cut(source, resume_at=(99, parts[-1][2] + 10))


def test_a_row_group_is_read_in_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One large row group is converted a batch at a time, not whole."""
    from marketo_provider.sources import parquet

    monkeypatch.setattr(parquet, "BATCH_BYTES", 2000)
    unload(tmp_path / "unload", files=1, per_file=1000, row_group_size=1000)
    source = Source.of(f"{tmp_path}/unload/")
    with open_body(source) as (_, body):
        seen = []
        while body.readinto(memoryview(bytearray(1 << 20))):
            seen.append(body._current.rows)  # type: ignore[attr-defined]
    assert len(seen) > 10 and max(seen) < 200


def test_an_empty_parquet_file_has_no_parts(tmp_path: Path) -> None:
    table = pa.table({"email": pa.array([], pa.string())})
    source = Source.of(write(tmp_path / "leads.parquet", table))
    checked = check(source)
    assert checked.parts == 0 and checked.header.names == ("email",)
