"""Import sources of any size: open them as streams, check them before anything is sent, and cut
them into parts that Marketo accepts.

Cutting works on bytes in large blocks: a record boundary is a newline preceded by an even number
of quote characters (RFC 4180 quoting keeps quotes paired), found with ``bytes.rfind`` and
``bytes.count`` in C, never record by record in Python. Parts are the source's own bytes, each
starting with the source's header line, so Marketo receives exactly what the user wrote.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import io
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

from marketo_provider import api
from marketo_provider.api import FileFormat, MarketoValueError, ObjectType, required_columns

# Parts stay safely under Marketo's limit (multipart framing is not counted against the file).
DEFAULT_MAX_PART_BYTES = 9_500_000
_BOM = codecs.BOM_UTF8
_QUOTE = b'"'
_NEWLINE = b"\n"


class SourceError(MarketoValueError):
    """The import source is missing, unreadable or not a file Marketo can import; nothing was sent."""


# --------------------------------------------------------------------------------------------
# Reading a source
# --------------------------------------------------------------------------------------------


def source_name(source: Any) -> str:
    """How messages name a source: its path or URI, never credentials."""
    return str(source)


def _is_local(source: Any) -> bool:
    if isinstance(source, os.PathLike) and not hasattr(source, "protocol"):
        return True
    return isinstance(source, str) and "://" not in source


@contextmanager
def open_source(source: Any, conn_id: str | None = None) -> Iterator[IO[bytes]]:
    """Open a local path, a ``file://`` URI or any ObjectStoragePath URI (``s3://``, ``gs://``, ...)
    as a binary stream. A missing or unreadable source is a :class:`SourceError` naming it."""
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


def _read_into(stream: IO[bytes], view: memoryview) -> int:
    readinto = getattr(stream, "readinto", None)
    if readinto is not None:
        try:
            n = readinto(view)
        except (io.UnsupportedOperation, NotImplementedError):
            pass
        else:
            return n or 0
    data = stream.read(len(view))
    view[: len(data)] = data
    return len(data)


# --------------------------------------------------------------------------------------------
# The header
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    """The source's first record: the column names and the exact bytes every part starts with."""

    names: tuple[str, ...]
    line: bytes  # as in the source, line terminator included, byte order mark removed
    source_offset: int  # where the body starts in the source


def _record_end(data: bytes, start: int = 0) -> int:
    """Index just past the first record boundary at or after ``start`` (data starts on a boundary),
    or -1 when the data holds no complete record."""
    pos = start
    quotes = 0
    while True:
        nl = data.find(_NEWLINE, pos)
        if nl < 0:
            return -1
        quotes += data.count(_QUOTE, pos, nl)
        if quotes % 2 == 0:
            return nl + 1
        pos = nl + 1


def read_header(stream: IO[bytes], file_format: str | FileFormat, name: str = "source") -> Header:
    """Read and check the header line (the stream is left after it). Raises :class:`SourceError`
    for an empty file, a blank or malformed header, empty, duplicate or space-padded names, and a
    header that is evidently separated by another delimiter than ``file_format`` says."""
    fmt = FileFormat.parse(file_format)
    head = stream.read(64 * 1024)
    if not head.strip():
        raise SourceError(f"import source {name} is empty; it needs a header line of Marketo field names")
    offset = 0
    if head.startswith(_BOM):
        offset = len(_BOM)
    end = _record_end(head, offset)
    while end < 0:
        more = stream.read(64 * 1024)
        if not more:
            head += b"\n"
            end = _record_end(head, offset)
            if end < 0:
                raise SourceError(f"the header of {name} has an unterminated quote")
            break
        head += more
        if len(head) > 1024 * 1024:
            raise SourceError(f"the first line of {name} is over 1 MB long; is the header missing?")
        end = _record_end(head, offset)
    line = head[offset:end]
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(
            f"the header of {name} is not UTF-8 (byte {exc.start + offset}: {line[exc.start : exc.start + 4]!r}); "
            "save the file as UTF-8"
        ) from None
    if not text.strip():
        raise SourceError(
            f"the first line of {name} is blank; the first line must be the header of Marketo field names"
        )
    names = next(csv.reader([text.rstrip("\r\n")], delimiter=fmt.delimiter))
    check_header_names(names, fmt, name)
    # Leave the stream just after the header: hand back what was read beyond it.
    rest = head[end:]
    if hasattr(stream, "seek") and stream.seekable():
        stream.seek(stream.tell() - len(rest))
    else:  # pragma: no cover - every source we open is seekable
        raise SourceError(f"import source {name} is not seekable")
    return Header(names=tuple(names), line=bytes(line), source_offset=end)


