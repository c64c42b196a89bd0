"""Where an import's rows come from, read as one stream of records.

A :class:`Source` names one file, a folder or prefix (ending in ``/``) or a glob, local or in any
object storage; the files may be compressed (gzip, bzip2, xz: recognised by their content) and may
lack a header line (``columns=`` names their columns), and their column names may be renamed to
Marketo's (``column_mapping=``). A :class:`QuerySource` is the result of a SQL query.

Either is read as one *logical body*: every file's records, decompressed, header lines removed,
concatenated in a stable (sorted) order. Offsets in that stream say where a part starts and ends,
so an import can resume after the last part Marketo accepted. The cutter in
:mod:`marketo_provider.files` turns the stream into parts, each starting with the one header line.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import datetime
import difflib
import functools
import glob
import io
import logging
import lzma
import os
import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import IO, Any

from marketo_provider import api
from marketo_provider.api import FileFormat, MarketoValueError

log = logging.getLogger(__name__)

# Parts stay safely under Marketo's limit (multipart framing is not counted against the file).
DEFAULT_MAX_PART_BYTES = 9_500_000
DEFAULT_FETCH_SIZE = 10_000
_BOM = codecs.BOM_UTF8
_QUOTE = b'"'
_NEWLINE = b"\n"
_HEAD_BYTES = 64 * 1024
_MAX_HEADER_BYTES = 1024 * 1024
_IN_CHUNK = 256 * 1024  # compressed bytes read at a time
_OUT_CHUNK = 1024 * 1024  # decompressed bytes produced at a time: bounds the memory beside the part


class SourceError(MarketoValueError):
    """The import source is missing, unreadable or not a file Marketo can import; nothing was sent."""


# --------------------------------------------------------------------------------------------
# What a source is
# --------------------------------------------------------------------------------------------


def _is_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def _check_max_part_bytes(max_part_bytes: Any) -> int:
    if isinstance(max_part_bytes, bool) or not isinstance(max_part_bytes, int) or max_part_bytes < 1:
        raise SourceError(f"max_part_bytes must be a positive whole number of bytes, not {max_part_bytes!r}")
    if max_part_bytes > api.MAX_IMPORT_FILE_BYTES:
        raise SourceError(
            f"max_part_bytes is {max_part_bytes:,}; Marketo takes files under {api.MAX_IMPORT_FILE_BYTES:,} bytes"
        )
    return max_part_bytes


def _check_columns(columns: Any, fmt: FileFormat) -> tuple[str, ...] | None:
    if columns is None:
        return None
    if isinstance(columns, str):
        raise SourceError(f"columns must be a list of column names, not the text {columns!r}")
    names = tuple(columns)
    if not names:
        raise SourceError(
            "columns is empty: give the names of the files' columns in order, or leave it unset"
        )
    bad = [n for n in names if not isinstance(n, str)]
    if bad:
        raise SourceError(f"columns must be names (text), not {bad[0]!r}")
    problems = api.header_name_problems(names, fmt)
    if problems:
        raise SourceError(f"columns {problems[0]}")
    return names


def _check_mapping(mapping: Any) -> Mapping[str, str]:
    if mapping is None:
        return MappingProxyType({})
    if not isinstance(mapping, Mapping):
        raise SourceError(
            f"column_mapping must be a mapping of source names to Marketo names, not {mapping!r}"
        )
    out: dict[str, str] = {}
    by_target: dict[str, str] = {}
    for key, value in mapping.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise SourceError(f"column_mapping must map names to names (text), not {key!r}: {value!r}")
        if not value.strip() or value != value.strip():
            raise SourceError(
                f"column_mapping maps {key!r} to {value!r}; give a Marketo field name without surrounding spaces"
            )
        if value in by_target:
            raise SourceError(
                f"column_mapping maps both {by_target[value]!r} and {key!r} to {value!r}; "
                "each Marketo field may come from one column only"
            )
        by_target[value] = key
        out[key] = value
    return MappingProxyType(out)


@dataclass(frozen=True)
class Source:
    """Where an import's rows come from: built and checked once with :meth:`of`.

    :param location: a local path, a ``file://`` URI, any ObjectStoragePath URI or an
        ObjectStoragePath; a folder or prefix ending in ``/`` (every file under it, names starting
        with ``.`` or ``_`` left out); or a glob such as ``s3://bucket/unload/data_*.csv.gz``.
    :param conn_id: the connection for object storage (e.g. ``aws_default``).
    :param file_format: csv, tsv or ssv.
    :param columns: the column names when the files have no header line (every line is data).
    :param column_mapping: source column name -> Marketo field name; only the header changes.
    :param max_part_bytes: the largest part to upload.
    """

    location: Any
    conn_id: str | None = None
    file_format: FileFormat = FileFormat.CSV
    columns: tuple[str, ...] | None = None
    column_mapping: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    max_part_bytes: int = DEFAULT_MAX_PART_BYTES

    @classmethod
    def of(
        cls,
        location: Any,
        *,
        conn_id: str | None = None,
        file_format: str | FileFormat = FileFormat.CSV,
        columns: Iterable[str] | None = None,
        column_mapping: Mapping[str, str] | None = None,
        max_part_bytes: int = DEFAULT_MAX_PART_BYTES,
    ) -> Source:
        """A checked source; raises :class:`SourceError` saying what to fix."""
        if isinstance(location, Source):
            return location
        if location is None or (isinstance(location, str) and not location.strip()):
            raise SourceError("the import source is empty: give a path, URI, folder or glob")
        if isinstance(location, os.PathLike) and not hasattr(location, "protocol"):
            location = os.fspath(location)
        fmt = FileFormat.parse(file_format)
        return cls(
            location=location,
            conn_id=conn_id or None,
            file_format=fmt,
            columns=_check_columns(columns, fmt),
            column_mapping=_check_mapping(column_mapping),
            max_part_bytes=_check_max_part_bytes(max_part_bytes),
        )

    @property
    def name(self) -> str:
        """How messages name the source: its path, URI or pattern, never credentials."""
        return str(self.location)

    def __str__(self) -> str:
        return self.name

    @property
    def is_local(self) -> bool:
        return isinstance(self.location, str) and "://" not in self.location


@dataclass(frozen=True)
class QuerySource:
    """The rows of a SQL query run through an Airflow SQL connection (the common.sql ``DbApiHook``
    family), streamed with ``fetchmany`` into CSV; the result's column names are the header.

    A retried import re-runs the query and skips what was already submitted, which is right only
    when the query returns the same rows in the same order (``ORDER BY`` a unique key)."""

    sql: str
    conn_id: str
    parameters: Any = None
    file_format: FileFormat = FileFormat.CSV
    column_mapping: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    max_part_bytes: int = DEFAULT_MAX_PART_BYTES
    fetch_size: int = DEFAULT_FETCH_SIZE
    columns: None = None  # a query always names its columns

    @classmethod
    def of(
        cls,
        sql: str,
        *,
        conn_id: str,
        parameters: Any = None,
        file_format: str | FileFormat = FileFormat.CSV,
        column_mapping: Mapping[str, str] | None = None,
        max_part_bytes: int = DEFAULT_MAX_PART_BYTES,
        fetch_size: int = DEFAULT_FETCH_SIZE,
    ) -> QuerySource:
        if not isinstance(sql, str) or not sql.strip():
            raise SourceError("sql is empty: give the query whose rows to import")
        if not conn_id:
            raise SourceError("conn_id is empty: name the Airflow connection of the database to query")
        if isinstance(fetch_size, bool) or not isinstance(fetch_size, int) or fetch_size < 1:
            raise SourceError(f"fetch_size must be a positive whole number of rows, not {fetch_size!r}")
        return cls(
            sql=sql,
            conn_id=conn_id,
            parameters=parameters,
            file_format=FileFormat.parse(file_format),
            column_mapping=_check_mapping(column_mapping),
            max_part_bytes=_check_max_part_bytes(max_part_bytes),
            fetch_size=fetch_size,
        )

    @property
    def name(self) -> str:
        return f"query on {self.conn_id}"

    def __str__(self) -> str:
        return self.name


AnySource = Source | QuerySource


def as_source(
    source: Any,
    *,
    file_format: str | FileFormat | None = None,
    source_conn_id: str | None = None,
    max_part_bytes: int | None = None,
) -> AnySource:
    """A :class:`Source` from a location and the older keyword arguments, or the given source when
    it is one already (the keyword arguments must then agree with it or be left out)."""
    if isinstance(source, (Source, QuerySource)):
        given = {
            "file_format": None if file_format is None else FileFormat.parse(file_format),
            "conn_id": source_conn_id or None,
            "max_part_bytes": max_part_bytes,
        }
        for key, value in given.items():
            if value is None or (key == "conn_id" and isinstance(source, QuerySource)):
                continue
            if getattr(source, key) != value:
                raise MarketoValueError(
                    f"{key} {_shown(value)} given beside the source disagrees with the source's "
                    f"{_shown(getattr(source, key))}; give the same value on both, or leave it out"
                )
        return source
    return Source.of(
        source,
        conn_id=source_conn_id,
        file_format=file_format if file_format is not None else FileFormat.CSV,
        max_part_bytes=max_part_bytes if max_part_bytes is not None else DEFAULT_MAX_PART_BYTES,
    )


def _shown(value: Any) -> str:
    return repr(value.value if isinstance(value, FileFormat) else value)


# --------------------------------------------------------------------------------------------
# Finding the files
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceFile:
    """One file of a source."""

    name: str  # full path or URI, for messages
    label: str  # short name for part origins: the path under the folder, prefix or glob root
    size: int | None
    open: Callable[[], IO[bytes]]


def _skipped(relative: str) -> bool:
    # Markers and side files that unload and Spark-style writers leave beside the data.
    return any(piece.startswith((".", "_")) for piece in relative.split("/") if piece)


def _glob_root(pattern: str) -> str:
    first = min(i for i, c in enumerate(pattern) if c in "*?[")
    return pattern[: pattern.rfind("/", 0, first) + 1]


def list_files(source: Source) -> list[SourceFile]:
    """The files of a source in the order they are read (sorted by path). Raises
    :class:`SourceError` for a missing file or folder and for a pattern no file matches."""
    if source.is_local:
        return _list_local(source.location)
    return _list_object_storage(source)


def _local_file(path: str, label: str) -> SourceFile:
    return SourceFile(name=path, label=label, size=os.path.getsize(path), open=lambda: open(path, "rb"))


def _list_local(location: str) -> list[SourceFile]:
    if _is_glob(location):
        root = _glob_root(location)
        paths = sorted(p for p in glob.glob(location, recursive=True) if os.path.isfile(p))
        paths = [p for p in paths if not _skipped(p[len(root) :])]
        if not paths:
            raise SourceError(f"no files match the import source {location}")
        return [_local_file(p, p[len(root) :] or os.path.basename(p)) for p in paths]
    if location.endswith(("/", os.sep)):
        if not os.path.isdir(location):
            raise SourceError(f"import source folder {location} does not exist")
        found = []
        for folder, dirs, files in os.walk(location):
            dirs[:] = [d for d in dirs if not d.startswith((".", "_"))]
            found += [os.path.join(folder, f) for f in files if not f.startswith((".", "_"))]
        if not found:
            raise SourceError(f"import source folder {location} has no files")
        return [_local_file(p, os.path.relpath(p, location)) for p in sorted(found)]
    if os.path.isdir(location):
        raise SourceError(
            f"import source {location} is a folder; name a file, or end the location with '/' "
            "to import every file in it"
        )
    if not os.path.exists(location):
        raise SourceError(f"import source {location} does not exist")
    return [_local_file(location, os.path.basename(location))]


def _list_object_storage(source: Source) -> list[SourceFile]:
    from airflow.sdk import ObjectStoragePath

    name = source.name
    try:
        path = (
            source.location
            if isinstance(source.location, ObjectStoragePath)
            else ObjectStoragePath(name, conn_id=source.conn_id)
        )
        fs = path.fs
        if _is_glob(name) or name.endswith("/"):
            root = _glob_root(name) if _is_glob(name) else name
            root_path = fs._strip_protocol(root).rstrip("/")
            if _is_glob(name):
                infos = fs.glob(fs._strip_protocol(name), detail=True)
            else:
                if not fs.isdir(root_path):
                    raise SourceError(f"import source folder {name} does not exist")
                infos = fs.find(root_path, detail=True)
            files = []
            for p, info in sorted(infos.items()):
                if info.get("type") != "file":
                    continue
                relative = p[len(root_path) :].lstrip("/") if p.startswith(root_path) else p
                if _skipped(relative):
                    continue
                files.append(
                    SourceFile(
                        name=root + relative,
                        label=relative,
                        size=info.get("size"),
                        open=functools.partial(fs.open, p, "rb"),
                    )
                )
            if not files:
                what = "no files match the import source" if _is_glob(name) else "import source folder"
                raise SourceError(f"{what} {name}" + ("" if _is_glob(name) else " has no files"))
            return files
        if not path.exists():
            raise SourceError(f"import source {name} does not exist")
        if path.is_dir():
            raise SourceError(
                f"import source {name} is a folder; name a file, or end the location with '/' "
                "to import every file in it"
            )
        info = fs.info(path.path)
        label = name.rstrip("/").rsplit("/", 1)[-1]
        return [SourceFile(name=name, label=label, size=info.get("size"), open=lambda: path.open("rb"))]
    except SourceError:
        raise
    except Exception as exc:  # fsspec back ends raise many kinds; all mean "cannot read it"
        raise SourceError(f"import source {name} cannot be read: {exc}") from exc


# --------------------------------------------------------------------------------------------
# Opening one file: what it is, and its content as a stream
# --------------------------------------------------------------------------------------------

_MAGIC = {"gzip": b"\x1f\x8b", "bzip2": b"BZh", "xz": b"\xfd7zXZ\x00"}


def _new_decompressor(kind: str) -> Any:
    if kind == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if kind == "bzip2":
        return bz2.BZ2Decompressor()
    return lzma.LZMADecompressor(format=lzma.FORMAT_XZ)


def compression_of(first: bytes) -> str | None:
    """``gzip``, ``bzip2`` or ``xz`` from a file's first bytes, or None for anything else."""
    if first.startswith(_MAGIC["gzip"]):
        return "gzip"
    if first.startswith(_MAGIC["bzip2"]) and first[3:4].isdigit():
        return "bzip2"
    if first.startswith(_MAGIC["xz"]):
        return "xz"
    return None


