"""A part's records read a chunk (about 128 KiB) at a time, a column at a time: a chunk without quotes
is split in C straight into columns; others are read with the csv module. The checks and the ledger
read records this way."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from marketo_provider.api.fields import Problem
from marketo_provider.sources.base import NEWLINE, QUOTE
from marketo_provider.sources.fingerprints import SEP
from marketo_provider.sources.parts import Part
from marketo_provider.sources.quotes import last_boundary

if TYPE_CHECKING:
    from marketo_provider.sources.checks import RowRules

# Records read and checked at a time: the values of a chunk stay in the processor's cache while
# they are checked and hashed (a MiB at a time was slower by a tenth).
CHUNK_BYTES = 128 * 1024


class Columns(list[tuple[str, ...]]):
    """A chunk's values a column at a time, split from ``text``, its records a line each, their
    values between ``delimiter`` (when known): then what each record's values' hash is of is cut
    from the text in C, and bounds the length of every value."""

    def __init__(
        self, columns: Iterable[tuple[str, ...]], text: str | None = None, delimiter: str = ","
    ) -> None:
        super().__init__(columns)
        self._text = text
        self._delimiter = delimiter
        self._records: list[bytes] | None = None

    @property
    def plain(self) -> bool:
        """The records are known a line each (then no value holds a line break)."""
        return self._text is not None

    @property
    def records(self) -> list[bytes] | None:
        """Each record's values joined by :data:`SEP`, UTF-8 (what its values' hash is of), found
        once, when asked for (None: not known)."""
        if self._records is None and self._text is not None:
            self._records = utf8_lines(self._text.replace(self._delimiter, SEP))
        return self._records

    @property
    def longest(self) -> int | None:
        """No value is longer (in characters) than this: the longest record, in bytes (None: not
        known)."""
        records = self.records
        return max(map(len, records)) if records is not None else None


def _columns_of_plain(chunk: str, delimiter: str, width: int) -> tuple[Columns, int] | None:
    """The columns of whole records without quotes, split in C; None when a record is blank or of
    another width (the csv module then reads them)."""
    body = chunk[:-2] if chunk.endswith("\r\n") else chunk[:-1] if chunk.endswith("\n") else chunk
    if "\r" in body:
        body = body.replace("\r\n", "\n")
        if "\r" in body:
            return None
    if not body:
        return None
    n = body.count("\n") + 1
    # Each line break becomes a value of its own ("\n", which no value of a plain record holds):
    # every record has ``width`` values when there are as many values in all and every line break
    # comes right after a record's last value.
    flat = body.replace("\n", f"{delimiter}\n{delimiter}").split(delimiter)
    step = width + 1
    if len(flat) != n * step - 1 or flat[width::step].count("\n") != n - 1:
        return None
    return Columns((tuple(flat[c::step]) for c in range(width)), body, delimiter), n


@dataclass
class Chunk:
    """About 128 KiB of a part's whole records, a column at a time."""

    columns: list[tuple[str, ...]]
    found: dict[int, Problem]  # rows of another width
    blank: Sequence[int]  # blank lines (no rows)
    starts: Sequence[int]  # the part-relative line each record starts on
    index: int  # the part-relative index of the first record
    n: int  # records
    rows: list[list[str]] | None = None  # the records as read, when read with the csv module


def record_chunks(part: Part, rules: RowRules) -> Iterator[Chunk]:
    """The records of a part a chunk at a time: a chunk without quotes is split in C straight into
    columns; others are read with the csv module."""
    raw: Any = part.data.obj
    start = part.header_len
    stop = len(part.data)
    line = 0
    index = 0
    width = len(rules.fields)
    while start < stop:
        limit = min(stop, start + CHUNK_BYTES)
        last = raw.rfind(NEWLINE, start, limit)
        # Without a quote, the records end at the last line break (found in C, as memchr finds it).
        quoted = last < 0 or raw.find(QUOTE, start, limit if limit == stop else last) >= 0
        end = last_boundary(raw, start, limit) if quoted else last + 1
        if end == start:
            end = stop
            quoted = raw.find(QUOTE, start, end) >= 0
        with memoryview(raw)[start:end] as view:  # decoded without a copy
            chunk = str(view, "utf-8", "replace")
        flat = None if quoted else _columns_of_plain(chunk, rules.delimiter, width)
        if flat is not None:
            plain, n = flat
            yield Chunk(plain, {}, [], range(line, line + n), index, n)
            line += n  # no quotes: a record a line
            index += n
            start = end
            continue
        else:
            reader = csv.reader(io.StringIO(chunk, newline=""), delimiter=rules.delimiter)
            rows = list(reader)
            n = len(rows)
            starts = range(line, line + n) if reader.line_num == n else _starts(rows, line)
            columns, found = rules.columns(rows)
            yield Chunk(columns, found, [i for i, row in enumerate(rows) if not row], starts, index, n, rows)
        line += raw.count(NEWLINE, start, end)
        index += n
        start = end


def utf8_lines(text: str) -> list[bytes]:
    """The lines of ``text`` (without their line breaks), each UTF-8, cut in C."""
    return text.encode("utf-8", "surrogatepass").split(b"\n")


def utf8_each(texts: Sequence[str], *, one_line: bool = False) -> list[bytes]:
    """Each of ``texts``, UTF-8: joined, encoded and cut again in C when none holds a line break
    (``one_line``: the caller knows none does)."""
    joined = "\n".join(texts)
    if texts and (one_line or joined.count("\n") == len(texts) - 1):
        return utf8_lines(joined)
    return [t.encode("utf-8", "surrogatepass") for t in texts]


def records_utf8(chunk: Chunk) -> list[bytes]:
    """Each record's values joined by :data:`SEP`, UTF-8: what its values' hash is of (a blank line
    has no values)."""
    columns = chunk.columns
    if isinstance(columns, Columns):
        found = columns.records
        if found is not None:
            return found
    rows = chunk.rows if chunk.rows is not None else list(zip(*columns, strict=True))
    return utf8_each([SEP.join(r) for r in rows])


def key_column(columns: list[tuple[str, ...]], rules: RowRules) -> Sequence[str]:
    """Each row's key as one text ("" when a part of it is empty)."""
    if len(rules.keys) == 1:
        return columns[rules.keys[0]]
    return ["\x1f".join(k) if all(k) else "" for k in zip(*(columns[c] for c in rules.keys), strict=True)]


def _starts(rows: Sequence[Sequence[str]], line: int) -> list[int]:
    """The line each row starts on, for rows some of whose quoted values hold line breaks."""
    starts = []
    for row in rows:
        starts.append(line)
        line += 1 + sum(v.count("\n") for v in row)  # lines end at a line feed, as the cut counts them
    return starts
