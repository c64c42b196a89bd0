"""Where an import's rows come from, and the path each row takes to a part.

A source passes through these stages, each a module with a typed hand-over, walked once and
downward by pre-flight, by ``validate_only`` and by the submit loop alike::

    model      the operator's arguments -> one resolved Source or QuerySource (resolve_source)
    listing    the files: one, a folder or prefix, a glob; local or object storage -> SourceFile
    content    open and decompress (gzip, bzip2, xz), refuse what is not delimited text -> Content
    header     the header line Marketo sees: names, column_mapping, given columns -> Header
    body       the records of every file (or a query's rows) as one logical stream -> Body
    parts      cut between records into parts under the size limit -> Part

``quotes`` (record boundaries, and the record to blame for broken quoting) serves the header, the
body and the cutter; ``query`` turns a query's rows into the same logical stream, and ``parquet``
Parquet files' rows (when a source's first file is Parquet, ``content`` says so); ``preflight``
walks the stages with every check, ``source_parts`` walks them to cut.
"""

from marketo_provider.bounds import raise_csv_field_limit
from marketo_provider.sources.base import DEFAULT_FETCH_SIZE, DEFAULT_MAX_PART_BYTES, Body, SourceError, Where
from marketo_provider.sources.header import Header
from marketo_provider.sources.listing import SourceFile, list_files
from marketo_provider.sources.model import AnySource, QuerySource, Source, resolve_source
from marketo_provider.sources.parts import Part, ScanReport, iter_parts, scan_source
from marketo_provider.sources.preflight import Preflight, preflight, source_parts
from marketo_provider.sources.query import RowsBody
from marketo_provider.sources.quotes import count_records
from marketo_provider.sources.readers import open_body

raise_csv_field_limit()  # every reader of a source's records takes a field as long as a part

__all__ = [
    "DEFAULT_FETCH_SIZE",
    "DEFAULT_MAX_PART_BYTES",
    "AnySource",
    "Body",
    "Header",
    "Part",
    "Preflight",
    "QuerySource",
    "RowsBody",
    "ScanReport",
    "Source",
    "SourceError",
    "SourceFile",
    "Where",
    "count_records",
    "iter_parts",
    "list_files",
    "open_body",
    "preflight",
    "resolve_source",
    "scan_source",
    "source_parts",
]
