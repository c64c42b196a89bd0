"""Stage 2: one file opened as its content: recognised (gzip, bzip2, xz by their first bytes;
files that are not delimited UTF-8 text refused, saying what they look like) and decompressed as a
stream, a MiB at a time; and :class:`Opened`, a source as its reader receives it (``readers.py``
opens the first file with content, and hands a Parquet one to ``parquet.py``)."""

from __future__ import annotations

import bz2
import lzma
import zlib
from dataclasses import dataclass
from typing import IO, Any

from marketo_provider.sources.base import HEAD_BYTES, OUT_CHUNK, SourceError, read_into, read_up_to
from marketo_provider.sources.listing import SourceFile
from marketo_provider.sources.model import AnySource

_IN_CHUNK = 256 * 1024  # compressed bytes read at a time


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


def check_looks_like_text(first: bytes, name: str, *, parquet: bool = False) -> None:
    """Refuse a file that is evidently not delimited UTF-8 text, saying what it looks like
    (``parquet``: a Parquet file is let through, for the reader of a Parquet source)."""

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
        if parquet:
            return
        raise SourceError(
            f"import source {name} is a Parquet file among delimited text files; the files of one source are "
            "all Parquet or all delimited text"
        )
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
        size = OUT_CHUNK if size < 0 else min(size, OUT_CHUNK)
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


def _open_error(name: str, exc: BaseException) -> SourceError:
    if isinstance(exc, FileNotFoundError):
        return SourceError(f"import source {name} does not exist")
    if isinstance(exc, PermissionError):
        return SourceError(f"import source {name} cannot be read: permission denied")
    return SourceError(f"import source {name} cannot be read: {exc}")


@dataclass
class Content:
    """A file's content as a stream (decompressed when it is compressed), and its first bytes."""

    stream: Any
    first: bytes  # the first bytes of the content, already read from ``stream``
    kind: str | None
    raw: IO[bytes]

    @property
    def empty(self) -> bool:
        """Nothing but line breaks, and nothing after them (0 bytes, or blank lines only)."""
        return not self.first.strip(b"\r\n") and len(self.first) < HEAD_BYTES

    def close(self) -> None:
        self.raw.close()


def open_content(file: SourceFile, *, parquet: bool = False) -> Content:
    """One file opened as its content, refused when it is not delimited text (``parquet``: a
    Parquet file is opened too, for the reader that takes it)."""
    try:
        raw = file.open()
    except Exception as exc:
        raise _open_error(file.name, exc) from exc
    try:
        peek = read_up_to(raw, 8)
        kind = compression_of(peek)
        if kind is None:
            first = peek + read_up_to(raw, HEAD_BYTES - len(peek))
            content = Content(stream=raw, first=first, kind=None, raw=raw)
        else:
            decompressed = _Decompressed(_Prefixed(peek, raw), kind, file.name)
            first = read_up_to(decompressed, HEAD_BYTES)
            content = Content(stream=decompressed, first=first, kind=kind, raw=raw)
        check_looks_like_text(content.first[:HEAD_BYTES], file.name, parquet=parquet)
        return content
    except BaseException:
        raw.close()
        raise


@dataclass
class Opened:
    """A source as its reader receives it: its files (none for a query) and the first of them with
    content, opened (None when every file is empty). Closing twice is harmless: the reader that
    reads on from ``first`` closes it, and so does the one that hands it to its reader."""

    source: AnySource
    files: list[SourceFile]
    first: Content | None = None
    index: int = 0  # the place of ``first`` in ``files`` (len(files) when none has content)

    @property
    def head(self) -> bytes:
        """The first bytes of the first file with content (decompressed); empty when none."""
        return self.first.first if self.first is not None else b""

    def close(self) -> None:
        if self.first is not None:
            self.first.close()


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
        return read_into(self._rest, memoryview(buffer).cast("B"))

    def close(self) -> None:
        self._rest.close()