def check_looks_like_text(first: bytes, name: str) -> None:
    """Refuse a file that is evidently not delimited UTF-8 text, saying what it looks like."""

    def refuse(what: str, fix: str) -> SourceError:
        return SourceError(f"import source {name} looks like {what}, not delimited text; {fix}")

    if first.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        if b"xl/" in first or b"[Content_Types].xml" in first or name.lower().endswith((".xlsx", ".xlsm")):
            raise refuse(
                "an Excel .xlsx workbook (a zip file)", "save the sheet as 'CSV UTF-8' and import that"
            )
        raise refuse(
            "a zip archive", "unzip it and import the CSV file inside (gzip, bzip2 and xz are read as is)"
        )
    if first.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        raise refuse(
            "an Excel .xls workbook (an Office file)", "save the sheet as 'CSV UTF-8' and import that"
        )
    if first.startswith(b"PAR1"):
        raise refuse("a Parquet file", "unload the data as CSV (gzip-compressed if you like)")
    if first.startswith(b"Obj\x01"):
        raise refuse("an Avro file", "unload the data as CSV (gzip-compressed if you like)")
    if first.startswith(b"ORC"):
        raise refuse("an ORC file", "unload the data as CSV (gzip-compressed if you like)")
    if first.startswith(b"\x28\xb5\x2f\xfd"):
        raise refuse("a zstd-compressed file", "compress it with gzip, bzip2 or xz, or not at all")
    if first.startswith(b"%PDF"):
        raise refuse("a PDF document", "export the data as CSV")
    if first.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SourceError(
            f"import source {name} is UTF-16 text (Excel's 'Unicode Text' writes this); "
            "Marketo reads UTF-8: save it as 'CSV UTF-8'"
        )
    if b"\0" in first:
        raise SourceError(
            f"import source {name} holds NUL bytes: it is a binary file or UTF-16 text, not UTF-8 "
            "delimited text; export the data as CSV in UTF-8"
        )
    if b"\r" in first and b"\n" not in first:
        raise SourceError(
            f"import source {name} uses old Mac line endings (CR only); convert its line endings to "
            "LF or CR LF (for example with `tr '\\r' '\\n'`)"
        )


