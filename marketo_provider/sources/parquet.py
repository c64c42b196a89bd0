"""Parquet files as a source: each file's rows, row group by row group, written as the import's
CSV (or TSV, SSV) with values in the forms Marketo documents, read as the logical body.

A source is Parquet when its first file is (the bytes ``PAR1`` at its start, whatever its name);
every other file must then be Parquet too, with the same column names in the same order. Reading
needs pyarrow (``pip install 'airflow-provider-marketo[parquet]'``). Memory stays at about one
batch of rows (a few MiB of CSV) beside the part being cut, whatever the size of a row group.

The values of each type are written as the forms Marketo documents, and the columns it cannot take
refused: ``parquet_values.py``. Offsets of the logical body count bytes of that CSV, which is the
same for the same files every time, so an import resumes mid-Parquet.
"""

from __future__ import annotations

import bisect
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from marketo_provider.bounds import columns_differ
from marketo_provider.sources.base import Piece, SourceError, Where, copy_into, read_up_to
from marketo_provider.sources.content import Opened, compression_of
from marketo_provider.sources.header import Header, encode_header, map_header
from marketo_provider.sources.listing import SourceFile
from marketo_provider.sources.model import Source
from marketo_provider.sources.parquet_values import Writer, check_schema

MAGIC = b"PAR1"
EXTRA = "pip install 'airflow-provider-marketo[parquet]'"
BATCH_BYTES = 1024 * 1024  # about this much Arrow data is converted to CSV at a time
READ_BUFFER = 1024 * 1024  # column chunks are read through a buffer this size, never whole


def is_parquet(first: bytes) -> bool:
    """True for the first bytes of a Parquet file."""
    return first.startswith(MAGIC)


def _pyarrow(name: str) -> Any:
    try:
        import pyarrow
        import pyarrow.compute
        import pyarrow.parquet
    except ImportError:
        raise SourceError(
            f"import source {name} is Parquet; reading Parquet needs pyarrow, which is not installed: {EXTRA}"
        ) from None
    return pyarrow


# ---- the logical body -------------------------------------------------------------------------


@dataclass
class _Chunk:
    """A batch of rows of one file written as CSV, and where it sits in the logical stream."""

    label: str
    row0: int  # the file's row index of the chunk's first row
    start: int  # logical offset of its first byte
    ends: Any  # memoryview: offset of every row's end, rows[i] ends at ends[i + 1] - ends[0]
    data: memoryview | None  # its bytes; None once read
    name: str = ""  # the file's path or URI

    @property
    def rows(self) -> int:
        return len(self.ends) - 1

    @property
    def end(self) -> int:
        return self.start + self.ends[self.rows] - self.ends[0]

    def row_at(self, offset: int) -> int:
        """The chunk's row holding logical ``offset`` (its first row for a row's first byte)."""
        return bisect.bisect_right(self.ends, offset - self.start + self.ends[0]) - 1

    def is_row_start(self, offset: int) -> bool:
        rel = offset - self.start + self.ends[0]
        i = bisect.bisect_left(self.ends, rel)
        return i <= self.rows and self.ends[i] == rel


