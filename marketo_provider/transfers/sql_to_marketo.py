"""SqlToMarketoOperator: import the rows of a SQL query into Marketo with the Bulk Import API."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from marketo_provider.operators.bulk_import import MarketoBulkImportOperator
from marketo_provider.sources import DEFAULT_FETCH_SIZE, QuerySource

__all__ = ["SqlToMarketoOperator"]


class SqlToMarketoOperator(MarketoBulkImportOperator):
    """Run a query through any Airflow SQL connection and import its rows into Marketo.

    The rows are fetched in batches (``fetchmany``) and written as CSV straight into parts under
    Marketo's 10 MB limit, without a file of the whole result. The result's column names are the
    header: name them as Marketo does (``SELECT email_address AS email``) or rename them with
    ``column_mapping``. Everything else is as in
    :class:`~marketo_provider.operators.bulk_import.MarketoBulkImportOperator` (which takes
    every other argument).

    The query runs once to check its columns and again to import its rows. When the import goes
    on after a wait for a queue slot or after a task retry, the query runs again and the CSV
    already submitted is skipped: that is right only for a query that returns the same rows in
    the same order, so order it by a unique key (a changed order that shifts a row boundary is
    caught and fails the task; rows merely swapped are not).

    :param sql: the query (templated; a ``.sql`` file path is read).
    :param sql_conn_id: the Airflow connection of the database (its hook must be a common.sql
        ``DbApiHook``: PostgreSQL, MySQL, SQLite, Snowflake, ...). PostgreSQL results are streamed
        with a server-side cursor; for MySQL set ``"cursor": "sscursor"`` in the connection's extra.
    :param parameters: query parameters, passed to the cursor's ``execute`` (templated).
    :param column_mapping: result column name -> Marketo field name.
    :param fetch_size: rows fetched at a time.
    """

    template_fields: Sequence[str] = (
        *MarketoBulkImportOperator.template_fields,
        "sql",
        "sql_conn_id",
        "parameters",
    )
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"sql": "sql", "parameters": "json"}

    def __init__(
        self,
        *,
        sql: str,
        sql_conn_id: str,
        parameters: Mapping[str, Any] | Sequence[Any] | None = None,
        column_mapping: Mapping[str, str] | None = None,
        fetch_size: int = DEFAULT_FETCH_SIZE,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("source", None)
        super().__init__(**kwargs)
        self.sql = sql
        self.sql_conn_id = sql_conn_id
        self.parameters = parameters
        self.column_mapping = dict(column_mapping or {})
        self.fetch_size = fetch_size

    def import_source(self) -> QuerySource:
        return QuerySource.of(
            self.sql, conn_id=self.sql_conn_id, parameters=self.parameters, fetch_size=self.fetch_size
        )