class _Decompressed:
    """A compressed stream read as its decompressed bytes, at most a MiB at a time. Concatenated
    streams (``cat a.gz b.gz``, parallel compressors) are read one after the other."""

    def __init__(self, raw: Any, kind: str, name: str) -> None:
        self._raw = raw
        self.kind = kind
        self._name = name
        self._d = _new_decompressor(kind)
        self._zlib = kind == "gzip"
        self._in = b""

    def _broken(self, why: str) -> SourceError:
        return SourceError(f"import source {self._name} is not a valid {self.kind} file: {why}")

    def read(self, size: int = -1) -> bytes:
        size = _OUT_CHUNK if size < 0 else min(size, _OUT_CHUNK)
        while True:
            d = self._d
            if d.eof:
                rest = d.unused_data or self._raw.read(_IN_CHUNK)
                while rest and not rest.strip(b"\0"):  # zero padding after the last stream
                    rest = self._raw.read(_IN_CHUNK)
                if not rest:
                    return b""
                if compression_of(rest) != self.kind:
                    raise self._broken(f"it has other data after the end of its {self.kind} stream")
                self._d = _new_decompressor(self.kind)
                self._in = rest
                continue
            if not self._in and (self._zlib or d.needs_input):
                self._in = self._raw.read(_IN_CHUNK)
                if not self._in:
                    raise self._broken("it ends in the middle of its data (truncated)")
            try:
                out = d.decompress(self._in, size)
            except (zlib.error, OSError, EOFError, lzma.LZMAError) as exc:
                raise self._broken(str(exc)) from None
            self._in = d.unconsumed_tail if self._zlib else b""
            if out:
                return out

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._raw.close()


