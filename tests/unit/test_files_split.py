"""Cutting sources into parts: property tests over generated files, and the header rules."""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketo_provider.api import FileFormat
from marketo_provider.sources import Source, SourceError, open_body, source_parts
from marketo_provider.sources.base import DEFAULT_MAX_PART_BYTES
from marketo_provider.sources.header import Header
from marketo_provider.sources.parts import ScanReport, iter_parts, scan_source
from marketo_provider.sources.quotes import count_records

# A lone carriage return is left out: csv.writer does not quote it under an LF line ending, so
# such a file is ambiguous to every reader. CR LF inside fields is covered.
FIELD_CHARS = st.sampled_from([*list('ab ,;\t"\n€ñ中😀x1'), '""', "\r\n"])
FIELD = st.lists(FIELD_CHARS, max_size=12).map("".join)


@st.composite
def sources(draw: st.DrawFn) -> tuple[bytes, FileFormat, list[list[str]], int]:
    fmt = draw(st.sampled_from(list(FileFormat)))
    width = draw(st.integers(1, 5))
    header = [f"col{i}" for i in range(width)]
    rows = draw(st.lists(st.lists(FIELD, min_size=width, max_size=width), min_size=0, max_size=40))
    # a single empty field would be written as an empty line; keep rows non-blank
    rows = [r if any(r) or width > 1 else ["x"] for r in rows]
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=fmt.delimiter, lineterminator=ending, quoting=csv.QUOTE_MINIMAL)
    writer.writerow(header)
    writer.writerows(rows)
    data = out.getvalue().encode("utf-8")
    if draw(st.booleans()) and data.endswith(ending.encode()) and rows:
        data = data[: -len(ending)]  # no terminator after the last record
    longest = max((len(_encoded(r, fmt, ending)) for r in rows), default=0)
    limit = len(_encoded(header, fmt, ending)) + max(longest, 1) + draw(st.integers(0, 300))
    return data, fmt, [header, *rows], limit


def _encoded(row: list[str], fmt: FileFormat, ending: str) -> bytes:
    out = io.StringIO(newline="")
    csv.writer(out, delimiter=fmt.delimiter, lineterminator=ending).writerow(row)
    return out.getvalue().encode()


@contextmanager
def written(data: bytes, fmt: FileFormat | str, limit: int = DEFAULT_MAX_PART_BYTES) -> Iterator[Source]:
    """``data`` as a file, read as the operator reads a source."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "source.csv"
        path.write_bytes(data)
        yield Source.of(str(path), file_format=fmt, max_part_bytes=limit)


def cut(data: bytes, fmt: FileFormat, limit: int) -> tuple[Header, list[bytes]]:
    with written(data, fmt, limit) as source, open_body(source) as (header, body):
        return header, [bytes(p.data) for p in iter_parts(body, header, max_part_bytes=limit)]


def scan(data: bytes, fmt: FileFormat | str, limit: int = DEFAULT_MAX_PART_BYTES) -> ScanReport:
    with written(data, fmt, limit) as source, open_body(source) as (header, body):
        return scan_source(body, header, max_part_bytes=limit)


def header_of(data: bytes, fmt: FileFormat | str) -> Header:
    with written(data, fmt) as source, open_body(source) as (header, _):
        return header


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sources())
def test_parts_rejoin_to_the_source_and_parse_whole(
    case: tuple[bytes, FileFormat, list[list[str]], int],
) -> None:
    data, fmt, records, limit = case
    header, parts = cut(data, fmt, limit)
    assert all(p.startswith(header.line) for p in parts)
    assert header.line + b"".join(p[len(header.line) :] for p in parts) == data
    assert all(len(p) <= limit for p in parts)
    width = len(records[0])
    parsed: list[list[str]] = []
    for part in parts:
        rows = list(
            csv.reader(io.StringIO(part.decode("utf-8"), newline=""), delimiter=fmt.delimiter, strict=True)
        )
        assert rows[0] == records[0]
        assert rows[1:] and all(len(r) == width for r in rows[1:])
        parsed.extend(rows[1:])
    assert parsed == records[1:]
    # the pre-flight scan agrees on the number of parts
    assert scan(data, fmt, limit).parts == len(parts)


def test_large_blocks_many_parts() -> None:
    row = 'a@example.com,"multi\nline, ""quoted""",€uro\r\n'.encode()
    data = b"email,notes,other\r\n" + row * 50_000
    header, parts = cut(data, FileFormat.CSV, 100_000)
    assert len(parts) == len(data) // 100_000 + 1
    assert b"".join(p[len(header.line) :] for p in parts) == data[len(header.line) :]
    assert all(p.endswith(b"\r\n") for p in parts)