def check_header_names(names: list[str], fmt: FileFormat, name: str = "source") -> None:
    """Marketo's rules for header names, as clear errors that say what to fix."""
    if len(names) == 1:
        for other in FileFormat:
            if other is not fmt and other.delimiter in names[0]:
                raise SourceError(
                    f"the header of {name} has one column when read as {fmt.value} ({fmt.delimiter_name}-separated) "
                    f"but looks {other.delimiter_name}-separated: {names[0][:80]!r}; "
                    f"set file_format='{other.value}'"
                )
    empty = [str(i + 1) for i, n in enumerate(names) if not n.strip()]
    if empty:
        raise SourceError(
            f"the header of {name} has empty column names (column {', '.join(empty)}); name every column"
        )
    padded = [n for n in names if n != n.strip()]
    if padded:
        listed = ", ".join(repr(n) for n in padded)
        raise SourceError(
            f"the header of {name} has column names with leading or trailing spaces: {listed}; "
            "Marketo fails every row of such a file (missing.dedupe.fields). Remove the spaces."
        )
    seen: set[str] = set()
    duplicates = sorted({n for n in names if n in seen or seen.add(n)})  # type: ignore[func-returns-value]
    if duplicates:
        raise SourceError(f"the header of {name} names these columns more than once: {', '.join(duplicates)}")


_WHY_REQUIRED = {
    ObjectType.PROGRAM_MEMBERS: "which program member imports need to find each lead",
    ObjectType.LEADS: "the lookup field leads are matched on",
    ObjectType.CUSTOM_OBJECTS: "the custom object's dedupe field",
}


