"""Records with their place in the source: the file (or query) and the line a record starts on.

Parts are cut in order from the start of a source, and each knows the pieces of files it holds
(:class:`~marketo_provider.sources.base.Piece`); :class:`LineTracker` follows them and says, for
each record of a part, where it starts. The checks of values and the tracing of Marketo's failures
back to the source both read records this way.
"""

from __future__ import annotations

import csv
import io
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from marketo_provider.sources.base import NEWLINE, Piece
from marketo_provider.sources.parts import Part
from marketo_provider.sources.quotes import count_records


@dataclass(frozen=True)
class Location:
    """Where a record starts: a file and its line, or a query and its row (from 1)."""

    name: str
    line: int
    rows: bool = False

    def __str__(self) -> str:
        return f"{self.name}, {'row' if self.rows else 'line'} {self.line}"


@dataclass(frozen=True)
class _Span:
    first: int  # the part-relative line (0-based, in the part's records) of the piece's first byte
    piece: Piece
    file_line: int  # the line of the file (or row of the query) the piece's first byte is on


class PartLines:
    """Maps a record's part-relative line (0-based, counted in the part's records) to its place."""

    def __init__(self, spans: list[_Span]) -> None:
        self._spans = spans

    def locate(self, line: int, record: int | None = None) -> Location | None:
        """The place of the record that starts on part-relative ``line`` (``record``: its index in
        the part, for a query's rows)."""
        span = None
        for s in self._spans:
            if s.first <= line:
                span = s
            else:
                break
        if span is None:
            return None
        if span.piece.rows:
            return Location(span.piece.name, span.file_line + (record or 0), rows=True)
        return Location(span.piece.name, span.file_line + line - span.first)

    def places(self, starts: Sequence[int], first_record: int) -> Places:
        """:meth:`locate` for a run of records at once: ``starts`` are their part-relative lines (in
        increasing order), ``first_record`` the index in the part of the first of them."""
        spans = self._spans
        files = [(s.piece.name, s.piece.rows) for s in spans]
        n = len(starts)
        if not spans:
            return Places([("", False)], [0] * n, [0] * n)
        if len(spans) == 1:  # one file (most parts): the lines follow from the starts at once
            span = spans[0]
            if span.piece.rows:
                base = span.file_line + first_record
                return Places(files, [0] * n, range(base, base + n))
            shift = span.file_line - span.first
            if isinstance(starts, range):
                return Places(files, [0] * n, range(starts.start + shift, starts.stop + shift))
            return Places(files, [0] * n, [v + shift for v in starts])
        file_of: list[int] = []
        lines: list[int] = []
        # The records each span holds: those starting on or after its first line, before the next's.
        cuts = [bisect_left(starts, s.first) for s in spans[1:]] + [n]
        begin = 0
        for i, (span, stop) in enumerate(zip(spans, cuts, strict=True)):
            if i == 0:
                begin = 0
            if stop <= begin:
                continue
            file_of.extend([i] * (stop - begin))
            if span.piece.rows:
                base = span.file_line + first_record
                lines.extend(range(base + begin, base + stop))
            else:
                shift = span.file_line - span.first
                lines.extend(v + shift for v in starts[begin:stop])
            begin = stop
        return Places(files, file_of, lines)


@dataclass(frozen=True)
class Places:
    """Where each of a run of records starts: ``files`` (name, whether it counts rows) of the part,
    ``file_of`` the index into ``files`` of each record, ``lines`` its line (or row)."""

    files: list[tuple[str, bool]]
    file_of: list[int]
    lines: Sequence[int]


class LineTracker:
    """Follows parts cut in order from the start of a source (none skipped) and says where their
    records start: the line of each file (or row of a query) the next byte is on is kept."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}

    def lines(self, part: Part) -> PartLines:
        """Where the records of ``part``, the next part of the source, start."""
        spans: list[_Span] = []
        raw: Any = part.data.obj  # the cutter's buffer; a part's view starts at its first byte
        base = part.header_len
        first, counted_to = 0, base  # lines before each piece, counted once over the part
        for piece in part.pieces:
            a = base + piece.start - part.source_start
            b = base + piece.end - part.source_start
            first += raw.count(NEWLINE, counted_to, a)
            counted_to = a
            if piece.rows:
                start = self._next.get(piece.name, 1)
                self._next[piece.name] = start + _records_in(raw, a, b)
            else:
                start = self._next.get(piece.name, 1 + piece.header_lines)
                self._next[piece.name] = start + raw.count(NEWLINE, a, b)
            spans.append(_Span(first, piece, start))
        return PartLines(spans)


def _records_in(raw: Any, start: int, end: int) -> int:
    records = count_records(raw, start, end)
    if end > start and raw[end - 1] != NEWLINE[0]:
        records += 1
    return records


def part_rows(part: Part, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """The records of a part as ``(part-relative line the record starts on, fields)``; a blank
    line is a record without fields."""
    text = bytes(part.data[part.header_len :]).decode("utf-8", "replace")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    line = 0
    for row in reader:
        yield line, row
        line = reader.line_num
