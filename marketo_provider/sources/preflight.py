"""Pre-flight and submission walk the same stages: :func:`preflight` reads a source through
once, every check made, before anything is sent; :func:`source_parts` cuts it into the same parts
every time, from the start or from where an earlier try stopped, leaving out the records the
import keeps out."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from marketo_provider import api
from marketo_provider.api import MarketoValueError, ObjectType, required_columns
from marketo_provider.api.fields import Field, canonical_names
from marketo_provider.bounds import LIST_ENDS, Ends
from marketo_provider.sources.base import Body, SourceError
from marketo_provider.sources.body import open_body
from marketo_provider.sources.checks import CheckReport, RowChecks, RowRules
from marketo_provider.sources.dropping import DroppingBody
from marketo_provider.sources.header import (
    Header,
    header_problems,
    missing_columns_problem,
    renamed,
    unknown_columns_problem,
)
from marketo_provider.sources.model import AnySource, QuerySource
from marketo_provider.sources.parts import Part, ScanReport, iter_parts

Describe = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class Preflight:
    """A source that passed every check, and how it will be cut.

    ``records`` counts records (line breaks outside quoted fields, plus a last record without
    one; blank lines count), ``lines`` line breaks. For a :class:`QuerySource` the rows are read
    once, while they are imported: ``parts``, ``body_bytes``, ``records`` and ``lines`` are None
    (0 when the query returns no rows), and the rows' values are not checked. ``header`` has the
    names as they will be sent (describe's spelling); ``rules`` are what the rows were checked
    against and ``checks`` what they showed (None when nothing was checked).
    """

    name: str
    header: Header
    parts: int | None
    body_bytes: int | None
    records: int | None
    lines: int | None = None
    checks: CheckReport | None = None
    rules: RowRules | None = None
    part_origins: tuple[str, ...] = ()  # the files and bytes of the first and last parts (bounds.Ends)
    kept_out: int = 0  # records kept out of what is sent (predicted failures, earlier repeats, unchanged)
    changes: dict[str, int] | None = None  # rows new, changed, unchanged; keys vanished

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
    check_values: bool = True,
    keep_out_invalid: bool = False,
    keep_out_earlier_repeats: bool = False,
    changed_rows_only: bool = False,
    previous: str | None = None,
) -> Preflight:
    """Check a source completely before anything is uploaded.

    ``source`` is the resolved :class:`Source` or :class:`QuerySource`. ``describe`` is
    :meth:`MarketoHook.describe`; it is called for custom objects (their dedupe fields) and, with
    ``check_columns``, to check the column names (program members: the program member and the
    lead fields): names that differ from describe's only in case are sent as describe spells them.
    With ``check_values`` (and the describe call) every row's values are checked against the
    fields' types, and repeated keys are found; the rows ``keep_out_invalid`` and
    ``keep_out_earlier_repeats`` would keep out of what is sent are counted. With
    ``changed_rows_only`` the rows are compared with ``previous`` (the last confirmed state, an
    SQLite file; None: every row is new) and counted as new, changed and unchanged. Every file of a many-file source is read through.
    Raises :class:`SourceError` naming every problem of the header at once.
    """
    kind = ObjectType.parse(object_type)
    name = source.name
    with open_body(source) as (header, body):
        dedupe: tuple[str, ...] = ()
        known: list[str] = []
        types: dict[str, Field] = {}
        if kind is ObjectType.CUSTOM_OBJECTS or check_columns:
            if describe is None:
                raise MarketoValueError(
                    "preflight needs describe to check the columns of a custom object import"
                )
            described = describe(kind, custom_object_name=custom_object_name)
            dedupe = tuple(described.get("dedupe_fields", ()))
            if check_columns:
                known = list(described["fields"])
                types = dict(described.get("types", {}))
                for other in api.importable_field_objects(kind):
                    if other is not kind:
                        more = describe(other)
                        known += more["fields"]
                        types = {**more.get("types", {}), **types}
        if known:
            spelled = canonical_names(header.names, known)
            header = renamed(header, [spelled.get(n, n) for n in header.names])
        keys = required_columns(kind, lookup_field=lookup_field, dedupe_fields=dedupe)
        problem = header_problems(
            name,
            [
                missing_columns_problem(header, kind, keys),
                unknown_columns_problem(header, known) if known else None,
            ],
        )
        if problem is not None:
            raise problem
        wanted = check_values or changed_rows_only
        rules = RowRules.of(header, types, object_type=kind, key_names=keys) if wanted else None
        if isinstance(source, QuerySource):
            has_rows = _peek_rows(body)
            zero = None if has_rows else 0
            return Preflight(
                name=name, header=header, parts=zero, body_bytes=zero, records=zero, lines=zero, rules=rules
            )
        report = ScanReport()
        checks = (
            RowChecks(
                rules,
                values=bool(types) and check_values,
                keys=check_values,
                fingerprints=changed_rows_only,
                previous=previous if changed_rows_only else None,
            )
            if rules is not None
            else None
        )
        changes: dict[str, int] | None = None
        origins = Ends(LIST_ENDS)  # the first and last parts' origins, and how many parts
        kept_out = 0
        try:
            for part in iter_parts(
                body, header, max_part_bytes=source.max_part_bytes, name=name, validate=True, report=report
            ):
                origins.add(part.origin)
                if checks is not None:
                    checks.check_part(part)
            found = checks.finish() if checks is not None else None
            if checks is not None and (keep_out_invalid or keep_out_earlier_repeats or previous is not None):
                kept_out = checks.count_dropped(
                    invalid=keep_out_invalid,
                    earlier_repeats=keep_out_earlier_repeats,
                    unchanged=changed_rows_only and previous is not None,
                )
            if checks is not None and changed_rows_only:
                changes = checks.changes()
        finally:
            if checks is not None:
                checks.close()
    return Preflight(
        name=name,
        header=header,
        parts=report.parts,
        body_bytes=report.body_bytes,
        records=report.records,
        lines=report.lines,
        checks=found,
        rules=rules,
        part_origins=tuple(origins.listed("parts")),
        kept_out=kept_out,
        changes=changes,
    )


def _peek_rows(body: Body) -> bool:
    return bool(body.readinto(memoryview(bytearray(1))))


@dataclass(frozen=True)
class KeptOut:
    """Which records an import keeps out of what it sends: those predicted to fail (``invalid``)
    and those whose key is on a later row (``earlier_repeats``), by ``rules``."""

    rules: RowRules
    invalid: bool = False
    earlier_repeats: bool = False
    previous: str | None = None  # the last confirmed state (SQLite): rows it holds as they are are kept out

    @property
    def unchanged(self) -> bool:
        return self.previous is not None

    @property
    def any(self) -> bool:
        return self.invalid or self.earlier_repeats or self.unchanged


@contextmanager
def kept_out_ordinals(
    source: AnySource, kept_out: KeptOut, header: Sequence[str] | None
) -> Iterator[Iterator[int]]:
    """The ordinals of the records to keep out, in order: one pass of the checks over the source."""
    checks = RowChecks(
        kept_out.rules,
        values=kept_out.invalid,
        keys=kept_out.earlier_repeats or kept_out.unchanged,
        fingerprints=kept_out.unchanged,
        previous=kept_out.previous,
    )
    try:
        with open_body(source) as (found, body):
            sent = _sent_header(source, found, header)
            for part in iter_parts(body, sent, max_part_bytes=source.max_part_bytes, name=source.name):
                checks.check_part(part)
        yield checks.dropped(
            invalid=kept_out.invalid, earlier_repeats=kept_out.earlier_repeats, unchanged=kept_out.unchanged
        )
    finally:
        checks.close()


def _sent_header(source: AnySource, header: Header, expected: Sequence[str] | None) -> Header:
    """The header parts are sent with: the source's, or the names earlier parts were sent under
    (describe's spelling of the same names); anything else means the source changed."""
    if expected is None or tuple(expected) == header.names:
        return header
    if [n.casefold() for n in expected] == [n.casefold() for n in header.names]:
        return renamed(header, expected)
    raise SourceError(
        f"import source {source.name} changed since earlier parts were submitted: its header differs"
    )


@contextmanager
def source_parts(
    source: AnySource,
    *,
    resume_at: tuple[int, int] | None = None,
    expected_header: Sequence[str] | None = None,
    kept_out: KeptOut | None = None,
) -> Iterator[Iterator[Part]]:
    """Open a source and cut it into parts: the same parts, in the same order, every time.

    ``resume_at=(index, offset)`` starts at part ``index``, which begins at logical body offset
    ``offset`` (the end of the part before it): a single uncompressed file is seeked; otherwise
    whole plain files are skipped by their size and the rest is read and discarded. With
    ``expected_header`` (the names earlier parts were sent under) a source that changed since is
    a :class:`SourceError` rather than parts that do not line up. With ``kept_out`` the records it
    names are left out (a pass of the checks first finds them; offsets are then those of what is
    sent).
    """
    with open_body(source) as (found, body):
        header = _sent_header(source, found, expected_header)
        if kept_out is not None and kept_out.any:
            with kept_out_ordinals(source, kept_out, expected_header) as dropped:
                yield _cut(DroppingBody(body, dropped), header, source, resume_at)
        else:
            yield _cut(body, header, source, resume_at)


def _cut(body: Body, header: Header, source: AnySource, resume_at: tuple[int, int] | None) -> Iterator[Part]:
    first_index = 0
    if resume_at is not None:
        first_index, offset = resume_at
        body.skip_to(offset)
    return iter_parts(
        body, header, max_part_bytes=source.max_part_bytes, name=source.name, first_index=first_index
    )
