"""What every stage of reading a source shares: its error, the bytes it looks for, and how a
place in a source is named in messages."""

from __future__ import annotations

import codecs
import io
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from marketo_provider.api import MarketoValueError

# Parts stay safely under Marketo's limit (multipart framing is not counted against the file).
DEFAULT_MAX_PART_BYTES = 9_500_000
DEFAULT_FETCH_SIZE = 10_000
BOM = codecs.BOM_UTF8
QUOTE = b'"'
NEWLINE = b"\n"
HEAD_BYTES = 64 * 1024  # what is read of a file first: enough to sniff it and find its header
OUT_CHUNK = 1024 * 1024  # decompressed bytes produced at a time: bounds the memory beside the part


class SourceError(MarketoValueError):
    """The import source is missing, unreadable or not a file Marketo can import; nothing was sent."""


def read_up_to(stream: Any, size: int) -> bytes:
    chunks = []
    got = 0
    while got < size:
        data = stream.read(size - got)
        if not data:
            break
        chunks.append(data)
        got += len(data)
    return b"".join(chunks)


def read_into(stream: Any, view: memoryview) -> int:
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


def copy_into(buffer: Any, data: Any, at: int) -> int:
    """Copy what fits of ``data[at:]`` to the start of ``buffer``; how many bytes were copied."""
    n = min(len(buffer), len(data) - at)
    buffer[:n] = data[at : at + n]
    return n


def seekable(stream: Any) -> bool:
    try:
        return bool(stream.seekable())
    except Exception:
        return False


def snippet(data: bytes) -> str:
    text = data[:120].decode("utf-8", "replace").replace("\r", "\\r").replace("\n", "\\n")
    return text + ("..." if len(data) > 120 else "")


def line_at(data: bytes, index: int) -> bytes:
    start = data.rfind(NEWLINE, 0, index) + 1
    end = data.find(NEWLINE, index)
    return data[start : end if end >= 0 else len(data)]


@dataclass(frozen=True)
class Where:
    """A place in a source, for messages: ``{prefix}line {line}, {unit} {byte}``."""

    prefix: str
    line: int
    byte: int
    unit: str = "byte"


@dataclass(frozen=True)
class Piece:
    """Where a run of a part's bytes came from: bytes ``start``..``end`` of the logical body, which
    are bytes ``content_start``.. of one file's (decompressed) content, or of a query's rows as CSV.
    ``header_lines`` is how many lines of the file come before its records (its header line, or
    none with ``columns=``); ``rows`` says the records are a query's rows, numbered from 1."""

    name: str  # the file's path or URI (the query's name), never credentials
    label: str  # the short name: the path under the folder, prefix or glob root
    start: int
    end: int
    content_start: int
    unit: str = "bytes"
    header_lines: int = 1
    rows: bool = False
    described: str = ""  # how messages name it, when not by its bytes (a Parquet file's rows)

    def __str__(self) -> str:
        if self.described:
            return self.described
        a = self.content_start
        return f"{self.label} {self.unit} {a:,}-{a + self.end - self.start:,}"


class Body(Protocol):
    """The records of a source as one logical stream: what the stages after the header hand on.

    Offsets (``tell``, ``skip_to``, ``where``; a part's ``origin``) count bytes of that stream: every file's
    records, decompressed, header lines removed, one after the other (a query's: its rows as CSV).
    """

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` with the next bytes; 0 at the end."""

    def tell(self) -> int:
        """The logical offset of the next byte."""

    def skip_to(self, offset: int) -> None:
        """Carry on from ``offset``, the end of an earlier part (resuming)."""

    def pieces(self, start: int, end: int) -> list[Piece]:
        """Where logical bytes ``start``..``end`` came from: a piece per file, in order."""

    def where(self, offset: int) -> Where | None:
        """The file, line and byte of logical ``offset`` (error path)."""

    def quote_problem(self) -> SourceError | None:
        """The first record with broken quoting read so far (error path)."""


_Closing = TypeVar("_Closing", bound="Closing")


class Closing:
    """What is closed on leaving a ``with`` block."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _Closing) -> _Closing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