def _read_up_to(stream: Any, size: int) -> bytes:
    chunks = []
    got = 0
    while got < size:
        data = stream.read(size - got)
        if not data:
            break
        chunks.append(data)
        got += len(data)
    return b"".join(chunks)


def _read_into(stream: Any, view: memoryview) -> int:
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


def _open_error(name: str, exc: BaseException) -> SourceError:
    if isinstance(exc, FileNotFoundError):
        return SourceError(f"import source {name} does not exist")
    if isinstance(exc, PermissionError):
        return SourceError(f"import source {name} cannot be read: permission denied")
    return SourceError(f"import source {name} cannot be read: {exc}")


@dataclass
class _Content:
    """A file's content as a stream (decompressed when it is compressed), and its first bytes."""

    stream: Any
    first: bytes  # the first bytes of the content, already read from ``stream``
    kind: str | None
    raw: IO[bytes]

    @property
    def empty(self) -> bool:
        """Nothing but line breaks, and nothing after them (0 bytes, or blank lines only)."""
        return not self.first.strip(b"\r\n") and len(self.first) < _HEAD_BYTES

    def close(self) -> None:
        self.raw.close()


def _open_content(file: SourceFile) -> _Content:
    try:
        raw = file.open()
    except Exception as exc:
        raise _open_error(file.name, exc) from exc
    try:
        peek = _read_up_to(raw, 8)
        kind = compression_of(peek)
        if kind is None:
            first = peek + _read_up_to(raw, _HEAD_BYTES - len(peek))
            content = _Content(stream=raw, first=first, kind=None, raw=raw)
        else:
            decompressed = _Decompressed(_Prefixed(peek, raw), kind, file.name)
            first = _read_up_to(decompressed, _HEAD_BYTES)
            content = _Content(stream=decompressed, first=first, kind=kind, raw=raw)
        check_looks_like_text(content.first[:_HEAD_BYTES], file.name)
        return content
    except BaseException:
        raw.close()
        raise


class _Prefixed:
    """Bytes already read, then the rest of a stream."""

    def __init__(self, head: bytes, rest: Any) -> None:
        self._head = head
        self._pos = 0
        self._rest = rest

    def read(self, size: int = -1) -> bytes:
        if self._pos < len(self._head):
            end = len(self._head) if size < 0 else self._pos + size
            data = self._head[self._pos : end]
            self._pos += len(data)
            return data
        return self._rest.read(size)

    def readinto(self, buffer: Any) -> int:
        if self._pos < len(self._head):
            data = self.read(len(buffer))
            buffer[: len(data)] = data
            return len(data)
        return _read_into(self._rest, memoryview(buffer).cast("B"))

    def close(self) -> None:
        self._rest.close()