def test_bom_is_removed_from_the_header() -> None:
    header, parts = cut("\ufeffemail,firstName\na@example.com,A\n".encode(), FileFormat.CSV, 1000)
    assert header.names == ("email", "firstName") and parts == [b"email,firstName\na@example.com,A\n"]


def test_header_only_source_has_no_parts() -> None:
    assert cut(b"email,firstName\n", FileFormat.CSV, 1000)[1] == []
    assert cut(b"email,firstName", FileFormat.CSV, 1000)[1] == []
    assert cut(b"email\n\n\n", FileFormat.CSV, 1000)[1] == []


def test_quoted_header_names() -> None:
    header, _ = cut(b'"email","first,Name"\na@example.com,x\n', FileFormat.CSV, 1000)
    assert header.names == ("email", "first,Name")


@pytest.mark.parametrize(
    ("data", "fmt", "message"),
    [
        (b"", "csv", "is empty"),
        (b"\n\n", "csv", "is empty"),
        (b"\nemail\na@example.com\n", "csv", "first line of .*source.csv is blank"),
        (b"email,,lastName\n", "csv", "empty column names (column 2)"),
        (b"email,email\n", "csv", "more than once: email"),
        (b" vin,make\n", "csv", "leading or trailing spaces: ' vin'"),
        (b"email \n", "csv", "leading or trailing spaces"),
        (b"email\tfirstName\n", "csv", "looks tab-separated"),
        (b"email;firstName\n", "csv", "set file_format='ssv'"),
        (b"email,firstName\n", "tsv", "set file_format='csv'"),
        (b'email,"first\n', "csv", "unterminated quote"),
        (b"em\xe9il,name\n", "csv", "not UTF-8"),
    ],
)
def test_bad_headers(data: bytes, fmt: str, message: str) -> None:
    with pytest.raises(SourceError, match=message.replace("(", r"\(").replace(")", r"\)")):
        header_of(data, fmt)


def test_not_utf8_says_where() -> None:
    data = b"email,name\n" + b"a@example.com,Ann\n" * 1000 + b"b@example.com,Jos\xe9\n"
    with pytest.raises(SourceError, match="not UTF-8: line 1002"):
        scan(data, "csv", 4000)


def test_utf8_sequence_split_across_reads_is_fine() -> None:
    data = b"email,name\n" + "a@example.com,€€€€€€€€\n".encode() * 3000
    assert scan(data, "csv", 5001).parts > 10


def test_unterminated_quote_says_near_which_record() -> None:
    data = b"email,notes\n" + b"a@example.com,fine\n" * 10 + b'b@example.com,"never closed\nc@example.com,x\n'
    with pytest.raises(SourceError, match="unterminated quote in the record starting on line 12"):
        scan(data, "csv")


def test_record_larger_than_a_part() -> None:
    data = b"email,notes\n" + b"a@example.com,short\n" + b'b@example.com,"' + b"x" * 5000 + b'"\n'
    with pytest.raises(SourceError, match="record starting on line 3 runs past 2,000 bytes"):
        scan(data, "csv", 2000)


def test_part_limit_cannot_exceed_marketos() -> None:
    with (
        pytest.raises(ValueError, match="under 10,000,000"),
        written(b"email\na@example.com\n", "csv", 10_000_001),
    ):
        pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sources())
def test_records_are_counted_not_lines(case: tuple[bytes, FileFormat, list[list[str]], int]) -> None:
    data, fmt, records, limit = case
    header = header_of(data, fmt)
    body = data[len(header.line) :]
    unterminated = 1 if body.strip(b"\r\n") and not body.endswith(b"\n") else 0
    assert count_records(body, 0, len(body), step=7) + unterminated == len(records) - 1
    assert scan(data, fmt, limit).records == len(records) - 1


