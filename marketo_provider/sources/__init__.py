"""Where an import's rows come from, and the path each row takes to a part.

A source passes through these stages, each a module with a typed hand-over, walked once and
downward by pre-flight, by ``validate_only`` and by the submit loop alike::

    model      the operator's arguments -> one resolved Source or QuerySource (resolve_source)
    listing    the files: one, a folder or prefix, a glob; local or object storage -> SourceFile
    content    open and decompress (gzip, bzip2, xz), refuse what is not delimited text -> Content
    readers    the table of formats: the reader that takes the source opens it -> (Header, Body)
    text       delimited text files: the header line Marketo sees (header), then the records of
               every file as one logical stream (body)
    query      a query's rows as that stream; parquet: Parquet files' rows (parquet_values: as CSV)
    dropping   records kept out of what is sent -> Body
    parts      cut between records into parts under the size limit -> Part

``quotes`` (record boundaries, and the record to blame for broken quoting) serves the header, the
body and the cutter; ``preflight`` walks the stages with every check (``checks``, ``chunks``,
``report``) and writes the ledger (``ledger_writer``; ``ledger`` reads it, ``policy`` says what the
row options mean); ``source_parts`` walks them to cut; ``trace`` finds a failed row's place.

What other packages use is imported from here.
"""

from marketo_provider.bounds import raise_csv_field_limit
from marketo_provider.sources.base import DEFAULT_FETCH_SIZE, Body, SourceError
from marketo_provider.sources.fingerprints import source_fingerprint
from marketo_provider.sources.ledger import Ledger, counts_line
from marketo_provider.sources.model import AnySource, QuerySource, Source, resolve_source
from marketo_provider.sources.parts import Part
from marketo_provider.sources.policy import OnInvalidRows, OnRepeatedKeys, RowPolicy
from marketo_provider.sources.preflight import Mark, Preflight, preflight, source_parts
from marketo_provider.sources.readers import open_body
from marketo_provider.sources.records import Location
from marketo_provider.sources.trace import RecordTracer

raise_csv_field_limit()  # every reader of a source's records takes a field as long as a part

__all__ = [
    "DEFAULT_FETCH_SIZE",
    "AnySource",
    "Body",
    "Ledger",
    "Location",
    "Mark",
    "OnInvalidRows",
    "OnRepeatedKeys",
    "Part",
    "Preflight",
    "QuerySource",
    "RecordTracer",
    "RowPolicy",
    "Source",
    "SourceError",
    "counts_line",
    "open_body",
    "preflight",
    "resolve_source",
    "source_fingerprint",
    "source_parts",
]