# --------------------------------------------------------------------------------------------
# The header
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    """The names every part's header line carries, and the exact bytes of that line."""

    names: tuple[str, ...]  # Marketo's names: the source's, renamed by column_mapping
    line: bytes  # what every part starts with, line terminator included, byte order mark removed
    source_offset: int  # where the body starts in the (first) file
    delimiter: str = ","
    source_names: tuple[str, ...] = ()  # as the source names them; () when the same as ``names``


def record_end(data: bytes, start: int = 0) -> int:
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


@dataclass(frozen=True)
class _FirstRecord:
    bom: int
    line: bytes  # without the byte order mark, terminator included
    names: tuple[str, ...]
    rest: bytes  # what was read after the line


def _first_record(first: bytes, stream: Any, fmt: FileFormat, name: str) -> _FirstRecord:
    """Read and parse a file's first record (its header line, when it has one)."""
    head = first
    bom = len(_BOM) if head.startswith(_BOM) else 0
    end = record_end(head, bom)
    while end < 0:
        more = stream.read(_HEAD_BYTES)
        if not more:
            head += b"\n"
            end = record_end(head, bom)
            if end < 0:
                raise SourceError(f"the header of {name} has an unterminated quote")
            head = head[:-1]
            end = min(end, len(head))
            break
        head += more
        if len(head) > _MAX_HEADER_BYTES:
            raise SourceError(f"the first line of {name} is over 1 MB long; is the header missing?")
        end = record_end(head, bom)
    line = head[bom:end]
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(
            f"the header of {name} is not UTF-8 (byte {exc.start + bom}: {line[exc.start : exc.start + 4]!r}); "
            "save the file as UTF-8"
        ) from None
    if not text.strip():
        raise SourceError(
            f"the first line of {name} is blank; the first line must be the header of Marketo field names"
        )
    if "\r" in text.rstrip("\r\n"):
        raise SourceError(
            f"import source {name} uses old Mac line endings (CR only); convert its line endings to LF or CR LF"
        )
    try:
        names = next(csv.reader([text.rstrip("\r\n")], delimiter=fmt.delimiter, strict=True))
    except csv.Error as exc:
        raise SourceError(f"the header of {name} cannot be read as {fmt.value}: {exc}") from None
    return _FirstRecord(bom=bom, line=line, names=tuple(names), rest=head[end:])


def header_problem(names: Iterable[str], fmt: FileFormat, name: str) -> SourceError | None:
    problems = api.header_name_problems(names, fmt)
    return SourceError(f"the header of {name} {problems[0]}") if problems else None


def encode_header(names: Sequence[str], fmt: FileFormat, terminator: bytes = b"\n") -> bytes:
    out = io.StringIO()
    csv.writer(out, delimiter=fmt.delimiter, lineterminator=terminator.decode()).writerow(names)
    return out.getvalue().encode("utf-8")


def _terminator(line: bytes) -> bytes:
    return b"\r\n" if line.endswith(b"\r\n") else b"\n"


def map_header(
    source_names: tuple[str, ...],
    line: bytes,
    offset: int,
    fmt: FileFormat,
    mapping: Mapping[str, str],
    name: str,
) -> Header:
    """The header Marketo sees: ``source_names`` renamed by ``mapping``, every rule checked."""
    if not mapping:
        problem = header_problem(source_names, fmt, name)
        if problem:
            raise problem
        return Header(names=source_names, line=line, source_offset=offset, delimiter=fmt.delimiter)
    missing = [k for k in mapping if k not in source_names]
    if missing:
        hints = []
        for key in missing:
            close = difflib.get_close_matches(key, source_names, n=1, cutoff=0.6)
            hints.append(f"{key!r}" + (f" (is {close[0]!r} meant?)" if close else ""))
        raise SourceError(
            f"column_mapping names columns that {name} does not have: {', '.join(hints)}; "
            f"its columns are {', '.join(repr(n) for n in source_names)}"
        )
    seen: dict[str, str] = {}
    for column in source_names:
        target = mapping.get(column, column)
        if target in seen:
            raise SourceError(
                f"column_mapping gives {name} the column {target!r} twice: from {seen[target]!r} and {column!r}; "
                "map one of them to another name"
            )
        seen[target] = column
    names = tuple(mapping.get(n, n) for n in source_names)
    problem = header_problem(names, fmt, name)
    if problem:
        raise problem
    return Header(
        names=names,
        line=encode_header(names, fmt, _terminator(line)),
        source_offset=offset,
        delimiter=fmt.delimiter,
        source_names=source_names,
    )


# --------------------------------------------------------------------------------------------
# The logical body: every file's records, one after the other
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Where:
    """A place in a source, for messages: ``{prefix}line {line}, {unit} {byte}``."""

    prefix: str
    line: int
    byte: int
    unit: str = "byte"


class _BodyReader:
    """One file's body: what was read past its header, then the rest of its content. Counts the
    quote characters it hands out when asked (a file must not end inside a quoted field)."""

    def __init__(self, content: _Content, head: bytes, count_quotes: bool) -> None:
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
            chunk = self.content.stream.read(min(len(view), _OUT_CHUNK))
        else:
            return _read_into(self.content.stream, view)
        n = len(chunk)
        view[:n] = chunk
        if self._count:
            self.quotes += chunk.count(_QUOTE)
        return n

    @property
    def direct(self) -> bool:
        """True when reads go straight to a plain, seekable file (it may be seeked)."""
        return self.content.kind is None and not self._head and _seekable(self.content.stream)