PACK = {"plain": lambda b: b, "gzip": gzip.compress, "bzip2": bz2.compress, "xz": lzma.compress}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sources(), st.data())
def test_many_compressed_files_cut_like_one(
    case: tuple[bytes, FileFormat, list[list[str]], int], data: st.DataObject
) -> None:
    """Records spread over files (some compressed, some empty, with or without a header line)
    come out once each, in order, and a resume from any part gives the same parts."""
    _, fmt, records, limit = case
    header, rows = records[0], records[1:]
    cuts = sorted(data.draw(st.lists(st.integers(0, len(rows)), max_size=4)))
    groups = [rows[a:b] for a, b in zip([0, *cuts], [*cuts, len(rows)], strict=True)]
    headerless = data.draw(st.booleans())
    with tempfile.TemporaryDirectory() as folder:
        for i, group in enumerate(groups):
            text = io.StringIO(newline="")
            writer = csv.writer(text, delimiter=fmt.delimiter, lineterminator="\n")
            if not headerless:
                writer.writerow(header)
            writer.writerows(group)
            content = text.getvalue().encode()
            if data.draw(st.booleans()) and content.endswith(b"\n") and group:
                content = content[:-1]
            pack = data.draw(st.sampled_from(sorted(PACK)))
            Path(folder, f"{i:02d}.{pack}").write_bytes(PACK[pack](content))
        source = Source.of(
            folder + "/",
            file_format=fmt,
            columns=header if headerless else None,
            max_part_bytes=limit + 2,
        )
        if headerless and all(not g for g in groups):
            with source_parts(source) as parts:
                assert list(parts) == []
            return
        with source_parts(source) as parts:
            full = [(p.source_start, bytes(p.data)) for p in parts]
        parsed: list[list[str]] = []
        for _, part in full:
            got = list(
                csv.reader(io.StringIO(part.decode(), newline=""), delimiter=fmt.delimiter, strict=True)
            )
            assert got[0] == header
            parsed += got[1:]
        assert parsed == rows
        if full:
            k = data.draw(st.integers(0, len(full) - 1))
            with source_parts(source, resume_at=(k, full[k][0])) as parts:
                assert [(p.source_start, bytes(p.data)) for p in parts] == full[k:]


# ---- quote checking: one linear pass, the same answers as RFC 4180's grammar ----------------------


def _grammar_stray(data: bytes, delimiter: str) -> int | None:
    """The first quote RFC 4180's grammar does not allow, found the slow way: a regular expression
    per record (backtracks; fine for the short data here), the reference :class:`QuoteCheck` must
    agree with."""
    import re

    d = re.escape(delimiter.encode())
    field = rb'(?:"(?:[^"]|"")*"|[^"' + d + rb"\r\n]*)"
    record = re.compile(field + rb"(?:" + d + field + rb")*\r?(?:\n|\Z)")
    pos = 0
    while pos < len(data):
        m = record.match(data, pos)
        if m is not None and m.end() > pos and (m.end() == len(data) or data[m.end() - 1 : m.end()] == b"\n"):
            pos = m.end()
            continue
        # the first bad quote of this record: walk it field by field
        i = pos
        while i < len(data):
            if data[i : i + 1] == b'"':
                k = i + 1
                while True:
                    k = data.find(b'"', k)
                    if k < 0:
                        return None  # still open at the end
                    if data[k + 1 : k + 2] == b'"':
                        k += 2
                        continue
                    break
                i = k + 1
                if i < len(data) and data[i : i + 1] not in (delimiter.encode(), b"\r", b"\n"):
                    return k
            else:
                ends = [e for e in (data.find(delimiter.encode(), i), data.find(b"\n", i)) if e >= 0]
                end = min(ends) if ends else len(data)
                q = data.find(b'"', i, end)
                if q >= 0:
                    return q
                i = end
            if i >= len(data) or data[i : i + 1] == b"\n":
                return None
            i += 1
    return None


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from([b"a", b",", b'"', b"\n", b"\r\n", b'""']), max_size=40))
def test_quote_check_agrees_with_the_grammar(pieces: list[bytes]) -> None:
    from marketo_provider.sources.quotes import stray_quote

    data = b"".join(pieces)
    assert stray_quote(data, ",") == _grammar_stray(data, ",")


def test_quote_check_carries_on_where_it_stopped() -> None:
    from marketo_provider.sources.quotes import QuoteCheck

    data = b'ann@example.com,"' + b"x" * (3 * 1024 * 1024) + b'"\nbob@example.com,"a ""b"""\n'
    check = QuoteCheck(",")
    for end in range(1000, len(data) + 65_536, 65_536):  # fed a block at a time, as a file is read
        assert check.run(data[:end], final=end >= len(data)) is None
    assert not check.inside and (check.record_start, check.line) == (len(data), 3)
