"""Import sources of any size: check them before anything is sent, and cut them into parts that
Marketo accepts. What a source is and how it is read (files, folders, globs, compression, queries)
lives in :mod:`marketo_provider.sources`; :func:`preflight` and :func:`source_parts` are the entry
points.

Cutting works on bytes in large blocks: a record boundary is a newline preceded by an even number
of quote characters (RFC 4180 quoting keeps quotes paired), found with ``bytes.rfind`` and
``bytes.count`` in C, never record by record in Python. Parts hold the source's records as they
are (decompressed), each part starting with the header line Marketo sees.
"""

from __future__ import annotations

import codecs
import difflib
import io
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

from marketo_provider import api
from marketo_provider.api import FileFormat, MarketoValueError, ObjectType, required_columns
from marketo_provider.sources import (
    DEFAULT_MAX_PART_BYTES,
    AnySource,
    Header,
    QuerySource,
    Source,
    SourceError,
    Where,
    _first_record,
    _read_into,
    as_source,
    header_problem,
    open_body,
    snippet,
    stray_quote,
)

__all__ = [
    "DEFAULT_MAX_PART_BYTES",
    "Header",
    "Part",
    "Preflight",
    "QuerySource",
    "Source",
    "SourceError",
    "iter_parts",
    "preflight",
    "read_header",
    "scan_source",
    "source_parts",
]

_QUOTE = b'"'
_NEWLINE = b"\n"
_BOM = codecs.BOM_UTF8

# --------------------------------------------------------------------------------------------
# Reading one file as it is
# --------------------------------------------------------------------------------------------


def source_name(source: Any) -> str:
    """How messages name a source: its path or URI, never credentials."""
    return source.name if isinstance(source, (Source, QuerySource)) else str(source)


def _is_local(source: Any) -> bool:
    if isinstance(source, os.PathLike) and not hasattr(source, "protocol"):
        return True
    return isinstance(source, str) and "://" not in source


@contextmanager
def open_source(source: Any, conn_id: str | None = None) -> Iterator[IO[bytes]]:
    """Open one local path, ``file://`` URI or ObjectStoragePath URI (``s3://``, ``gs://``, ...)
    as a binary stream of its bytes as stored. A missing or unreadable source is a
    :class:`SourceError` naming it. (Import sources are read with :func:`source_parts`, which also
    reads folders, globs and compressed files.)"""
    name = source_name(source)
    try:
        if _is_local(source):
            stream: IO[bytes] = open(os.fspath(source), "rb")  # noqa: SIM115 - closed below
        else:
            from airflow.sdk import ObjectStoragePath

            path = (
                source
                if isinstance(source, ObjectStoragePath)
                else ObjectStoragePath(str(source), conn_id=conn_id)
            )
            if not path.exists():
                raise FileNotFoundError(name)
            if path.is_dir():
                raise IsADirectoryError(name)
            stream = path.open("rb")
    except FileNotFoundError:
        raise SourceError(f"import source {name} does not exist") from None
    except IsADirectoryError:
        raise SourceError(f"import source {name} is a folder; name a file") from None
    except PermissionError:
        raise SourceError(f"import source {name} cannot be read: permission denied") from None
    except SourceError:
        raise
    except Exception as exc:  # fsspec back ends raise many kinds; all mean "cannot read it"
        raise SourceError(f"import source {name} cannot be read: {exc}") from exc
    with stream:
        yield stream


def read_header(stream: IO[bytes], file_format: str | FileFormat, name: str = "source") -> Header:
    """Read and check the header line of an uncompressed stream (left just after the header).
    Raises :class:`SourceError` for an empty file, a blank or malformed header, empty, duplicate
    or space-padded names, and a header evidently separated by another delimiter than
    ``file_format`` says."""
    fmt = FileFormat.parse(file_format)
    head = stream.read(64 * 1024)
    if not head.strip():
        raise SourceError(f"import source {name} is empty; it needs a header line of Marketo field names")
    record = _first_record(head, stream, fmt, name)
    check_header_names(list(record.names), fmt, name)
    rest = record.rest
    if hasattr(stream, "seek") and stream.seekable():
        stream.seek(stream.tell() - len(rest))
    else:  # pragma: no cover - every stream given here is seekable
        raise SourceError(f"import source {name} is not seekable")
    return Header(
        names=record.names,
        line=record.line,
        source_offset=record.bom + len(record.line),
        delimiter=fmt.delimiter,
    )


def check_header_names(names: Sequence[str], fmt: FileFormat, name: str = "source") -> None:
    """Marketo's rules for header names (:func:`api.header_name_problems`) as a :class:`SourceError`."""
    problem = header_problem(names, fmt, name)
    if problem:
        raise problem


