"""The reader of a query: its rows streamed with ``fetchmany`` into CSV, one batch of rows at a time."""

from __future__ import annotations

import csv
import datetime
import io
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from marketo_provider.api import FileFormat
from marketo_provider.sources.base import NEWLINE, Piece, SourceError, Where, copy_into
from marketo_provider.sources.content import Opened
from marketo_provider.sources.header import Header, encode_header, map_header
from marketo_provider.sources.model import QuerySource

log = logging.getLogger(__name__)


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
        self._last = NEWLINE[0]
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
        n = copy_into(buffer, self._pending, self._at)
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
        if self._pos < offset or (offset and self._last != NEWLINE[0]):
            raise SourceError(
                f"{self._name} returns other rows than when earlier parts were submitted (byte {offset:,} "
                "is not the end of a row); order the query (ORDER BY a unique key) so a retry sees the same rows"
            )

    def pieces(self, start: int, end: int) -> list[Piece]:
        return [Piece(self._name, self._name, start, end, start, unit="CSV bytes", header_lines=0, rows=True)]

    def where(self, offset: int) -> Where | None:
        return None

    def quote_problem(self) -> SourceError | None:
        return None  # the rows are written by csv.writer: their quoting is sound


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


def takes(opened: Opened) -> bool:
    return isinstance(opened.source, QuerySource)


@contextmanager
def open_query(opened: Opened) -> Iterator[tuple[Header, RowsBody]]:
    """Run the query and open its rows as ``(header, body)``."""
    source = opened.source
    assert isinstance(source, QuerySource)
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
