"""Stage 4: the records of delimited text files as one logical stream (:class:`BodyStream`, a
:class:`~marketo_provider.sources.base.Body`).

Every file's records, decompressed, header lines removed, one after the other in a stable
(sorted) order (``text.py`` opens the first file and reads the header; a query's rows and Parquet
files' rows are streams of their own: ``query.py``, ``parquet.py``). Offsets in that stream say
where a part starts and ends, so an import can resume after the last part Marketo accepted, and say
which file and bytes a part came from. A stage that looks at records (checks, a change filter) reads
and hands on this stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from marketo_provider.bounds import columns_differ
from marketo_provider.sources.base import (
    BOM,
    HEAD_BYTES,
    NEWLINE,
    OUT_CHUNK,
    QUOTE,
    Piece,
    SourceError,
    Where,
    read_into,
    seekable,
)
from marketo_provider.sources.content import Content, open_content
from marketo_provider.sources.header import Header, first_record, line_terminator, refuse_header_in_headerless
from marketo_provider.sources.listing import SourceFile
from marketo_provider.sources.model import Source
from marketo_provider.sources.quotes import scan_quotes


class _BodyReader:
    """One file's body: what was read past its header, then the rest of its content. Counts the
    quote characters it hands out when asked (a file must not end inside a quoted field)."""

    def __init__(self, content: Content, head: bytes, count_quotes: bool) -> None:
        self.content = content
        self._head = head
        self._pos = 0
        self._count = count_quotes
        self.quotes = 0

    def readinto(self, view: memoryview) -> int:
        if self._pos < len(self._head):
            chunk = self._head[self._pos : self._pos + len(view)]
            self._pos += len(chunk)
        elif self._count:
            chunk = self.content.stream.read(min(len(view), OUT_CHUNK))
        else:
            return read_into(self.content.stream, view)
        n = len(chunk)
        view[:n] = chunk
        if self._count:
            self.quotes += chunk.count(QUOTE)
        return n

    @property
    def direct(self) -> bool:
        """True when reads go straight to a plain, seekable file (it may be seeked)."""
        return self.content.kind is None and not self._head and seekable(self.content.stream)


@dataclass
class _Segment:
    """Where one file's body sits in the logical stream."""

    file: SourceFile
    kind: str | None
    start: int  # logical offset of the file's first body byte
    content_start: int  # the same byte's offset in the file's (decompressed) content
    end: int | None = None  # logical offset just past its last body byte, once known


@dataclass
class OpenedFile:
    file: SourceFile
    reader: _BodyReader
    header_len: int
    segment: _Segment | None = None