class ParquetBody:
    """The logical body of a Parquet source: every file's rows as CSV lines, one file after the
    other in the listing's order. Reads a file's row groups one by one, a batch at a time."""

    def __init__(self, pa: Any, source: Source, files: list[SourceFile], names: tuple[str, ...]) -> None:
        self._pa = pa
        self.source = source
        self._files = files
        self._names = names
        self._writer = Writer(pa, source.file_format, len(names))
        self._chunks = self._generate()
        self._current: _Chunk | None = None
        self._at = 0  # bytes of the current chunk handed out
        self._pos = 0
        self._segments: list[_Chunk] = []  # chunks read, for origins
        self._open: Any = None

    # -- reading

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = buffer if isinstance(buffer, memoryview) else memoryview(buffer)
        while True:
            chunk = self._current
            if chunk is not None and chunk.data is not None and self._at < len(chunk.data):
                n = copy_into(view, chunk.data, self._at)
                self._at += n
                self._pos += n
                return n
            if not self._next_chunk():
                return 0

    def _next_chunk(self) -> bool:
        if self._current is not None:
            self._current.data = None  # the bytes go; the row ends stay for origins
        self._current = next(self._chunks, None)
        self._at = 0
        if self._current is None:
            return False
        # origins are asked for the part being cut: what lies two parts back is not needed
        behind = self._pos - 2 * self.source.max_part_bytes
        self._segments = [s for s in self._segments if s.end > behind]
        self._segments.append(self._current)
        return True

    def _generate(self) -> Generator[_Chunk, None, None]:
        pos = 0
        for file in self._files:
            parquet = self._open_file(file)
            if parquet is None:
                continue
            try:
                row0 = 0
                for group in range(parquet.num_row_groups):
                    for batch in self._batches(parquet, group, file):
                        chunk = self._chunk(batch, file, row0, pos)
                        pos = chunk.end
                        row0 += batch.num_rows
                        yield chunk
            finally:
                self._close_file()

    def _batches(self, parquet: Any, group: int, file: SourceFile) -> Iterator[Any]:
        """The rows of one row group, in batches of about ``BATCH_BYTES`` of Arrow data."""
        meta = parquet.metadata.row_group(group)
        if not meta.num_rows:
            return
        width = max(1, meta.total_byte_size // meta.num_rows)
        size = max(1, min(meta.num_rows, BATCH_BYTES // width))
        batches = parquet.iter_batches(batch_size=size, row_groups=[group], use_threads=False)
        while True:
            try:
                batch = next(batches, None)
            except (self._pa.ArrowException, OSError) as exc:
                raise SourceError(f"import source {file.name} cannot be read as Parquet: {exc}") from exc
            if batch is None:
                return
            if batch.num_rows:
                yield batch

    def _chunk(self, batch: Any, file: SourceFile, row0: int, pos: int) -> _Chunk:
        """A batch written as CSV lines: their bytes and where each row ends, without a copy."""
        lines = self._writer.lines(batch, file.name, row0)
        _, offsets, data = lines.buffers()[:3]
        ends = memoryview(offsets).cast("q")[lines.offset : lines.offset + len(lines) + 1]
        return _Chunk(
            file.label, row0, pos, ends, memoryview(data).cast("B")[ends[0] : ends[len(lines)]], file.name
        )

    def _open_file(self, file: SourceFile) -> Any:
        """Open one file as a ParquetFile with this source's columns; None for a 0-byte file."""
        opened = _open_parquet_file(self._pa, file, self.source)
        if opened is None:
            return None
        raw, parquet = opened
        self._open = raw
        try:
            names = tuple(parquet.schema_arrow.names)
            if names != self._names:
                raise SourceError(
                    f"the columns of {file.name} differ from the first file's: "
                    f"{columns_differ(names, self._names)}; every file of {self.source.name} needs the same columns"
                )
            check_schema(self._pa, parquet.schema_arrow, file.name)
        except BaseException:
            self._close_file()
            raise
        return parquet

    def _close_file(self) -> None:
        if self._open is not None:
            self._open.close()
            self._open = None

    def close(self) -> None:
        self._chunks.close()
        self._close_file()

    # -- resuming

    def skip_to(self, offset: int) -> None:
        """Carry on from logical ``offset``: the files are read again and converted up to it
        (CSV bytes cannot be located without writing them), and it must be a row's start."""
        changed = SourceError(
            f"import source {self.source.name} changed since earlier parts were submitted: "
            f"byte {offset:,} of its rows written as {self.source.file_format.value} is no longer the start of a row"
        )
        while self._pos < offset:
            chunk = self._current
            if chunk is None or chunk.data is None or self._at >= len(chunk.data):
                if not self._next_chunk():
                    raise changed
                self._segments = self._segments[-1:]
                continue
            step = min(offset - self._pos, len(chunk.data) - self._at)
            self._at += step
            self._pos += step
        chunk = self._current
        if offset and (chunk is None or not chunk.is_row_start(offset)):
            raise changed

    # -- saying where

    def pieces(self, start: int, end: int) -> list[Piece]:
        """The files and row ranges logical bytes ``start``..``end`` came from (rows counted from
        0 in each file, the end excluded); records are numbered as the files' rows."""
        self._segments = [s for s in self._segments if s.end > start]
        runs: list[list[Any]] = []  # [chunk, first row, last row, start, end]
        for chunk in self._segments:
            if chunk.start >= end or chunk.end <= start:
                continue
            a, b = max(start, chunk.start), min(end, chunk.end)
            first = chunk.row0 + chunk.row_at(a)
            last = chunk.row0 + chunk.row_at(b - 1) + 1
            if runs and runs[-1][0].name == chunk.name and runs[-1][2] == first:
                runs[-1][2], runs[-1][4] = last, b
            else:
                runs.append([chunk, first, last, a, b])
        return [
            Piece(
                chunk.name,
                chunk.label,
                a,
                b,
                first,
                unit="rows",
                header_lines=0,
                rows=True,
                # Named as "Source Line" names a row: from 1, the last included.
                described=f"{chunk.label} rows {first + 1:,}-{last:,}",
            )
            for chunk, first, last, a, b in runs
        ]

    def where(self, offset: int) -> Where | None:
        return None  # a Parquet file has no lines; origins name the rows

    def quote_problem(self) -> SourceError | None:
        return None  # the CSV is written here: its quoting is sound


def _open_parquet_file(pa: Any, file: SourceFile, source: Source) -> tuple[Any, Any] | None:
    """``(raw stream, ParquetFile)`` for one file, or None for a 0-byte file."""
    if file.size == 0:
        return None
    try:
        raw = file.open()
    except FileNotFoundError:
        raise SourceError(f"import source {file.name} does not exist") from None
    except Exception as exc:
        raise SourceError(f"import source {file.name} cannot be read: {exc}") from exc
    try:
        first = read_up_to(raw, len(MAGIC))
        if not first:
            raw.close()
            return None
        if not is_parquet(first):
            kind = compression_of(first)
            if kind is not None:
                raise SourceError(
                    f"import source {file.name} is a {kind}-compressed file in a Parquet source; Parquet "
                    "compresses its own pages: import the Parquet files as the unload wrote them"
                )
            raise SourceError(
                f"import source {file.name} is not a Parquet file, but {source.name} is read as Parquet (its "
                "first file is); the files of one source are all Parquet or all delimited text"
            )
        raw.seek(0)
        parquet = pa.parquet.ParquetFile(raw, buffer_size=READ_BUFFER, pre_buffer=False)
    except SourceError:
        raw.close()
        raise
    except Exception as exc:
        raw.close()
        raise SourceError(f"import source {file.name} is not a valid Parquet file: {exc}") from exc
    return raw, parquet


def takes(opened: Opened) -> bool:
    """A source whose first file with content is Parquet."""
    return is_parquet(opened.head)


@contextmanager
def open_parquet(opened: Opened) -> Iterator[tuple[Header, ParquetBody]]:
    """Open a Parquet source as ``(header, body)``: the header from the first file's columns
    (renamed by ``column_mapping``), every column checked before anything is read or sent."""
    opened.close()  # each file is opened again as Parquet
    source, files = opened.source, opened.files
    assert isinstance(source, Source)
    pa = _pyarrow(source.name)
    if source.columns is not None:
        raise SourceError(
            f"import source {source.name} is Parquet, whose files name their columns; leave columns unset "
            "(rename columns with column_mapping)"
        )
    schema = None
    for file in files:
        found = _open_parquet_file(pa, file, source)
        if found is None:
            continue
        raw, parquet = found
        try:
            schema = parquet.schema_arrow
        finally:
            raw.close()
        name = source.name if len(files) == 1 else file.name
        check_schema(pa, schema, name)
        break
    if schema is None:
        raise SourceError(f"every file of import source {source.name} is empty")
    names = tuple(schema.names)
    fmt = source.file_format
    header = map_header(names, encode_header(names, fmt), 0, fmt, source.column_mapping, source.name)
    if not header.source_names:
        header = Header(header.names, header.line, 0, header.delimiter, names)
    body = ParquetBody(pa, source, files, names)
    try:
        yield header, body
    finally:
        body.close()