def check_required_columns(
    header: Header, object_type: str | ObjectType, required: Iterable[str], name: str = "source"
) -> None:
    missing = [c for c in required if c not in header.names]
    if missing:
        close = {m: difflib.get_close_matches(m, header.names, n=1) for m in missing}
        hints = "".join(f" (is {close[m][0]!r} meant to be {m!r}?)" for m in missing if close[m])
        mapped = (
            " (after column_mapping)" if header.source_names and header.source_names != header.names else ""
        )
        raise SourceError(
            f"import source {name} has no {', '.join(repr(m) for m in missing)} column{mapped}, "
            f"{api.why_required(object_type)}{hints}"
        )


def check_known_columns(header: Header, known_fields: Iterable[str], name: str = "source") -> None:
    """Columns Marketo does not know fail every row; list them with the closest known names."""
    known = list(known_fields)
    known_set = set(known)
    unknown = [n for n in header.names if n not in known_set]
    if not unknown:
        return
    lines = []
    for column in unknown:
        close = difflib.get_close_matches(column, known, n=3, cutoff=0.6)
        if not close:
            close = [k for k in known if k.lower() == column.lower()]
        lines.append(f"{column!r}" + (f" (closest: {', '.join(close)})" if close else ""))
    fix = "Use the REST API names from Marketo's describe call"
    if header.source_names:
        fix += " (rename columns with column_mapping)"
    raise SourceError(
        f"import source {name} has columns Marketo does not know: {'; '.join(lines)}. "
        f"{fix}, or turn the check off with check_columns=False."
    )


# --------------------------------------------------------------------------------------------
# Cutting into parts
# --------------------------------------------------------------------------------------------


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
    origin: str = ""

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


def _last_boundary(window: bytes | bytearray, start: int, limit: int) -> int:
    """The end of the last whole record within ``window[start:limit]`` (``start`` is a record
    boundary), or ``start`` if there is none. Quotes are counted once up to the last newline, then
    the count is adjusted while stepping back over newlines that sit inside quoted fields."""
    nl = window.rfind(_NEWLINE, start, limit)
    if nl < 0:
        return start
    quotes = window.count(_QUOTE, start, nl)
    while quotes % 2:
        prev = window.rfind(_NEWLINE, start, nl)
        if prev < 0:
            return start
        quotes -= window.count(_QUOTE, prev, nl)
        nl = prev
    return nl + 1


# Every byte but the quote and the line feed: what ``bytes.translate`` deletes to count records.
_NOT_QUOTE_OR_NEWLINE = bytes(b for b in range(256) if b not in (_QUOTE[0], _NEWLINE[0]))


def count_records(window: bytes | bytearray, start: int, end: int, step: int = 1024 * 1024) -> int:
    """Line breaks outside quoted fields in ``window[start:end]`` (which starts on a record
    boundary), in C-speed passes: keep only quotes and line feeds, drop adjacent quote pairs
    (they never change whether a line feed is inside quotes), and count the line feeds between
    the quotes that remain, which are few (one pair per field that holds a line break)."""
    if window.find(_QUOTE, start, end) < 0:
        return window.count(_NEWLINE, start, end)
    records = 0
    inside = False
    for at in range(start, end, step):
        compact = window[at : min(end, at + step)].translate(None, _NOT_QUOTE_OR_NEWLINE)
        while b'""' in compact:
            compact = compact.replace(b'""', b"")
        if _QUOTE not in compact:
            if not inside:
                records += len(compact)
            continue
        pieces = compact.split(_QUOTE)
        for i, piece in enumerate(pieces):
            if inside == bool(i % 2):
                records += len(piece)
        inside ^= bool((len(pieces) - 1) % 2)
    return records


