"""The last stage: the logical stream cut into parts Marketo accepts.

Cutting works on bytes in large blocks: a record boundary is a newline preceded by an even number
of quote characters, found with ``bytes.rfind`` and ``bytes.count`` in C, never record by record
in Python. Parts hold the source's records as they are (decompressed), each part starting with the
header line Marketo sees.
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from marketo_provider.bounds import bounded_text
from marketo_provider.sources.base import NEWLINE, QUOTE, Body, Piece, SourceError, Where
from marketo_provider.sources.header import Header
from marketo_provider.sources.quotes import (
    count_records,
    last_boundary,
    lone_carriage_return,
    no_boundary,
    quote_error,
)


@dataclass(frozen=True)
class Part:
    """One piece of the source, ready to upload: the header line followed by whole records.

    ``data`` is a view into the cutter's buffer, valid until the next part is asked for; keep
    ``bytes(part.data)`` to hold on to it. :meth:`reader` gives a file object for uploads.
    ``source_start``/``source_end`` are offsets in the source's logical body (every file's
    records, decompressed, headers removed, one after the other); ``origin`` names the file(s)
    and byte ranges the part came from, for messages.
    """

    index: int
    data: memoryview
    source_start: int
    source_end: int
    pieces: tuple[Piece, ...] = ()
    header_len: int = 0  # the header line's bytes at the start of ``data``
    # Set when cut with a ledger (:func:`~marketo_provider.sources.source_parts`): the ordinals of
    # the part's records (kept-out records among them) and where it ends in the source's records.
    first_ordinal: int | None = None
    end_ordinal: int | None = None
    inner_end: int | None = None

    @property
    def origin(self) -> str:
        """The files and byte ranges the part came from, for messages: a range per run of records
        sent (rows kept out between them), the first and last few named when there are many."""
        names = {p.name for p in self.pieces}
        noun = "files" if len(names) == len(self.pieces) else "ranges"  # rows kept out split a file's bytes
        return bounded_text((str(p) for p in self.pieces), noun=noun) or "no bytes"

    @property
    def size(self) -> int:
        return len(self.data)

    def reader(self) -> IO[bytes]:
        """A seekable binary file object over the part, without copying it."""
        return io.BufferedReader(_MemoryRaw(self.data), buffer_size=64 * 1024)


class _MemoryRaw(io.RawIOBase):
    """A read-only raw stream over a memoryview (``io.BytesIO`` would copy the whole part)."""

    def __init__(self, data: memoryview) -> None:
        self._data = data
        self._pos = 0
        self.name = "part.csv"

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._data[self._pos : self._pos + len(buffer)]
        n = len(chunk)
        memoryview(buffer).cast("B")[:n] = chunk
        self._pos += n
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._data)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos


@dataclass
class ScanReport:
    """What a full pass over the source found. ``records`` counts records (line breaks outside
    quoted fields, plus a last record without one; blank lines count); ``lines`` counts line breaks."""

    parts: int = 0
    body_bytes: int = 0
    lines: int = 0
    records: int = 0


def iter_parts(
    body: Body,
    header: Header,
    *,
    max_part_bytes: int,
    name: str = "source",
    validate: bool = False,
    report: ScanReport | None = None,
    first_index: int = 0,
) -> Iterator[Part]:
    """Cut a source's logical ``body`` (from :func:`~marketo_provider.sources.open_body`)
    into parts under ``max_part_bytes`` (checked against Marketo's limit when the source was built),
    each starting with the header line and cut only between records.

    One buffer of ``max_part_bytes`` holds the header and the records of the part being cut;
    parts are views into it, so memory stays at about one part whatever the source size. With
    ``validate=True`` every byte is also checked to be UTF-8 and records are counted. Raises
    :class:`SourceError` for a record larger than a part can hold, an unterminated or stray quote
    and (when validating) bytes that are not UTF-8, each naming the line.
    """
    base = len(header.line)
    budget = max_part_bytes - base
    if budget < 1:
        raise SourceError(f"max_part_bytes of {max_part_bytes:,} leaves no room for records after the header")
    window = bytearray(base + budget + 1)  # [header][body of the part being cut][1 byte of look-ahead]
    window[:base] = header.line
    view = memoryview(window)
    filled = 0  # body bytes in the window
    eof = False
    offset = body.tell()  # logical offset of the window's first body byte
    line_no = 2  # the line the window's body starts on (counted when validating)
    decoder = codecs.getincrementaldecoder("utf-8")() if validate else None
    checked = 0  # body bytes already checked to be UTF-8
    index = first_index
    report = report if report is not None else ScanReport()

    def where(at: int) -> Where:
        """Where window byte ``at`` is in the source."""
        logical = offset + at - base
        found = body.where(logical)
        return found or Where("", line_no + window.count(NEWLINE, base, at), logical)

    try:
        while True:
            while filled <= budget and not eof:
                n = body.readinto(view[base + filled :]) or 0
                eof = n == 0
                filled += n
            if decoder is not None and checked < filled:
                _check_utf8(decoder, view, base + checked, base + filled, name, where, final=eof)
                checked = filled
            if filled == 0:
                return
            if eof and filled <= budget:
                end = base + filled
                if window.count(QUOTE, base, end) % 2:
                    # A stray quote earlier in the source may have put the cut out of step: the
                    # first record with broken quoting is found by reading the source again.
                    raise body.quote_problem() or quote_error(
                        bytes(window[base:end]), base, header.delimiter, name, where
                    )
                if not window[base:end].strip(b"\r\n"):
                    return  # only blank lines remain: nothing to import
            else:
                end = last_boundary(window, base, base + min(filled, budget))
                if end == base:
                    raise body.quote_problem() or no_boundary(
                        bytes(window[base : base + min(filled, budget)]),
                        base,
                        max_part_bytes,
                        header.delimiter,
                        name,
                        where,
                    )
            cut = end - base
            report.parts += 1
            report.body_bytes += cut
            if validate:
                problem = lone_carriage_return(window, base, end, name, where)
                if problem is not None:
                    raise problem
                lines = window.count(NEWLINE, base, end)
                report.lines += lines
                report.records += count_records(window, base, end)
                if eof and filled == cut and window[end - 1] != NEWLINE[0]:
                    report.records += 1  # the last record has no line break
                line_no += lines
            yield Part(
                index=index,
                data=view[:end],
                source_start=offset,
                source_end=offset + cut,
                pieces=tuple(body.pieces(offset, offset + cut)),
                header_len=base,
            )
            index += 1
            remaining = filled - cut
            view[base : base + remaining] = window[end : base + filled]
            filled = remaining
            checked = max(0, checked - cut)
            offset += cut
            if eof and filled == 0:
                return
    finally:
        view.release()


def _check_utf8(
    decoder: codecs.IncrementalDecoder,
    view: memoryview,
    start: int,
    end: int,
    name: str,
    where: Callable[[int], Where],
    *,
    final: bool,
) -> None:
    step = 1024 * 1024  # decode in slices so the decoded text never costs more than a MiB
    pos = start
    try:
        while pos < end:
            stop = min(end, pos + step)
            decoder.decode(view[pos:stop], final and stop == end)
            pos = stop
        if final and start == end:
            decoder.decode(b"", True)
    except UnicodeDecodeError as exc:
        bad = pos + exc.start
        w = where(bad)
        shown = bytes(view[max(0, bad - 20) : min(end, bad + 10)])
        raise SourceError(
            f"import source {name} is not UTF-8: {w.prefix}line {w.line}, {w.unit} {w.byte:,} ({shown!r}). "
            "Marketo reads import files as UTF-8; re-export the file as UTF-8."
        ) from None


def scan_source(body: Body, header: Header, *, max_part_bytes: int, name: str = "source") -> ScanReport:
    """A full pre-flight pass: every record fits a part, quotes close, the bytes are UTF-8.
    Returns how many parts the source will be cut into. Nothing is kept in memory but one part."""
    report = ScanReport()
    for _ in iter_parts(body, header, max_part_bytes=max_part_bytes, name=name, validate=True, report=report):
        pass
    return report
