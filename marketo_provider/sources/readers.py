"""Which reader reads a source: one table of formats, each reader saying whether it takes a source.

The source's files are listed and the first of them with content is opened (a query has neither);
the first reader in :data:`READERS` that takes what was found opens it as ``(header, body)``. A new
format is a module with a ``takes`` and an opener that writes its rows as the import's delimited
text (as ``parquet.py`` and ``query.py`` do; ``text.py`` passes a file's bytes through), and an
entry in the table before the readers that would otherwise take it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from marketo_provider.sources import parquet, query, text
from marketo_provider.sources.base import Body
from marketo_provider.sources.content import Opened, open_content
from marketo_provider.sources.header import Header
from marketo_provider.sources.listing import list_files
from marketo_provider.sources.model import AnySource, QuerySource


@dataclass(frozen=True)
class Reader:
    """One format a source may be in."""

    name: str
    takes: Callable[[Opened], bool]
    open: Callable[[Opened], AbstractContextManager[tuple[Header, Body]]]


# In order: the first that takes a source reads it.
READERS: tuple[Reader, ...] = (
    Reader("a query", query.takes, query.open_query),
    Reader("Parquet files", parquet.takes, parquet.open_parquet),
    Reader("delimited text files", text.takes, text.open_text),
)


def open_first(source: AnySource) -> Opened:
    """A source's files and the first of them with content, opened at its first bytes (files of
    nothing but line breaks are passed over)."""
    if isinstance(source, QuerySource):
        return Opened(source, [])
    files = list_files(source)
    for index, file in enumerate(files):
        content = open_content(file, parquet=True)
        if not content.empty:
            return Opened(source, files, content, index)
        content.close()
    return Opened(source, files, None, len(files))


@contextmanager
def open_body(source: AnySource) -> Iterator[tuple[Header, Body]]:
    """Open a source as ``(header, body)``: the header Marketo will see and the logical body
    stream (``readinto``, ``tell``, ``pieces``, ``where``, ``skip_to``), read by the first of
    :data:`READERS` that takes it."""
    opened = open_first(source)
    try:
        reader = next(r for r in READERS if r.takes(opened))
        with reader.open(opened) as found:
            yield found
    finally:
        opened.close()