def _seekable(stream: Any) -> bool:
    try:
        return bool(stream.seekable())
    except Exception:
        return False


@dataclass
class _Segment:
    """Where one file's body sits in the logical stream."""

    file: SourceFile
    kind: str | None
    start: int  # logical offset of the file's first body byte
    content_start: int  # the same byte's offset in the file's (decompressed) content
    end: int | None = None  # logical offset just past its last body byte, once known


@dataclass
class _Open:
    file: SourceFile
    reader: _BodyReader
    header_len: int
    segment: _Segment | None = None


class BodyStream:
    """The logical body of a file source: each file's body (decompressed, header removed) in
    order, with a line break added between two files when the first does not end with one.

    Reads return bytes from one file at a time; ``tell()`` is the logical offset. Every later
    file's header must match the first file's (or, with ``columns``, no file has a header)."""

    def __init__(self, source: Source, files: list[SourceFile], header: Header, first: _Open | None) -> None:
        self.source = source
        self.header = header
        self._files = files
        self._next = 1
        self._current = first
        self._multi = len(files) > 1
        self._pos = 0
        self._last = _NEWLINE[0]
        self._owed = b""  # a line break to add before the next file's records
        self._stash = b""  # bytes read from a file, not handed out yet
        self._terminator = _terminator(header.line)
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
                tmp = bytearray(_HEAD_BYTES)
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

    def _start_segment(self, cur: _Open, at: int) -> None:
        cur.segment = _Segment(cur.file, cur.reader.content.kind, at, cur.header_len)
        self._segments.append(cur.segment)

    def read(self, size: int = _OUT_CHUNK) -> bytes:
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
            if self._last != _NEWLINE[0]:
                self._owed = self._terminator
        if check and self._multi and cur.reader.quotes % 2:
            raise scan_quotes(cur.file, self.header.delimiter) or SourceError(
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
            found = scan_quotes(file, self.header.delimiter)
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
        scratch = memoryview(bytearray(min(_OUT_CHUNK, max(offset, 1))))
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
                    stream.seek(cur.header_len + done + step - 1)
                    self._mark_read(cur, lead, step, stream.read(1))
                    continue
            self.readinto(scratch[: min(len(scratch), offset - self._pos)])
        if offset and self._last != _NEWLINE[0]:
            raise changed

    def _mark_read(self, cur: _Open, lead: int, n: int, last: bytes) -> None:
        if lead:
            self._pos += lead
            self._owed = b""
        if cur.segment is None:
            self._start_segment(cur, self._pos)
        self._pos += n
        if last:
            self._last = last[0]

    # -- saying where

    def origin(self, start: int, end: int) -> str:
        """The files and byte ranges a part of logical bytes ``start``..``end`` came from."""
        self._segments = [s for s in self._segments if s.end is None or s.end > start]
        pieces = []
        for seg in self._segments:
            seg_end = seg.end if seg.end is not None else end
            if seg.start >= end or seg_end <= start:
                continue
            a = seg.content_start + max(start, seg.start) - seg.start
            b = seg.content_start + min(end, seg_end) - seg.start
            unit = "bytes" if seg.kind is None else f"decompressed {seg.kind} bytes"
            pieces.append(f"{seg.file.label} {unit} {a:,}-{b:,}")
        return "; ".join(pieces) or f"{self.source.name} (no bytes)"

    def where(self, offset: int) -> Where | None:
        """The file, line and byte of logical ``offset`` (error path: re-reads the file to count lines)."""
        seg = None
        for s in self._segments:
            if s.start <= offset:
                seg = s
        if seg is None:
            return None
        at = seg.content_start + offset - seg.start
        content = _open_content(seg.file)
        try:
            lines = content.first[:at].count(_NEWLINE)
            counted = len(content.first)
            while counted < at:
                data = content.stream.read(min(_OUT_CHUNK, at - counted))
                if not data:
                    break
                lines += data.count(_NEWLINE)
                counted += len(data)
        finally:
            content.close()
        prefix = f"{seg.file.label}, " if self._multi else ""
        unit = "byte" if seg.kind is None else f"decompressed {seg.kind} byte"
        return Where(prefix=prefix, line=lines + 1, byte=at, unit=unit)


def open_file_body(source: Source, file: SourceFile, header: Header, *, count_quotes: bool) -> _Open | None:
    """Open one file, check its header against the source's, and leave it at its body. None for an
    empty file."""
    content = _open_content(file)
    try:
        if content.empty:
            content.close()
            return None
        fmt = source.file_format
        if source.columns is not None:
            bom = len(_BOM) if content.first.startswith(_BOM) else 0
            _refuse_header_in_headerless(source, file, content, bom)
            return _body_open(file, content, bom, content.first[bom:], count_quotes)
        record = _first_record(content.first, content.stream, fmt, file.name)
        expected = header.source_names or header.names
        if record.names != expected:
            raise SourceError(
                f"the header of {file.name} differs from the first file's: it has "
                f"{', '.join(repr(n) for n in record.names)}, the first file "
                f"{', '.join(repr(n) for n in expected)}; every file of {source.name} needs the same columns"
            )
        return _body_open(file, content, record.bom + len(record.line), record.rest, count_quotes)
    except BaseException:
        content.close()
        raise


def _body_open(file: SourceFile, content: _Content, header_len: int, rest: bytes, count: bool) -> _Open:
    if content.kind is None and _seekable(content.stream):
        content.stream.seek(header_len)  # read the body straight from the file, without a copy
        rest = b""
    return _Open(file=file, reader=_BodyReader(content, rest, count), header_len=header_len)


def _refuse_header_in_headerless(source: Source, file: SourceFile, content: _Content, bom: int) -> None:
    end = record_end(content.first, bom)
    if end < 0:
        return
    try:
        first = next(
            csv.reader(
                [content.first[bom:end].decode("utf-8").rstrip("\r\n")],
                delimiter=source.file_format.delimiter,
            )
        )
    except (UnicodeDecodeError, csv.Error, StopIteration):
        return
    if tuple(first) == source.columns:
        raise SourceError(
            f"{file.name} starts with a header line ({', '.join(first)}) although columns= says the files "
            "have none; leave columns unset to read the header from the files"
        )


@contextmanager
def open_body(source: AnySource) -> Iterator[tuple[Header, Any]]:
    """Open a source as ``(header, body)``: the header Marketo will see and the logical body
    stream (``readinto``, ``tell``, ``origin``, ``where``, ``skip_to``)."""
    if isinstance(source, QuerySource):
        with open_query(source) as opened:
            yield opened
        return
    files = list_files(source)
    fmt = source.file_format
    first: _Open | None = None
    index = 0
    header: Header | None = None
    if source.columns is not None:
        header = map_header(
            source.columns, encode_header(source.columns, fmt), 0, fmt, source.column_mapping, source.name
        )
        if not header.source_names:
            header = Header(header.names, header.line, 0, header.delimiter, source.columns)
    # The first file with content gives the header; empty files before it are skipped.
    while index < len(files) and first is None:
        file = files[index]
        index += 1
        if header is not None:
            first = open_file_body(source, file, header, count_quotes=len(files) > 1)
            continue
        content = _open_content(file)
        try:
            if content.empty:
                if len(files) == 1:
                    raise SourceError(
                        f"import source {file.name} is empty; it needs a header line of Marketo field names"
                    )
                content.close()
                continue
            record = _first_record(content.first, content.stream, fmt, file.name)
            header = map_header(
                record.names,
                record.line,
                record.bom + len(record.line),
                fmt,
                source.column_mapping,
                source.name if len(files) == 1 else file.name,
            )
            if not header.source_names:
                header = Header(
                    header.names, header.line, header.source_offset, header.delimiter, record.names
                )
            first = _body_open(file, content, record.bom + len(record.line), record.rest, len(files) > 1)
        except BaseException:
            content.close()
            raise
    if header is None:
        raise SourceError(
            f"every file of import source {source.name} is empty; they need a header line of Marketo field names"
        )
    body = BodyStream(source, files, header, first)
    body._next = index
    try:
        yield header, body
    finally:
        body.close()


# --------------------------------------------------------------------------------------------
# Quotes that do not close: finding the record to blame
# --------------------------------------------------------------------------------------------


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
        if m is not None and m.end() > pos and (m.end() == n or data[m.end() - 1 : m.end()] == _NEWLINE):
            pos = m.end()
            continue
        return _stray_in_record(data, pos, delim)
    return None


def _stray_in_record(data: bytes, pos: int, delim: bytes) -> int | None:
    n = len(data)
    i = pos
    while i < n:
        if data[i : i + 1] == _QUOTE:  # a quoted field
            j = i + 1
            while True:
                k = data.find(_QUOTE, j)
                if k < 0:
                    return None  # still open at the end of the data
                if data[k + 1 : k + 2] == _QUOTE:
                    j = k + 2
                    continue
                break
            i = k + 1
            if i < n and data[i : i + 1] not in (delim, b"\r", _NEWLINE):
                return i if data[i : i + 1] == _QUOTE else k  # text right after a closing quote
        else:
            ends = [e for e in (data.find(delim, i), data.find(_NEWLINE, i)) if e >= 0]
            end = min(ends) if ends else n
            q = data.find(_QUOTE, i, end)
            if q >= 0:
                return q
            i = end
        if i >= n or data[i : i + 1] == _NEWLINE:
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
    content = _open_content(file)
    try:
        buf = content.first
        pos = 0
        line = 1
        while True:
            m = pattern.match(buf, pos)
            if m is not None and m.end() > pos and buf[m.end() - 1 : m.end()] == _NEWLINE:
                line += buf.count(_NEWLINE, pos, m.end())
                pos = m.end()
                continue
            stray = _stray_in_record(buf, pos, delim)
            if stray is not None:
                at = line + buf.count(_NEWLINE, pos, stray)
                record = f" (in the record starting on line {line})" if at != line else ""
                return SourceError(
                    f"import source {file.name} has a stray quote in a field on line {at}{record}: "
                    f"{snippet(_line_at(buf, stray))!r}. Quote the whole field and double the quote inside it "
                    '("5"" screen"), or remove the quote.'
                )
            more = content.stream.read(_OUT_CHUNK) if len(buf) - pos < 16 * _OUT_CHUNK else b""
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


def _line_at(data: bytes, index: int) -> bytes:
    start = data.rfind(_NEWLINE, 0, index) + 1
    end = data.find(_NEWLINE, index)
    return data[start : end if end >= 0 else len(data)]


def snippet(data: bytes) -> str:
    text = data[:120].decode("utf-8", "replace").replace("\r", "\\r").replace("\n", "\\n")
    return text + ("..." if len(data) > 120 else "")


# --------------------------------------------------------------------------------------------
# Rows of a query as CSV
# --------------------------------------------------------------------------------------------


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, Decimal)):
        return "" if value is None else ("true" if value is True else "false" if value is False else value)
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise SourceError(
            "the query returns a binary column; select it as text (e.g. encode it) or leave it out"
        )
    return str(value)


