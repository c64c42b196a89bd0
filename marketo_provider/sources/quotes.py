"""Quote-aware record boundaries (RFC 4180: quotes stay paired, so a line break ends a record when
an even number of quotes precedes it), found in C-speed passes over whole blocks, and on the error
path the record to blame for a quote that does not close or does not belong."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from marketo_provider.sources.base import NEWLINE, OUT_CHUNK, QUOTE, SourceError, Where, line_at, snippet
from marketo_provider.sources.content import open_content
from marketo_provider.sources.listing import SourceFile


def record_end(data: bytes | bytearray, start: int = 0) -> int:
    """Index just past the first record boundary at or after ``start`` (data starts on a boundary),
    or -1 when the data holds no complete record."""
    pos = start
    quotes = 0
    while True:
        nl = data.find(NEWLINE, pos)
        if nl < 0:
            return -1
        quotes += data.count(QUOTE, pos, nl)
        if quotes % 2 == 0:
            return nl + 1
        pos = nl + 1


def last_boundary(window: bytes | bytearray, start: int, limit: int) -> int:
    """The end of the last whole record within ``window[start:limit]`` (``start`` is a record
    boundary), or ``start`` if there is none. Quotes are counted once up to the last newline, then
    the count is adjusted while stepping back over newlines that sit inside quoted fields."""
    nl = window.rfind(NEWLINE, start, limit)
    if nl < 0:
        return start
    quotes = window.count(QUOTE, start, nl)
    while quotes % 2:
        prev = window.rfind(NEWLINE, start, nl)
        if prev < 0:
            return start
        quotes -= window.count(QUOTE, prev, nl)
        nl = prev
    return nl + 1


# Every byte but the quote and the line feed: what ``bytes.translate`` deletes to count records.
_NOT_QUOTE_OR_NEWLINE = bytes(b for b in range(256) if b not in (QUOTE[0], NEWLINE[0]))


def count_records(window: bytes | bytearray, start: int, end: int, step: int = 1024 * 1024) -> int:
    """Line breaks outside quoted fields in ``window[start:end]`` (which starts on a record
    boundary), in C-speed passes: keep only quotes and line feeds, drop adjacent quote pairs
    (they never change whether a line feed is inside quotes), and count the line feeds between
    the quotes that remain, which are few (one pair per field that holds a line break)."""
    if window.find(QUOTE, start, end) < 0:
        return window.count(NEWLINE, start, end)
    records = 0
    inside = False
    for at in range(start, end, step):
        compact = window[at : min(end, at + step)].translate(None, _NOT_QUOTE_OR_NEWLINE)
        while b'""' in compact:
            compact = compact.replace(b'""', b"")
        if QUOTE not in compact:
            if not inside:
                records += len(compact)
            continue
        pieces = compact.split(QUOTE)
        for i, piece in enumerate(pieces):
            if inside == bool(i % 2):
                records += len(piece)
        inside ^= bool((len(pieces) - 1) % 2)
    return records


class QuoteCheck:
    """RFC 4180 quoting checked in one pass, in linear time: a quote opens a quoted field only at a
    field's start, and a closing quote is followed by a delimiter or the end of the line. Jumps from
    quote to quote with ``bytes.find`` (C speed); a record without quotes costs one search.

    Fed data that grows (a file read block by block), :meth:`run` carries on where it stopped, so
    nothing is scanned twice; the caller may drop the bytes before :attr:`record_start`."""

    def __init__(self, delimiter: str) -> None:
        self.delim = delimiter.encode()
        self.record_start = 0  # where the record in progress starts
        self.line = 1  # the line it starts on (counting from the first record given)
        self.pos = 0  # where scanning resumes
        self.inside = False  # whether ``pos`` is inside a quoted field

    def run(self, data: bytes | bytearray, *, final: bool) -> int | None:
        """Scan ``data`` (the same bytes as before, possibly longer) to its end: the index of the
        first stray quote, or None when every quote so far is well placed (a quoted field may still
        be open: :attr:`inside`)."""
        n = len(data)
        delim = self.delim
        while True:
            if self.inside:
                k = data.find(QUOTE, self.pos)
                if k < 0 or (k == n - 1 and not final):  # the quote may be the first of a pair
                    self.pos = n if k < 0 else k
                    return None
                if data[k + 1 : k + 2] == QUOTE:
                    self.pos = k + 2
                    continue
                if data[k + 1 : k + 2] not in (delim, b"\r", NEWLINE, b""):
                    return k  # text right after a closing quote
                self.inside = False
                self.pos = k + 1
                continue
            q = data.find(QUOTE, self.pos)
            nl = data.rfind(NEWLINE, self.pos, n if q < 0 else q)
            if nl >= 0:
                self.line += data.count(NEWLINE, self.record_start, nl + 1)
                self.record_start = nl + 1
            if q < 0:
                self.pos = n
                return None
            if q != self.record_start and data[q - len(delim) : q] != delim:
                return q  # a quote inside an unquoted field
            self.inside = True
            self.pos = q + 1

    def rebase(self, dropped: int) -> None:
        """The caller dropped ``dropped`` bytes from the start of the data."""
        self.record_start -= dropped
        self.pos -= dropped


def stray_quote(data: bytes, delimiter: str) -> int | None:
    """The index of the first quote in ``data`` (which starts on a record boundary) that RFC 4180
    does not allow: inside an unquoted field, or right after a closing quote. None when every
    quote up to the end of the data is well placed (a quoted field may still be open at the end)."""
    return QuoteCheck(delimiter).run(data, final=False)


def record_too_long(name: str, where: str, max_part_bytes: int, head: bytes) -> SourceError:
    return SourceError(
        f"import source {name}: the record starting on {where} runs past {max_part_bytes:,} bytes without "
        f"ending ({snippet(head)!r}). A record must fit in one part; most often a quote is not closed in "
        "that record."
    )


def scan_quotes(file: SourceFile, delimiter: str, max_record_bytes: int) -> SourceError | None:
    """Read a file again (error path) from its start and blame the first record that breaks RFC
    4180 quoting (a stray quote, or a quote that never closes) or that runs past
    ``max_record_bytes`` (it could not fit in a part). None when its quoting is sound. Linear
    time; memory stays under one record of that size and a block."""
    check = QuoteCheck(delimiter)
    content = open_content(file)
    try:
        buf = content.first
        eof = False
        while True:
            stray = check.run(buf, final=eof)
            if stray is not None:
                at = check.line + buf.count(NEWLINE, check.record_start, stray)
                record = f" (in the record starting on line {check.line})" if at != check.line else ""
                return SourceError(
                    f"import source {file.name} has a stray quote in a field on line {at}{record}: "
                    f"{snippet(line_at(buf, stray))!r}. Quote the whole field and double the quote inside it "
                    '("5"" screen"), or remove the quote.'
                )
            if len(buf) - check.record_start > max_record_bytes:
                return record_too_long(
                    file.name, f"line {check.line}", max_record_bytes, buf[check.record_start :]
                )
            if eof:
                if check.inside:
                    return SourceError(
                        f"import source {file.name} has an unterminated quote in the record starting on line "
                        f"{check.line}: {snippet(buf[check.record_start :])!r}. Close the quote or double the "
                        "quote character inside the field."
                    )
                return None
            more = content.stream.read(OUT_CHUNK)
            eof = not more
            dropped = check.record_start
            buf = buf[dropped:] + more
            check.rebase(dropped)
    finally:
        content.close()


def stray_quote_error(
    data: bytes, at: int, base: int, name: str, where: Callable[[int], Where]
) -> SourceError:
    w = where(base + at)
    return SourceError(
        f"import source {name} has a stray quote in a field on {w.prefix}line {w.line}: "
        f"{snippet(line_at(data, at))!r}. Quote the whole field and double the quote inside it "
        '("5"" screen"), or remove the quote.'
    )


def quote_error(
    tail: bytes, base: int, delimiter: str, name: str, where: Callable[[int], Where]
) -> SourceError:
    """The body ends inside quotes: blame a stray quote when there is one, else the record whose
    quote never closes (error path only)."""
    stray = stray_quote(tail, delimiter)
    if stray is not None:
        return stray_quote_error(tail, stray, base, name, where)
    start = last_boundary(tail, 0, len(tail))
    w = where(base + start)
    return SourceError(
        f"import source {name} has an unterminated quote in the record starting on {w.prefix}line {w.line}: "
        f"{snippet(tail[start:])!r}. Close the quote or double the quote character inside the field."
    )


def no_boundary(
    head: bytes, base: int, max_part_bytes: int, delimiter: str, name: str, where: Callable[[int], Where]
) -> SourceError:
    stray = stray_quote(head, delimiter)
    if stray is not None:
        return stray_quote_error(head, stray, base, name, where)
    w = where(base)
    return record_too_long(name, f"{w.prefix}line {w.line}", max_part_bytes, head)


_LONE_CR = re.compile(rb"\r(?!\n)")


def lone_carriage_return(
    data: Any, start: int, end: int, name: str, where: Callable[[int], Where]
) -> SourceError | None:
    """A carriage return without a line feed outside quotes in ``data[start:end]`` (whole records):
    RFC 4180 allows one only inside a quoted value, and CSV readers (Python's, Marketo's sandbox)
    end the row there while the cut does not; found in C, checked only where one is found."""
    quotes, counted = 0, start  # quotes before ``counted``, counted once over the whole span
    for found in _LONE_CR.finditer(data, start, end):
        at = found.start()
        quotes += data.count(QUOTE, counted, at)
        counted = at
        if quotes % 2 == 0:  # outside quotes: records start outside them
            w = where(at)
            return SourceError(
                f"import source {name} has a carriage return without a line feed outside quotes on "
                f"{w.prefix}line {w.line}: {snippet(bytes(data[max(start, at - 40) : min(end, at + 40)]))!r}. CSV readers "
                "end the row there; quote the value that holds it, or remove it"
            )
    return None