class BodyStream:
    """The logical body of a file source: each file's body (decompressed, header removed) in
    order, with a line break added between two files when the first does not end with one.

    Reads return bytes from one file at a time; ``tell()`` is the logical offset. Every later
    file's header must match the first file's (or, with ``columns``, no file has a header)."""

    def __init__(
        self,
        source: Source,
        files: list[SourceFile],
        header: Header,
        first: OpenedFile | None,
        next_index: int = 1,
    ) -> None:
        self.source = source
        self.header = header
        self._files = files
        self._next = next_index  # the next file to open after ``first``
        self._current = first
        self._multi = len(files) > 1
        self._pos = 0
        self._last = NEWLINE[0]
        self._owed = b""  # a line break to add before the next file's records
        self._stash = b""  # bytes read from a file, not handed out yet
        self._terminator = line_terminator(header.line)
        self._segments: list[_Segment] = []

    # -- reading

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = buffer if isinstance(buffer, memoryview) else memoryview(buffer)
        while True:
            if self._stash:
                n = min(len(view), len(self._stash))
                view[:n] = self._stash[:n]
                self._stash = self._stash[n:]
                self._pos += n
                self._last = view[n - 1]
                return n
            cur = self._current
            if cur is None:
                if not self._open_next():
                    return 0
                continue
            if self._owed:
                # The line break owed after the previous file goes out only if this file has records.
                tmp = bytearray(HEAD_BYTES)
                n = cur.reader.readinto(memoryview(tmp))
                if not n:
                    self._close_current(check=True)
                    continue
                self._start_segment(cur, self._pos + len(self._owed))
                self._stash = self._owed + bytes(tmp[:n])
                self._owed = b""
                continue
            n = cur.reader.readinto(view)
            if n:
                if cur.segment is None:
                    self._start_segment(cur, self._pos)
                self._pos += n
                self._last = view[n - 1]
                return n
            self._close_current(check=True)

    def _start_segment(self, cur: OpenedFile, at: int) -> None:
        cur.segment = _Segment(cur.file, cur.reader.content.kind, at, cur.header_len)
        self._segments.append(cur.segment)

    def read(self, size: int = OUT_CHUNK) -> bytes:
        buffer = bytearray(size)
        n = self.readinto(memoryview(buffer))
        return bytes(buffer[:n])

    def _close_current(self, *, check: bool) -> None:
        cur = self._current
        assert cur is not None
        self._current = None
        cur.reader.content.close()
        if cur.segment is not None:
            cur.segment.end = self._pos
            if self._last != NEWLINE[0]:
                self._owed = self._terminator
        if check and self._multi and cur.reader.quotes % 2:
            raise scan_quotes(cur.file, self.header.delimiter, self.source.max_part_bytes) or SourceError(
                f"import source {cur.file.name} ends inside a quoted field; close the quote or double the "
                "quote character inside the field"
            )

    def _open_next(self) -> bool:
        while self._next < len(self._files):
            file = self._files[self._next]
            self._next += 1
            opened = open_file_body(self.source, file, self.header, count_quotes=self._multi)
            if opened is not None:
                self._current = opened
                return True
        return False

    def quote_problem(self) -> SourceError | None:
        """The first record with broken quoting in the files read so far (error path: re-reads them)."""
        for file in self._files[: self._next]:
            found = scan_quotes(file, self.header.delimiter, self.source.max_part_bytes)
            if found is not None:
                return found
        return None

    def close(self) -> None:
        if self._current is not None:
            self._current.reader.content.close()
            self._current = None

    # -- resuming

    def skip_to(self, offset: int) -> None:
        """Continue from logical ``offset``, the end of an earlier part: seek where the stream
        allows, skip whole plain files by their size, otherwise read and discard."""
        changed = SourceError(
            f"import source {self.source.name} changed since earlier parts were submitted: "
            f"byte {offset:,} of its records is no longer the start of a record"
        )
        scratch = memoryview(bytearray(min(OUT_CHUNK, max(offset, 1))))
        while self._pos < offset:
            cur = self._current
            if cur is None:
                if not self._open_next():
                    raise changed
                continue
            if cur.reader.direct and cur.file.size is not None and not self._stash:
                body = cur.file.size - cur.header_len
                done = 0 if cur.segment is None else self._pos - cur.segment.start
                lead = len(self._owed) if body > done and cur.segment is None else 0
                stream = cur.reader.content.stream
                if self._pos + lead + (body - done) <= offset:  # the whole (rest of the) file
                    if body > done:
                        stream.seek(cur.file.size - 1)
                        self._mark_read(cur, lead, body - done, stream.read(1))
                    self._close_current(check=False)
                    continue
                if lead <= offset - self._pos:
                    step = offset - self._pos - lead
                    if step == 0:  # only the line break owed before this file's records
                        self._mark_read(cur, lead, 0, NEWLINE)
                        continue
                    stream.seek(cur.header_len + done + step - 1)
                    self._mark_read(cur, lead, step, stream.read(1))
                    continue
            self.readinto(scratch[: min(len(scratch), offset - self._pos)])
        if offset and self._last != NEWLINE[0]:
            raise changed

    def _mark_read(self, cur: OpenedFile, lead: int, n: int, last: bytes) -> None:
        if lead:
            self._pos += lead
            self._owed = b""
        if cur.segment is None:
            self._start_segment(cur, self._pos)
        self._pos += n
        if last:
            self._last = last[0]

    # -- saying where

    def pieces(self, start: int, end: int) -> list[Piece]:
        """The files and byte ranges logical bytes ``start``..``end`` came from (earlier segments
        are forgotten: parts are asked for in order)."""
        self._segments = [s for s in self._segments if s.end is None or s.end > start]
        pieces = []
        header_lines = 0 if self.source.columns is not None else self.header.line.count(NEWLINE)
        for seg in self._segments:
            seg_end = seg.end if seg.end is not None else end
            if seg.start >= end or seg_end <= start:
                continue
            a, b = max(start, seg.start), min(end, seg_end)
            pieces.append(
                Piece(
                    name=seg.file.name,
                    label=seg.file.label,
                    start=a,
                    end=b,
                    content_start=seg.content_start + a - seg.start,
                    unit="bytes" if seg.kind is None else f"decompressed {seg.kind} bytes",
                    header_lines=header_lines,
                )
            )
        return pieces

    def where(self, offset: int) -> Where | None:
        """The file, line and byte of logical ``offset`` (error path: re-reads the file to count lines)."""
        seg = None
        for s in self._segments:
            if s.start <= offset:
                seg = s
        if seg is None:
            return None
        at = seg.content_start + offset - seg.start
        content = open_content(seg.file)
        try:
            lines = content.first[:at].count(NEWLINE)
            counted = len(content.first)
            while counted < at:
                data = content.stream.read(min(OUT_CHUNK, at - counted))
                if not data:
                    break
                lines += data.count(NEWLINE)
                counted += len(data)
        finally:
            content.close()
        prefix = f"{seg.file.label}, " if self._multi else ""
        unit = "byte" if seg.kind is None else f"decompressed {seg.kind} byte"
        return Where(prefix=prefix, line=lines + 1, byte=at, unit=unit)


def open_file_body(
    source: Source, file: SourceFile, header: Header, *, count_quotes: bool
) -> OpenedFile | None:
    """Open one file, check its header against the source's, and leave it at its body. None for an
    empty file."""
    content = open_content(file)
    if content.empty:
        content.close()
        return None
    return file_body(source, file, content, header, count_quotes=count_quotes)


def file_body(
    source: Source, file: SourceFile, content: Content, header: Header, *, count_quotes: bool
) -> OpenedFile:
    """An opened file with content: its header checked against the source's, left at its body."""
    try:
        fmt = source.file_format
        if source.columns is not None:
            bom = len(BOM) if content.first.startswith(BOM) else 0
            refuse_header_in_headerless(source, file, content, bom)
            return body_open(file, content, bom, content.first[bom:], count_quotes)
        record = first_record(content.first, content.stream, fmt, file.name)
        expected = header.source_names or header.names
        if record.names != expected:
            raise SourceError(
                f"the header of {file.name} differs from the first file's: "
                f"{columns_differ(record.names, expected)}; every file of {source.name} needs the same columns"
            )
        return body_open(file, content, record.bom + len(record.line), record.rest, count_quotes)
    except BaseException:
        content.close()
        raise


def body_open(file: SourceFile, content: Content, header_len: int, rest: bytes, count: bool) -> OpenedFile:
    if content.kind is None and seekable(content.stream):
        content.stream.seek(header_len)  # read the body straight from the file, without a copy
        rest = b""
    return OpenedFile(file=file, reader=_BodyReader(content, rest, count), header_len=header_len)