class RowsBody:
    """Rows (from ``fetchmany``) written as CSV, read as a stream: the logical body of a query.
    Holds one batch of rows at a time. The line terminator is CR LF, so that a field holding a
    lone CR or LF is quoted."""

    def __init__(self, fetch: Callable[[], Sequence[Sequence[Any]]], fmt: FileFormat, name: str) -> None:
        self._fetch = fetch
        self._name = name
        self._out = io.StringIO()
        self._writer = csv.writer(self._out, delimiter=fmt.delimiter, lineterminator="\r\n")
        self._pending = b""
        self._at = 0
        self._pos = 0
        self._done = False
        self._last = _NEWLINE[0]
        self.rows = 0

    def tell(self) -> int:
        return self._pos

    def _refill(self) -> bool:
        while self._at >= len(self._pending):
            if self._done:
                return False
            rows = self._fetch()
            if not rows:
                self._done = True
                return False
            self._out.seek(0)
            self._out.truncate()
            self._writer.writerows([v if type(v) is str else _cell(v) for v in row] for row in rows)
            self._pending = self._out.getvalue().encode("utf-8")
            self._at = 0
            self.rows += len(rows)
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._refill():
            return 0
        n = min(len(buffer), len(self._pending) - self._at)
        buffer[:n] = self._pending[self._at : self._at + n]
        self._at += n
        self._pos += n
        self._last = self._pending[self._at - 1]
        return n

    def skip_to(self, offset: int) -> None:
        log.warning(
            "Resuming %s: the query runs again and its first %s bytes of CSV, already submitted, are "
            "skipped. This is right only when the query returns the same rows in the same order "
            "(ORDER BY a unique key).",
            self._name,
            f"{offset:,}",
        )
        while self._pos < offset:
            if not self._refill():
                break
            n = min(offset - self._pos, len(self._pending) - self._at)
            self._at += n
            self._pos += n
            self._last = self._pending[self._at - 1]
        if self._pos < offset or (offset and self._last != _NEWLINE[0]):
            raise SourceError(
                f"{self._name} returns other rows than when earlier parts were submitted (byte {offset:,} "
                "is not the end of a row); order the query (ORDER BY a unique key) so a retry sees the same rows"
            )

    def origin(self, start: int, end: int) -> str:
        return f"{self._name}, CSV bytes {start:,}-{end:,}"

    def where(self, offset: int) -> Where | None:
        return None


