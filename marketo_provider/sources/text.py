"""The reader of delimited text files (CSV, TSV, SSV; gzip, bzip2 or xz compressed or not): the
header from the first file with content (or from ``columns=``), then every file's records as one
:class:`~marketo_provider.sources.body.BodyStream`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from marketo_provider.sources.base import SourceError
from marketo_provider.sources.body import BodyStream, OpenedFile, body_open, file_body
from marketo_provider.sources.content import Opened
from marketo_provider.sources.header import Header, encode_header, first_record, map_header
from marketo_provider.sources.model import Source


def takes(opened: Opened) -> bool:
    """Every file source no other reader takes."""
    return isinstance(opened.source, Source)


@contextmanager
def open_text(opened: Opened) -> Iterator[tuple[Header, BodyStream]]:
    """Open a source of delimited text files as ``(header, body)``."""
    header, body = _open_text(opened)
    try:
        yield header, body
    finally:
        body.close()


def _open_text(opened: Opened) -> tuple[Header, BodyStream]:
    """The header and body of a source of delimited text files, the first file with content read
    on from its first bytes."""
    source, files, content = opened.source, opened.files, opened.first
    assert isinstance(source, Source)
    fmt = source.file_format
    many = len(files) > 1
    first: OpenedFile | None = None
    if source.columns is not None:
        header = map_header(
            source.columns, encode_header(source.columns, fmt), 0, fmt, source.column_mapping, source.name
        )
        if not header.source_names:
            header = Header(header.names, header.line, 0, header.delimiter, source.columns)
        if content is not None:
            first = file_body(source, files[opened.index], content, header, count_quotes=many)
        return header, BodyStream(source, files, header, first, opened.index + 1)
    # The first file with content gives the header; empty files before it were skipped.
    if content is None:
        if not many:
            raise SourceError(
                f"import source {files[0].name} is empty; it needs a header line of Marketo field names"
            )
        raise SourceError(
            f"every file of import source {source.name} is empty; they need a header line of Marketo field names"
        )
    file = files[opened.index]
    try:
        record = first_record(content.first, content.stream, fmt, file.name)
        header = map_header(
            record.names,
            record.line,
            record.bom + len(record.line),
            fmt,
            source.column_mapping,
            file.name if many else source.name,
        )
        if not header.source_names:
            header = Header(header.names, header.line, header.source_offset, header.delimiter, record.names)
        first = body_open(file, content, record.bom + len(record.line), record.rest, many)
    except BaseException:
        content.close()
        raise
    return header, BodyStream(source, files, header, first, opened.index + 1)
