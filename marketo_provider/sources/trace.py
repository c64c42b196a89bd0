"""Marketo's failures and warnings traced back to the source: each row of a batch's result file is
matched to a record of the part that became the batch, and so to its file and line (a query: its
row).

Marketo's result files echo the rows of one part as they were uploaded, and the import knows each
part's range of the source. The tracer walks the source again from its start through the same
stages, without sending anything: it counts lines as it goes (C-speed, whole parts at a time) and
parses only the records of the parts asked about, one part at a time, so memory stays at about a
part whatever the source's size. With records left out (``on_invalid_rows="skip"``,
``on_repeated_keys="keep_last"``) it leaves out the same records, so offsets line up with what was
sent.
"""

from __future__ import annotations

import csv
import io
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from typing import Any

from marketo_provider.sources.base import NEWLINE, Closing
from marketo_provider.sources.model import AnySource
from marketo_provider.sources.parts import Part
from marketo_provider.sources.preflight import source_parts
from marketo_provider.sources.quotes import record_end
from marketo_provider.sources.records import LineTracker, Location, part_rows

Finder = Callable[[Sequence[str]], Location | None]


class RecordTracer(Closing):
    """Where the records sent in each part came from. Ask for parts in increasing order.

    :param source: the resolved source, as the import read it.
    :param delimiter: the import's delimiter.
    :param header: the names the parts were sent with (the import's state keeps them).
    :param dropped: the ordinals (from 0, in order) of records left out of what was sent, if any.
    """

    def __init__(
        self,
        source: AnySource,
        delimiter: str,
        *,
        header: Sequence[str] | None = None,
        dropped: Iterator[int] | None = None,
    ) -> None:
        self._stack = ExitStack()
        self._parts: Iterator[Part] = self._stack.enter_context(source_parts(source, expected_header=header))
        self._delimiter = delimiter
        self._lines = LineTracker()
        self._dropped = dropped
        self._next_drop = next(dropped, None) if dropped is not None else None
        self._ordinal = 0
        self._sent_at = 0  # offset, in what was sent, of the next record
        self._pending: deque[tuple[int, list[str], Location | None]] = deque()  # (sent offset, fields, place)

    def close(self) -> None:
        self._stack.close()

    def finder(self, start: int, end: int) -> Finder:
        """A function from a result file row's values (its reason column removed) to the place of
        the record it echoes, among the records of the part of bytes ``start``..``end`` of what
        was sent."""
        records: dict[tuple[str, ...], deque[Location | None]] = {}
        for offset, row, where in self._sent_records(start, end):
            if start <= offset and row:
                records.setdefault(tuple(row), deque()).append(where)

        def find(values: Sequence[str]) -> Location | None:
            found = records.get(tuple(values))
            return found.popleft() if found else None

        return find

    def _sent_records(self, start: int, end: int) -> Iterator[tuple[int, list[str], Location | None]]:
        """Records sent before offset ``end``, with their offsets, from the last one yielded on.
        Parts wholly before ``start`` are only counted (lines; records, when some were left out)."""
        while True:
            while self._pending:
                if self._pending[0][0] >= end:
                    return
                yield self._pending.popleft()
            part = next(self._parts, None)
            if part is None:
                return
            if self._dropped is None and part.source_end <= start:
                self._lines.lines(part)
                self._sent_at = part.source_end
                continue
            self._read(part)

    def _read(self, part: Part) -> None:
        lines = self._lines.lines(part)
        data = bytes(part.data[part.header_len :])
        bounds = []
        at = 0
        while at < len(data):
            stop = record_end(data, at)
            stop = len(data) if stop < 0 else stop
            bounds.append((at, stop))
            at = stop
        rows = list(part_rows(part, self._delimiter))
        if len(rows) != len(bounds):  # a lone CR read as a line break: parse record by record
            rows = []
            line = 0
            for a, b in bounds:
                text = data[a:b].decode("utf-8", "replace")
                fields = next(csv.reader(io.StringIO(text, newline=""), delimiter=self._delimiter), [])
                rows.append((line, fields))
                line += data.count(NEWLINE, a, b)
        for i, ((a, b), (line, row)) in enumerate(zip(bounds, rows, strict=True)):
            ordinal = self._ordinal + i
            if ordinal == self._next_drop:
                assert self._dropped is not None
                self._next_drop = next(self._dropped, None)
                continue
            self._pending.append((self._sent_at, row, lines.locate(line, i)))
            self._sent_at += b - a
        self._ordinal += len(bounds)


def trace_columns() -> tuple[str, str]:
    """The columns the merged failures and warnings files gain, before the reason."""
    return ("Source", "Source Line")


def place_of(found: Any) -> tuple[str, str]:
    """The values of :func:`trace_columns` for a found place (empty when not found)."""
    if found is None:
        return ("", "")
    return (found.name, str(found.line))
