"""Quote-aware record boundaries (RFC 4180: quotes stay paired, so a line break ends a record when
an even number of quotes precedes it), found in C-speed passes over whole blocks, and on the error
path the record to blame for a quote that does not close or does not belong."""

from __future__ import annotations

import re
from collections.abc import Callable

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


def stray_quote(data: bytes, delimiter: str) -> int | None:
    """The index of the first quote in ``data`` (which starts on a record boundary) that RFC 4180
    does not allow: inside an unquoted field, or right after a closing quote. None when every
    quote up to the end of the data is well placed (a quoted field may still be open at the end)."""
    delim = delimiter.encode()
    record = _record_pattern(delimiter)
    pos = 0
    n = len(data)
    while pos < n:
        m = record.match(data, pos)
        if m is not None and m.end() > pos and (m.end() == n or data[m.end() - 1 : m.end()] == NEWLINE):
            pos = m.end()
            continue
        return _stray_in_record(data, pos, delim)
    return None


def _stray_in_record(data: bytes, pos: int, delim: bytes) -> int | None:
    n = len(data)
    i = pos
    while i < n:
        if data[i : i + 1] == QUOTE:  # a quoted field
            j = i + 1
            while True:
                k = data.find(QUOTE, j)
                if k < 0:
                    return None  # still open at the end of the data
                if data[k + 1 : k + 2] == QUOTE:
                    j = k + 2
                    continue
                break
            i = k + 1
            if i < n and data[i : i + 1] not in (delim, b"\r", NEWLINE):
                return i if data[i : i + 1] == QUOTE else k  # text right after a closing quote
        else:
            ends = [e for e in (data.find(delim, i), data.find(NEWLINE, i)) if e >= 0]
            end = min(ends) if ends else n
            q = data.find(QUOTE, i, end)
            if q >= 0:
                return q
            i = end
        if i >= n or data[i : i + 1] == NEWLINE:
            return None
        if data[i : i + 1] == b"\r":
            i += 1
            continue
        i += 1
    return None


_PATTERNS: dict[str, re.Pattern[bytes]] = {}


def _record_pattern(delimiter: str) -> re.Pattern[bytes]:
    if delimiter not in _PATTERNS:
        d = re.escape(delimiter.encode())
        fld = rb'(?:"(?:[^"]|"")*"|[^"' + d + rb"\r\n]*)"
        _PATTERNS[delimiter] = re.compile(fld + rb"(?:" + d + fld + rb")*\r?(?:\n|\Z)")
    return _PATTERNS[delimiter]


def scan_quotes(file: SourceFile, delimiter: str) -> SourceError | None:
    """Read a file again (error path) record by record from its start and blame the first record
    that breaks RFC 4180 quoting: a stray quote, or a quote that never closes. None when its
    quoting is sound."""
    pattern = _record_pattern(delimiter)
    delim = delimiter.encode()
    content = open_content(file)
    try:
        buf = content.first
        pos = 0
        line = 1
        while True:
            m = pattern.match(buf, pos)
            if m is not None and m.end() > pos and buf[m.end() - 1 : m.end()] == NEWLINE:
                line += buf.count(NEWLINE, pos, m.end())
                pos = m.end()
                continue
            stray = _stray_in_record(buf, pos, delim)
            if stray is not None:
                at = line + buf.count(NEWLINE, pos, stray)
                record = f" (in the record starting on line {line})" if at != line else ""
                return SourceError(
                    f"import source {file.name} has a stray quote in a field on line {at}{record}: "
                    f"{snippet(line_at(buf, stray))!r}. Quote the whole field and double the quote inside it "
                    '("5"" screen"), or remove the quote.'
                )
            more = content.stream.read(OUT_CHUNK) if len(buf) - pos < 16 * OUT_CHUNK else b""
            if not more:
                if pos >= len(buf) or (m is not None and m.end() == len(buf)):
                    return None
                return SourceError(
                    f"import source {file.name} has an unterminated quote in the record starting on line "
                    f"{line}: {snippet(buf[pos:])!r}. Close the quote or double the quote character inside "
                    "the field."
                )
            buf = buf[pos:] + more
            pos = 0
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
    return SourceError(
        f"import source {name}: the record starting on {w.prefix}line {w.line} runs past {max_part_bytes:,} "
        f"bytes without ending ({snippet(head)!r}). A record must fit in one part; most often a quote is "
        "not closed in that record."
    )