def check_required_columns(
    header: Header, object_type: str | ObjectType, required: Iterable[str], name: str = "source"
) -> None:
    kind = ObjectType.parse(object_type)
    missing = [c for c in required if c not in header.names]
    if missing:
        close = {m: difflib.get_close_matches(m, header.names, n=1) for m in missing}
        hints = "".join(f" (is {close[m][0]!r} meant to be {m!r}?)" for m in missing if close[m])
        raise SourceError(
            f"import source {name} has no {', '.join(repr(m) for m in missing)} column, "
            f"{_WHY_REQUIRED[kind]}{hints}"
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
    raise SourceError(
        f"import source {name} has columns Marketo does not know: {'; '.join(lines)}. "
        "Use the REST API names from Marketo's describe call, or turn the check off with check_columns=False."
    )


# --------------------------------------------------------------------------------------------
# Cutting into parts
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """One piece of the source, ready to upload: the header line followed by whole records.

    ``data`` is a view into the cutter's buffer, valid until the next part is asked for; keep
    ``bytes(part.data)`` to hold on to it. :meth:`reader` gives a file object for uploads.
    """

    index: int
    data: memoryview
    source_start: int  # offset in the source of the first body byte
    source_end: int

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
    """What a full pass over the source found."""

    parts: int = 0
    body_bytes: int = 0
    lines: int = 0


def _last_boundary(window: bytearray, start: int, limit: int) -> int:
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


def iter_parts(
    stream: IO[bytes],
    header: Header,
    *,
    max_part_bytes: int = DEFAULT_MAX_PART_BYTES,
    name: str = "source",
    validate: bool = False,
    report: ScanReport | None = None,
    first_index: int = 0,
) -> Iterator[Part]:
    """Cut the body of ``stream`` (positioned just after the header) into parts under
    ``max_part_bytes``, each starting with the header line and cut only between records.

    One buffer of ``max_part_bytes`` holds the header and the records of the part being cut;
    parts are views into it, so memory stays at about one part whatever the source size. With
    ``validate=True`` every byte is also checked to be UTF-8 and lines are counted. Raises
    :class:`SourceError` for a record larger than a part can hold, an unterminated quote and (when
    validating) bytes that are not UTF-8, each naming the line.
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
    offset = stream.tell()  # source offset of the window's first body byte
    line_no = 2  # the line the window's body starts on (counted when validating)
    decoder = codecs.getincrementaldecoder("utf-8")() if validate else None
    checked = 0  # body bytes already checked to be UTF-8
    index = first_index
    report = report if report is not None else ScanReport()
    try:
        while True:
            while filled <= budget and not eof:
                n = _read_into(stream, view[base + filled :])
                eof = n == 0
                filled += n
            if decoder is not None and checked < filled:
                _check_utf8(
                    decoder, window, base + checked, base + filled, base, offset, line_no, name, final=eof
                )
                checked = filled
            if filled == 0:
                return
            if eof and filled <= budget:
                end = base + filled
                if window.count(_QUOTE, base, end) % 2:
                    raise _unterminated_quote(bytes(window[base:end]), line_no, name)
                if not window[base:end].strip(b"\r\n"):
                    return  # only blank lines remain: nothing to import
            else:
                end = _last_boundary(window, base, base + min(filled, budget))
                if end == base:
                    raise _no_boundary(bytes(window[base : base + 2000]), line_no, max_part_bytes, name)
            cut = end - base
            report.parts += 1
            report.body_bytes += cut
            if validate:
                lines = window.count(_NEWLINE, base, end)
                report.lines += lines
                line_no += lines
            yield Part(index=index, data=view[:end], source_start=offset, source_end=offset + cut)
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
    window: bytearray,
    start: int,
    end: int,
    base: int,
    offset: int,
    line_no: int,
    name: str,
    *,
    final: bool,
) -> None:
    view = memoryview(window)
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
        line = line_no + window.count(_NEWLINE, base, bad)
        snippet = bytes(window[max(base, bad - 20) : bad + 10])
        raise SourceError(
            f"import source {name} is not UTF-8: line {line}, byte {offset + bad - base:,} ({snippet!r}). "
            "Marketo reads import files as UTF-8; re-export the file as UTF-8."
        ) from None


def _snippet(data: bytes) -> str:
    text = data[:120].decode("utf-8", "replace").replace("\r", "\\r").replace("\n", "\\n")
    return text + ("..." if len(data) > 120 else "")


def _unterminated_quote(tail: bytes, line_no: int, name: str) -> SourceError:
    # Slow path, on error only: let the csv module find the record where the quote opens.
    text = tail.decode("utf-8", "replace")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start_line = line_no
    try:
        for _ in reader:
            start_line = line_no + reader.line_num
    except csv.Error:
        pass
    record_start = _nth_line_offset(tail, start_line - line_no)
    return SourceError(
        f"import source {name} has an unterminated quote in the record starting on line {start_line}: "
        f"{_snippet(tail[record_start:])!r}. Close the quote or double the quote character inside the field."
    )


def _nth_line_offset(data: bytes, n: int) -> int:
    pos = 0
    for _ in range(n):
        nxt = data.find(_NEWLINE, pos)
        if nxt < 0:
            return pos
        pos = nxt + 1
    return pos


def _no_boundary(head: bytes, line_no: int, max_part_bytes: int, name: str) -> SourceError:
    return SourceError(
        f"import source {name}: the record starting on line {line_no} runs past {max_part_bytes:,} bytes "
        f"without ending ({_snippet(head)!r}). A record must fit in one part; most often a quote is not "
        "closed in that record."
    )


def scan_source(
    stream: IO[bytes],
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
    """A source that passed every check, and how it will be cut."""

    name: str
    header: Header
    parts: int
    body_bytes: int
    lines: int

    @property
    def empty(self) -> bool:
        """True for a header-only source: nothing to import, and no import call is made."""
        return self.parts == 0


def preflight(
    source: Any,
    *,
    object_type: str | ObjectType,
    file_format: str | FileFormat = FileFormat.CSV,
    source_conn_id: str | None = None,
    lookup_field: str | None = None,
    custom_object_name: str | None = None,
    describe: Describe | None = None,
    check_columns: bool = True,
    max_part_bytes: int = DEFAULT_MAX_PART_BYTES,
) -> Preflight:
    """Check a source completely before anything is uploaded.

    ``describe`` is :meth:`MarketoHook.describe`; it is called for custom objects (their dedupe
    fields) and, with ``check_columns``, to check the column names (program members: the program
    member and the lead fields). Raises :class:`SourceError` saying what to fix.
    """
    kind = ObjectType.parse(object_type)
    fmt = FileFormat.parse(file_format)
    name = source_name(source)
    with open_source(source, source_conn_id) as stream:
        header = read_header(stream, fmt, name)
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
            if kind is ObjectType.PROGRAM_MEMBERS:
                known += describe(ObjectType.LEADS)["fields"]
            check_known_columns(header, known, name)
        report = scan_source(stream, header, max_part_bytes=max_part_bytes, name=name)
    return Preflight(
        name=name, header=header, parts=report.parts, body_bytes=report.body_bytes, lines=report.lines
    )


@contextmanager
def source_parts(
    source: Any,
    *,
    file_format: str | FileFormat = FileFormat.CSV,
    source_conn_id: str | None = None,
    max_part_bytes: int = DEFAULT_MAX_PART_BYTES,
    resume_at: tuple[int, int] | None = None,
    expected_header: Sequence[str] | None = None,
) -> Iterator[Iterator[Part]]:
    """Open a source and cut it into parts: the same parts, in the same order, every time.

    ``resume_at=(index, offset)`` starts at part ``index``, which begins at source byte ``offset``
    (the end of the part before it): the source is read from there, not from its start. With
    ``expected_header`` (the names seen when earlier parts were cut) a source that changed since
    is a :class:`SourceError` rather than parts that do not line up.
    """
    name = source_name(source)
    with open_source(source, source_conn_id) as stream:
        header = read_header(stream, file_format, name)
        if expected_header is not None and tuple(expected_header) != header.names:
            raise SourceError(
                f"import source {name} changed since earlier parts were submitted: its header differs"
            )
        first_index = 0
        if resume_at is not None:
            first_index, offset = resume_at
            stream.seek(offset - 1)
            before = stream.read(1)
            if offset > header.source_offset and before != _NEWLINE:
                raise SourceError(
                    f"import source {name} changed since earlier parts were submitted: byte {offset:,} "
                    "is no longer the start of a record"
                )
        yield iter_parts(stream, header, max_part_bytes=max_part_bytes, name=name, first_index=first_index)
