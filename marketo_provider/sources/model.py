"""What a source is: :class:`Source` (files: one, a folder or prefix, a glob) and
:class:`QuerySource` (a SQL query), each checked once when built, and :func:`resolve_source`, which
makes the one source an import reads from the operator's arguments."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

from marketo_provider.api import FileFormat
from marketo_provider.api.limits import MAX_IMPORT_FILE_BYTES
from marketo_provider.api.targets import header_name_problems
from marketo_provider.sources.base import DEFAULT_FETCH_SIZE, DEFAULT_MAX_PART_BYTES, SourceError


def check_max_part_bytes(max_part_bytes: Any) -> int:
    if isinstance(max_part_bytes, bool) or not isinstance(max_part_bytes, int) or max_part_bytes < 1:
        raise SourceError(f"max_part_bytes must be a positive whole number of bytes, not {max_part_bytes!r}")
    if max_part_bytes > MAX_IMPORT_FILE_BYTES:
        raise SourceError(
            f"max_part_bytes is {max_part_bytes:,}; Marketo takes files under {MAX_IMPORT_FILE_BYTES:,} bytes"
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
    problems = header_name_problems(names, fmt)
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


# The settings a source carries besides where its rows are; each is given once (on the source or
# beside it on the operator) and read from the resolved source by every stage.
_SETTINGS = ("conn_id", "file_format", "columns", "column_mapping", "max_part_bytes")


@dataclass
class Source:
    """Where an import's rows come from: built and checked with :meth:`of`.

    :param location: a local path, a ``file://`` URI, any ObjectStoragePath URI or an
        ObjectStoragePath; a folder or prefix ending in ``/`` (every file under it, names starting
        with ``.`` or ``_`` left out); or a glob such as ``s3://bucket/unload/data_*.csv.gz``.
        Templated when the source is given to an operator (``s3://unload/{{ ds }}/``).
    :param conn_id: the connection for object storage (e.g. ``aws_default``). Templated.
    :param file_format: csv (default), tsv or ssv.
    :param columns: the column names when the files have no header line (every line is data).
    :param column_mapping: source column name -> Marketo field name; only the header changes.
    :param max_part_bytes: the largest part to upload (default 9,500,000 bytes).

    A setting left out here may be given on the operator instead; given in both places, the two
    must agree.
    """

    template_fields: ClassVar[tuple[str, ...]] = ("location", "conn_id")

    location: Any
    conn_id: str | None = None
    file_format: FileFormat = FileFormat.CSV
    columns: tuple[str, ...] | None = None
    column_mapping: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    max_part_bytes: int = DEFAULT_MAX_PART_BYTES
    #: The settings given when the source was built (the others are defaults).
    given: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    @classmethod
    def of(
        cls,
        location: Any,
        *,
        conn_id: str | None = None,
        file_format: str | FileFormat | None = None,
        columns: Iterable[str] | None = None,
        column_mapping: Mapping[str, str] | None = None,
        max_part_bytes: int | None = None,
    ) -> Source:
        """A checked source; raises :class:`SourceError` saying what to fix. A :class:`Source`
        given as ``location`` is checked again (a template may have changed its location)."""
        if isinstance(location, Source):
            return location.with_settings(
                conn_id=conn_id,
                file_format=file_format,
                columns=columns,
                column_mapping=column_mapping,
                max_part_bytes=max_part_bytes,
            )
        if location is None or (isinstance(location, str) and not location.strip()):
            raise SourceError("the import source is empty: give a path, URI, folder or glob")
        if isinstance(location, os.PathLike) and not hasattr(location, "protocol"):
            location = os.fspath(location)
        settings: dict[str, Any] = {
            "conn_id": conn_id or None,
            "file_format": file_format,
            "columns": columns,
            "column_mapping": column_mapping or None,
            "max_part_bytes": max_part_bytes,
        }
        fmt = FileFormat.parse(file_format) if file_format is not None else FileFormat.CSV
        return cls(
            location=location,
            conn_id=conn_id or None,
            file_format=fmt,
            columns=_check_columns(columns, fmt),
            column_mapping=_check_mapping(column_mapping),
            max_part_bytes=(
                check_max_part_bytes(max_part_bytes) if max_part_bytes is not None else DEFAULT_MAX_PART_BYTES
            ),
            given=frozenset(k for k, v in settings.items() if v is not None),
        )

    def with_settings(self, **beside: Any) -> Source:
        """This source with the settings given beside it (on the operator) where it has none; a
        setting given in both places must agree. Every setting is checked again."""
        merged = _merge(self, {k: beside.get(k) for k in _SETTINGS})
        return Source.of(self.location, **merged)

    @property
    def name(self) -> str:
        """How messages name the source: its path, URI or pattern, never credentials."""
        return str(self.location)

    def __str__(self) -> str:
        return self.name

    @property
    def is_local(self) -> bool:
        return isinstance(self.location, str) and "://" not in self.location


@dataclass
class QuerySource:
    """The rows of a SQL query run through an Airflow SQL connection (the common.sql ``DbApiHook``
    family), streamed with ``fetchmany`` into CSV; the result's column names are the header.

    A retried import re-runs the query and skips what was already submitted, which is right only
    when the query returns the same rows in the same order (``ORDER BY`` a unique key)."""

    template_fields: ClassVar[tuple[str, ...]] = ("sql", "parameters")

    sql: str
    conn_id: str
    parameters: Any = None
    file_format: FileFormat = FileFormat.CSV
    column_mapping: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    max_part_bytes: int = DEFAULT_MAX_PART_BYTES
    fetch_size: int = DEFAULT_FETCH_SIZE
    columns: None = None  # a query always names its columns
    given: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    @classmethod
    def of(
        cls,
        sql: str,
        *,
        conn_id: str,
        parameters: Any = None,
        file_format: str | FileFormat | None = None,
        column_mapping: Mapping[str, str] | None = None,
        max_part_bytes: int | None = None,
        fetch_size: int = DEFAULT_FETCH_SIZE,
    ) -> QuerySource:
        if not isinstance(sql, str) or not sql.strip():
            raise SourceError("sql is empty: give the query whose rows to import")
        if not conn_id:
            raise SourceError("conn_id is empty: name the Airflow connection of the database to query")
        if isinstance(fetch_size, bool) or not isinstance(fetch_size, int) or fetch_size < 1:
            raise SourceError(f"fetch_size must be a positive whole number of rows, not {fetch_size!r}")
        settings: dict[str, Any] = {
            "file_format": file_format,
            "column_mapping": column_mapping or None,
            "max_part_bytes": max_part_bytes,
        }
        return cls(
            sql=sql,
            conn_id=conn_id,
            parameters=parameters,
            file_format=FileFormat.parse(file_format) if file_format is not None else FileFormat.CSV,
            column_mapping=_check_mapping(column_mapping),
            max_part_bytes=(
                check_max_part_bytes(max_part_bytes) if max_part_bytes is not None else DEFAULT_MAX_PART_BYTES
            ),
            fetch_size=fetch_size,
            given=frozenset(k for k, v in settings.items() if v is not None),
        )

    def with_settings(self, **beside: Any) -> QuerySource:
        """This query with the settings given beside it where it has none (see :class:`Source`)."""
        if beside.get("columns") is not None:
            raise SourceError("columns= does not apply to a query: a query names its columns (use AS)")
        if beside.get("conn_id") is not None:
            raise SourceError(
                f"source_conn_id {beside['conn_id']!r} does not apply to a query; the query runs on its "
                f"own connection ({self.conn_id!r})"
            )
        merged = _merge(self, {k: beside.get(k) for k in ("file_format", "column_mapping", "max_part_bytes")})
        return QuerySource.of(
            self.sql, conn_id=self.conn_id, parameters=self.parameters, fetch_size=self.fetch_size, **merged
        )

    @property
    def name(self) -> str:
        return f"query on {self.conn_id}"

    def __str__(self) -> str:
        return self.name


AnySource = Source | QuerySource


def _merge(source: Source | QuerySource, beside: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of ``source`` with those given beside it: given in one place, that value; in
    both, the same value (or an error naming both); in neither, left out (the default)."""
    merged: dict[str, Any] = {}
    for key, value in beside.items():
        own = getattr(source, key) if key in source.given else None
        if key == "column_mapping" and not value:
            value = None
        if value is not None and own is not None and _comparable(key, value) != _comparable(key, own):
            raise SourceError(
                f"{key} is given both on the source ({_shown(own)}) and beside it ({_shown(value)}); "
                "give it in one place"
            )
        chosen = own if own is not None else value
        if chosen is not None:
            merged[key] = chosen
    return merged


def _comparable(key: str, value: Any) -> Any:
    if key == "file_format":
        return FileFormat.parse(value)
    if key == "columns":
        return tuple(value) if not isinstance(value, str) else value
    if key == "column_mapping":
        return dict(value) if isinstance(value, Mapping) else value
    return value


def _shown(value: Any) -> str:
    if isinstance(value, FileFormat):
        return repr(value.value)
    if isinstance(value, Mapping):
        return repr(dict(value))
    return repr(value)


def resolve_source(
    source: Any,
    *,
    conn_id: str | None = None,
    file_format: str | FileFormat | None = None,
    columns: Iterable[str] | None = None,
    column_mapping: Mapping[str, str] | None = None,
    max_part_bytes: int | None = None,
) -> AnySource:
    """The one source an import reads: ``source`` (a location, a :class:`Source` or a
    :class:`QuerySource`) with the settings given beside it, every value checked. A setting left
    out (None) never disagrees with anything; one given in both places must agree."""
    beside: dict[str, Any] = {
        "conn_id": conn_id or None,
        "file_format": file_format or None,
        "columns": columns,
        "column_mapping": column_mapping or None,
        "max_part_bytes": max_part_bytes,
    }
    if isinstance(source, (Source, QuerySource)):
        return source.with_settings(**beside)
    return Source.of(source, **beside)
