"""Pre-flight and submission walk the same stages: :func:`preflight` reads a source through
once, every check made, before anything is sent; :func:`source_parts` cuts it into the same parts
every time, from the start or from where an earlier try stopped."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from marketo_provider import api
from marketo_provider.api import MarketoValueError, ObjectType, required_columns
from marketo_provider.sources.base import Body, SourceError
from marketo_provider.sources.body import open_body
from marketo_provider.sources.header import Header, check_known_columns, check_required_columns
from marketo_provider.sources.model import AnySource, QuerySource
from marketo_provider.sources.parts import Part, iter_parts, scan_source

Describe = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class Preflight:
    """A source that passed every check, and how it will be cut.

    ``records`` counts records (line breaks outside quoted fields, plus a last record without
    one; blank lines count), ``lines`` line breaks. For a :class:`QuerySource` the rows are read
    once, while they are imported: ``parts``, ``body_bytes``, ``records`` and ``lines`` are None
    (0 when the query returns no rows).
    """

    name: str
    header: Header
    parts: int | None
    body_bytes: int | None
    records: int | None
    lines: int | None = None

    @property
    def empty(self) -> bool:
        """True for a source without records: nothing to import, and no import call is made."""
        return self.parts == 0


def preflight(
    source: AnySource,
    *,
    object_type: str | ObjectType,
    lookup_field: str | None = None,
    custom_object_name: str | None = None,
    describe: Describe | None = None,
    check_columns: bool = True,
) -> Preflight:
    """Check a source completely before anything is uploaded.

    ``source`` is the resolved :class:`Source` or :class:`QuerySource`. ``describe`` is
    :meth:`MarketoHook.describe`; it is called for custom objects (their dedupe fields) and, with
    ``check_columns``, to check the column names (program members: the program member and the
    lead fields). Every file of a many-file source is read through. Raises :class:`SourceError`
    saying what to fix.
    """
    kind = ObjectType.parse(object_type)
    name = source.name
    with open_body(source) as (header, body):
        dedupe: tuple[str, ...] = ()
        described: dict[str, Any] | None = None
        if kind is ObjectType.CUSTOM_OBJECTS or check_columns:
            if describe is None:
                raise MarketoValueError(
                    "preflight needs describe to check the columns of a custom object import"
                )
            described = describe(kind, custom_object_name=custom_object_name)
            dedupe = tuple(described.get("dedupe_fields", ()))
        check_required_columns(
            header, kind, required_columns(kind, lookup_field=lookup_field, dedupe_fields=dedupe), name
        )
        if check_columns and described is not None and describe is not None:
            known = list(described["fields"])
            for other in api.importable_field_objects(kind):
                if other is not kind:
                    known += describe(other)["fields"]
            check_known_columns(header, known, name)
        if isinstance(source, QuerySource):
            has_rows = _peek_rows(body)
            zero = None if has_rows else 0
            return Preflight(name=name, header=header, parts=zero, body_bytes=zero, records=zero, lines=zero)
        report = scan_source(body, header, max_part_bytes=source.max_part_bytes, name=name)
    return Preflight(
        name=name,
        header=header,
        parts=report.parts,
        body_bytes=report.body_bytes,
        records=report.records,
        lines=report.lines,
    )


def _peek_rows(body: Body) -> bool:
    return bool(body.readinto(memoryview(bytearray(1))))


@contextmanager
def source_parts(
    source: AnySource,
    *,
    resume_at: tuple[int, int] | None = None,
    expected_header: Sequence[str] | None = None,
) -> Iterator[Iterator[Part]]:
    """Open a source and cut it into parts: the same parts, in the same order, every time.

    ``resume_at=(index, offset)`` starts at part ``index``, which begins at logical body offset
    ``offset`` (the end of the part before it): a single uncompressed file is seeked; otherwise
    whole plain files are skipped by their size and the rest is read and discarded. With
    ``expected_header`` (the names seen when earlier parts were cut) a source that changed since
    is a :class:`SourceError` rather than parts that do not line up.
    """
    name = source.name
    with open_body(source) as (header, body):
        if expected_header is not None and tuple(expected_header) != header.names:
            raise SourceError(
                f"import source {name} changed since earlier parts were submitted: its header differs"
            )
        first_index = 0
        if resume_at is not None:
            first_index, offset = resume_at
            body.skip_to(offset)
        yield iter_parts(
            body, header, max_part_bytes=source.max_part_bytes, name=name, first_index=first_index
        )