def iter_parts(
    stream: Any,
    header: Header,
    *,
    max_part_bytes: int = DEFAULT_MAX_PART_BYTES,
    name: str = "source",
    validate: bool = False,
    report: ScanReport | None = None,
    first_index: int = 0,
) -> Iterator[Part]:
    """Cut the body of ``stream`` (positioned just after the header, or a logical body from
    :func:`~marketo_provider.sources.open_body`) into parts under ``max_part_bytes``, each
    starting with the header line and cut only between records.

    One buffer of ``max_part_bytes`` holds the header and the records of the part being cut;
    parts are views into it, so memory stays at about one part whatever the source size. With
    ``validate=True`` every byte is also checked to be UTF-8 and records are counted. Raises
    :class:`SourceError` for a record larger than a part can hold, an unterminated or stray quote
    and (when validating) bytes that are not UTF-8, each naming the line.
    """
    if max_part_bytes > api.MAX_IMPORT_FILE_BYTES:
        raise MarketoValueError(
            f"max_part_bytes is {max_part_bytes:,}; Marketo takes files under {api.MAX_IMPORT_FILE_BYTES:,} bytes"
        )
    base = len(header.line)
    budget = max_part_bytes - base
    if budget < 1:
        raise MarketoValueError(
            f"max_part_bytes of {max_part_bytes:,} leaves no room for records after the header"
        )
    window = bytearray(base + budget + 1)  # [header][body of the part being cut][1 byte of look-ahead]
    window[:base] = header.line
    view = memoryview(window)
    filled = 0  # body bytes in the window
    eof = False
    offset = stream.tell()  # logical offset of the window's first body byte
    line_no = 2  # the line the window's body starts on (counted when validating)
    decoder = codecs.getincrementaldecoder("utf-8")() if validate else None
    checked = 0  # body bytes already checked to be UTF-8
    index = first_index
    report = report if report is not None else ScanReport()
    origin_of = getattr(stream, "origin", None)
    where_of = getattr(stream, "where", None)
    rescan = getattr(stream, "quote_problem", None)

    def where(at: int) -> Where:
        """Where window byte ``at`` is in the source."""
        logical = offset + at - base
        found = where_of(logical) if where_of is not None else None
        return found or Where("", line_no + window.count(_NEWLINE, base, at), logical)

    try:
        while True:
            while filled <= budget and not eof:
                n = _read_into(stream, view[base + filled :])
                eof = n == 0
                filled += n
            if decoder is not None and checked < filled:
                _check_utf8(decoder, view, base + checked, base + filled, name, where, final=eof)
                checked = filled
            if filled == 0:
                return
            if eof and filled <= budget:
                end = base + filled
                if window.count(_QUOTE, base, end) % 2:
                    # A stray quote earlier in the source may have put the cut out of step: the
                    # first record with broken quoting is found by reading the source again.
                    raise (rescan() if rescan else None) or _quote_error(
                        bytes(window[base:end]), base, header.delimiter, name, where
                    )
                if not window[base:end].strip(b"\r\n"):
                    return  # only blank lines remain: nothing to import
            else:
                end = _last_boundary(window, base, base + min(filled, budget))
                if end == base:
                    raise (rescan() if rescan else None) or _no_boundary(
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
                lines = window.count(_NEWLINE, base, end)
                report.lines += lines
                report.records += count_records(window, base, end)
                if eof and filled == cut and window[end - 1] != _NEWLINE[0]:
                    report.records += 1  # the last record has no line break
                line_no += lines
            origin = (
                origin_of(offset, offset + cut) if origin_of else f"{name} bytes {offset:,}-{offset + cut:,}"
            )
            yield Part(
                index=index, data=view[:end], source_start=offset, source_end=offset + cut, origin=origin
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


def _line_of(data: bytes, index: int) -> bytes:
    start = data.rfind(_NEWLINE, 0, index) + 1
    end = data.find(_NEWLINE, index)
    return data[start : end if end >= 0 else len(data)]


def _stray_quote_error(
    data: bytes, at: int, base: int, name: str, where: Callable[[int], Where]
) -> SourceError:
    w = where(base + at)
    return SourceError(
        f"import source {name} has a stray quote in a field on {w.prefix}line {w.line}: "
        f"{snippet(_line_of(data, at))!r}. Quote the whole field and double the quote inside it "
        '("5"" screen"), or remove the quote.'
    )


def _quote_error(
    tail: bytes, base: int, delimiter: str, name: str, where: Callable[[int], Where]
) -> SourceError:
    """The body ends inside quotes: blame a stray quote when there is one, else the record whose
    quote never closes (error path only)."""
    stray = stray_quote(tail, delimiter)
    if stray is not None:
        return _stray_quote_error(tail, stray, base, name, where)
    start = _last_boundary(tail, 0, len(tail))
    w = where(base + start)
    return SourceError(
        f"import source {name} has an unterminated quote in the record starting on {w.prefix}line {w.line}: "
        f"{snippet(tail[start:])!r}. Close the quote or double the quote character inside the field."
    )


def _no_boundary(
    head: bytes, base: int, max_part_bytes: int, delimiter: str, name: str, where: Callable[[int], Where]
) -> SourceError:
    stray = stray_quote(head, delimiter)
    if stray is not None:
        return _stray_quote_error(head, stray, base, name, where)
    w = where(base)
    return SourceError(
        f"import source {name}: the record starting on {w.prefix}line {w.line} runs past {max_part_bytes:,} "
        f"bytes without ending ({snippet(head)!r}). A record must fit in one part; most often a quote is "
        "not closed in that record."
    )


def scan_source(
    stream: Any,
    header: Header,
    *,
    max_part_bytes: int = DEFAULT_MAX_PART_BYTES,
    name: str = "source",
) -> ScanReport:
    """A full pre-flight pass: every record fits a part, quotes close, the bytes are UTF-8.
    Returns how many parts the source will be cut into. Nothing is kept in memory but one part."""
    report = ScanReport()
    for _ in iter_parts(
        stream, header, max_part_bytes=max_part_bytes, name=name, validate=True, report=report
    ):
        pass
    return report


# --------------------------------------------------------------------------------------------
# Pre-flight: everything checked before the first upload
# --------------------------------------------------------------------------------------------

Describe = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class Preflight:
    """A source that passed every check, and how it will be cut.

    ``records`` counts records (line breaks outside quoted fields, plus a last record without
    one; blank lines count), ``lines`` line breaks. For a :class:`QuerySource` the rows are read
    once, while they are imported: ``parts``, ``body_bytes``, ``records`` and ``lines`` are None
    (0 when the query returns no rows).
    """

    name: str
    header: Header
    parts: int | None
    body_bytes: int | None
    records: int | None
    lines: int | None = None

    @property
    def empty(self) -> bool:
        """True for a source without records: nothing to import, and no import call is made."""
        return self.parts == 0


def _agreeing(source: Any, file_format: Any, source_conn_id: Any, max_part_bytes: Any) -> AnySource:
    return as_source(
        source, file_format=file_format, source_conn_id=source_conn_id, max_part_bytes=max_part_bytes
    )


def preflight(
    source: AnySource | Any,
    *,
    object_type: str | ObjectType,
    lookup_field: str | None = None,
    custom_object_name: str | None = None,
    describe: Describe | None = None,
    check_columns: bool = True,
    file_format: str | FileFormat | None = None,
    source_conn_id: str | None = None,
    max_part_bytes: int | None = None,
) -> Preflight:
    """Check a source completely before anything is uploaded.

    ``source`` is a :class:`Source` or :class:`QuerySource` (a location with ``file_format``,
    ``source_conn_id`` and ``max_part_bytes`` is turned into one). ``describe`` is
    :meth:`MarketoHook.describe`; it is called for custom objects (their dedupe fields) and, with
    ``check_columns``, to check the column names (program members: the program member and the
    lead fields). Every file of a many-file source is read through. Raises :class:`SourceError`
    saying what to fix.
    """
    kind = ObjectType.parse(object_type)
    checked = _agreeing(source, file_format, source_conn_id, max_part_bytes)
    name = checked.name
    with open_body(checked) as (header, body):
        dedupe: tuple[str, ...] = ()
        described: dict[str, Any] | None = None
        if kind is ObjectType.CUSTOM_OBJECTS or check_columns:
            if describe is None:
                raise MarketoValueError(
                    "preflight needs describe to check the columns of a custom object import"
                )
            described = describe(kind, custom_object_name=custom_object_name)
            dedupe = tuple(described.get("dedupe_fields", ()))
        check_required_columns(
            header, kind, required_columns(kind, lookup_field=lookup_field, dedupe_fields=dedupe), name
        )
        if check_columns and described is not None and describe is not None:
            known = list(described["fields"])
            for other in api.importable_field_objects(kind):
                if other is not kind:
                    known += describe(other)["fields"]
            check_known_columns(header, known, name)
        if isinstance(checked, QuerySource):
            has_rows = _peek_rows(body)
            zero = None if has_rows else 0
            return Preflight(name=name, header=header, parts=zero, body_bytes=zero, records=zero, lines=zero)
        report = scan_source(body, header, max_part_bytes=checked.max_part_bytes, name=name)
    return Preflight(
        name=name,
        header=header,
        parts=report.parts,
        body_bytes=report.body_bytes,
        records=report.records,
        lines=report.lines,
    )


def _peek_rows(body: Any) -> bool:
    return bool(body.readinto(memoryview(bytearray(1))))


@contextmanager
def source_parts(
    source: AnySource | Any,
    *,
    resume_at: tuple[int, int] | None = None,
    expected_header: Sequence[str] | None = None,
    file_format: str | FileFormat | None = None,
    source_conn_id: str | None = None,
    max_part_bytes: int | None = None,
) -> Iterator[Iterator[Part]]:
    """Open a source and cut it into parts: the same parts, in the same order, every time.

    ``resume_at=(index, offset)`` starts at part ``index``, which begins at logical body offset
    ``offset`` (the end of the part before it): a single uncompressed file is seeked; otherwise
    whole plain files are skipped by their size and the rest is read and discarded. With
    ``expected_header`` (the names seen when earlier parts were cut) a source that changed since
    is a :class:`SourceError` rather than parts that do not line up.
    """
    checked = _agreeing(source, file_format, source_conn_id, max_part_bytes)
    name = checked.name
    with open_body(checked) as (header, body):
        if expected_header is not None and tuple(expected_header) != header.names:
            raise SourceError(
                f"import source {name} changed since earlier parts were submitted: its header differs"
            )
        first_index = 0
        if resume_at is not None:
            first_index, offset = resume_at
            body.skip_to(offset)
        yield iter_parts(
            body, header, max_part_bytes=checked.max_part_bytes, name=name, first_index=first_index
        )