def _query_cursor(source: QuerySource) -> tuple[Any, Any]:
    from airflow.sdk import BaseHook

    try:
        hook = BaseHook.get_connection(source.conn_id).get_hook()
    except Exception as exc:
        raise SourceError(f"connection {source.conn_id!r} cannot be used to query: {exc}") from exc
    try:
        from airflow.providers.common.sql.hooks.sql import DbApiHook

        is_sql = isinstance(hook, DbApiHook)
    except ImportError:  # pragma: no cover - common.sql comes with every SQL provider
        is_sql = hasattr(hook, "get_records")
    if not is_sql:
        raise SourceError(
            f"connection {source.conn_id!r} is not a SQL database connection (its hook is {type(hook).__name__})"
        )
    conn = hook.get_conn()
    # A server-side cursor streams the result; PostgreSQL's default cursor would load all of it.
    if type(hook).__name__ == "PostgresHook":
        return conn, conn.cursor(name="marketo_import")
    return conn, conn.cursor()


@contextmanager
def open_query(source: QuerySource) -> Iterator[tuple[Header, RowsBody]]:
    """Run the query and open its rows as ``(header, body)``."""
    conn, cursor = _query_cursor(source)
    try:
        try:
            if source.parameters is None:
                cursor.execute(source.sql)
            else:
                cursor.execute(source.sql, source.parameters)
            first = cursor.fetchmany(source.fetch_size)
        except Exception as exc:
            raise SourceError(f"the query on {source.conn_id!r} failed: {exc}") from exc
        if not cursor.description:
            raise SourceError(f"the query on {source.conn_id!r} returns no result set; it must be a SELECT")
        names = tuple(str(d[0]) for d in cursor.description)
        fmt = source.file_format
        try:
            header = map_header(
                names, encode_header(names, fmt, b"\r\n"), 0, fmt, source.column_mapping, source.name
            )
        except SourceError as exc:
            raise SourceError(f"{exc} (name the query's columns with AS)") from None
        batches = [first]

        def fetch() -> Sequence[Sequence[Any]]:
            if batches:
                return batches.pop()
            return cursor.fetchmany(source.fetch_size)

        yield header, RowsBody(fetch, fmt, source.name)
    finally:
        try:
            cursor.close()
        finally:
            conn.close()
