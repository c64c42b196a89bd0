"""A part's records read a chunk (about a MiB) at a time, a column at a time: a chunk without quotes
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
from marketo_provider.sources.parts import Part
from marketo_provider.sources.quotes import last_boundary

if TYPE_CHECKING:
    from marketo_provider.sources.checks import RowRules

CHUNK_BYTES = 1024 * 1024  # records read and checked at a time


class Columns(list[tuple[str, ...]]):
    """A chunk's values a column at a time, split from ``text``, its records a line each (when
    known): no value is longer than its longest line."""

    def __init__(self, columns: Iterable[tuple[str, ...]], text: str | None = None) -> None:
        super().__init__(columns)
        self._text = text
        self._longest: int | None = None

    @property
    def longest(self) -> int | None:
        """The length of the longest line, found once, when asked for (None: not known)."""
        if self._longest is None and self._text is not None:
            self._longest = max(map(len, self._text.split("\n")))
        return self._longest


def _columns_of_plain(chunk: str, delimiter: str, width: int) -> tuple[Columns, int] | None:
    """The columns of whole records without quotes, split in C; None when a record is blank or of
    another width (the csv module then reads them)."""
    body = chunk[:-2] if chunk.endswith("\r\n") else chunk[:-1] if chunk.endswith("\n") else chunk
    if "\r" in body:
        body = body.replace("\r\n", "\n")
        if "\r" in body:
            return None
    n = body.count("\n") + 1
    flat = body.replace("\n", delimiter).split(delimiter)
    if len(flat) != n * width or not body:
        return None
    return Columns((tuple(flat[c::width]) for c in range(width)), body), n


@dataclass
class Chunk:
    """About a MiB of a part's whole records, a column at a time."""

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
        line += 1 + sum(v.count("\n") + v.count("\r") - v.count("\r\n") for v in row)
    return starts
