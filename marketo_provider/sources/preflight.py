"""Pre-flight and submission walk the same stages: :func:`preflight` reads a source through
once, every check made, before anything is sent; :func:`source_parts` cuts it into the same parts
every time, from the start or from where an earlier try stopped, leaving out the records the
import keeps out."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from itertools import tee
from typing import Any

from marketo_provider.api import MarketoValueError, ObjectType
from marketo_provider.api.fields import Field, canonical_names
from marketo_provider.api.targets import importable_field_objects, required_columns
from marketo_provider.bounds import LIST_ENDS, Ends
from marketo_provider.sources.base import NEWLINE, Body, SourceError
from marketo_provider.sources.checks import RowRules
from marketo_provider.sources.dropping import DroppingBody
from marketo_provider.sources.header import (
    Header,
    header_problems,
    missing_columns_problem,
    renamed,
    unknown_columns_problem,
)
from marketo_provider.sources.ledger import Ledger
from marketo_provider.sources.ledger_writer import LedgerWriter
from marketo_provider.sources.model import AnySource, QuerySource
from marketo_provider.sources.parts import Part, ScanReport, iter_parts
from marketo_provider.sources.policy import RowPolicy
from marketo_provider.sources.quotes import count_records
from marketo_provider.sources.readers import open_body
from marketo_provider.sources.report import CheckReport

Describe = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class Preflight:
    """A source that passed every check, and how it will be cut.

    ``records`` counts records (line breaks outside quoted fields, plus a last record without
    one; blank lines count), ``lines`` line breaks. For a :class:`QuerySource` the rows are read
    once, while they are imported: ``parts``, ``body_bytes``, ``records`` and ``lines`` are None
    (0 when the query returns no rows), and the rows' values are not checked. ``header`` has the
    names as they will be sent (describe's spelling); ``rules`` are what the rows were checked
    against and ``checks`` what they showed (None when nothing was checked). ``ledger`` is what
    pre-flight decided about every record (None when the rows' values were not read); ``counts``
    are its counts (:meth:`Ledger.counts`).
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
    ledger: Ledger | None = None
    counts: dict[str, Any] | None = None
    workdir: Any = None  # the temporary folder of a ledger nobody asked a place for

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
    policy: RowPolicy | None = None,
    ledger_path: str | None = None,
    ledger_meta: Mapping[str, Any] | None = None,
) -> Preflight:
    """Check a source completely before anything is uploaded, and write its ledger.

    ``source`` is the resolved :class:`Source` or :class:`QuerySource`. ``describe`` is
    :meth:`MarketoHook.describe`; it is called for custom objects (their dedupe fields) and, with
    ``check_columns``, to check the column names (program members: the program member and the
    lead fields): names that differ from describe's only in case are sent as describe spells them.
    ``policy`` (or, without it, ``check_values``, ``keep_out_invalid``, ``keep_out_earlier_repeats``
    and ``changed_rows_only``) says what the rows are checked for and which are kept out of what is
    sent: every row's values against the fields' types, repeated keys, and with
    ``changed_rows_only`` a comparison with ``previous`` (the last confirmed state, an SQLite
    file; None: every row is new). What is decided about each record goes into the ledger at
    ``ledger_path`` (a temporary file when not given), which every later step reads instead of
    reading the source again. Every file of a many-file source is read through once.
    Raises :class:`SourceError` naming every problem of the header at once.
    """
    if policy is None:
        policy = RowPolicy.of(
            check_values=check_values,
            on_invalid_rows="skip" if keep_out_invalid else "send",
            on_repeated_keys="keep_last" if keep_out_earlier_repeats else "warn",
            changed_rows_only=changed_rows_only,
        )
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
                for other in importable_field_objects(kind):
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
        rules = RowRules.of(header, types, object_type=kind, key_names=keys) if policy.reads_rows else None
        if isinstance(source, QuerySource):
            has_rows = _peek_rows(body)
            zero = None if has_rows else 0
            return Preflight(
                name=name, header=header, parts=zero, body_bytes=zero, records=zero, lines=zero, rules=rules
            )
        report = ScanReport()
        workdir = None
        writer = None
        if rules is not None:
            if ledger_path is None:
                workdir = tempfile.TemporaryDirectory(prefix="marketo-ledger-")
                ledger_path = os.path.join(workdir.name, "ledger.sqlite")
            writer = LedgerWriter(
                ledger_path,
                rules,
                policy,
                values=policy.check_values,
                previous=previous if policy.changed_rows_only else None,
            )
        origins = Ends(LIST_ENDS)  # the first and last parts' origins, and how many parts
        try:
            for part in iter_parts(
                body, header, max_part_bytes=source.max_part_bytes, name=name, validate=True, report=report
            ):
                origins.add(part.origin)
                if writer is not None:
                    writer.check_part(part)
            ledger = (
                writer.finish({"header": list(header.names), "source": name, **(ledger_meta or {})})
                if writer is not None
                else None
            )
        except BaseException:
            if writer is not None:
                writer.close()
            raise
    counts = ledger.counts() if ledger is not None else None
    return Preflight(
        name=name,
        header=header,
        parts=report.parts,
        body_bytes=report.body_bytes,
        records=report.records,
        lines=report.lines,
        checks=writer.report if writer is not None and policy.check_values else None,
        rules=rules,
        part_origins=tuple(origins.listed("parts")),
        kept_out=counts["rows_kept_out"] if counts else 0,
        changes=_changes(counts) if counts and policy.changed_rows_only else None,
        ledger=ledger,
        counts=counts,
        workdir=workdir,
    )


def _changes(counts: Mapping[str, Any]) -> dict[str, int]:
    return dict(counts.get("changes") or {})


def _peek_rows(body: Body) -> bool:
    return bool(body.readinto(memoryview(bytearray(1))))


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


@dataclass(frozen=True)
class Mark:
    """Where a part ends, to carry on from there: ``offset`` of what is sent, ``inner`` offset of
    the source's records (the same without records kept out), and the ``ordinal`` of the next
    record."""

    offset: int
    inner: int
    ordinal: int


@contextmanager
def source_parts(
    source: AnySource,
    *,
    resume_at: tuple[int, int] | None = None,
    expected_header: Sequence[str] | None = None,
    ledger: Ledger | None = None,
    mark: Mark | None = None,
) -> Iterator[Iterator[Part]]:
    """Open a source and cut it into parts: the same parts, in the same order, every time.

    ``resume_at=(index, offset)`` starts at part ``index``, which begins at logical body offset
    ``offset`` (the end of the part before it); with ``mark`` (where that part ended, as the part
    said: :attr:`Part.end_ordinal`, :attr:`Part.inner_end`) the source is entered there even with
    records kept out (a single uncompressed file is seeked; otherwise whole plain files are
    skipped by their size and the rest is read and discarded). With ``expected_header`` (the
    names earlier parts were sent under) a source that changed since is a :class:`SourceError`
    rather than parts that do not line up. With ``ledger`` the records it keeps out are left out
    (their values are not checked again); each part then knows the ordinals of its records.
    """
    with open_body(source) as (found, body):
        header = _sent_header(source, found, expected_header)
        first_index = 0
        ordinal: int | None = 0
        if resume_at is not None:
            first_index = resume_at[0]
            ordinal = mark.ordinal if mark is not None else None
        dropping: DroppingBody | None = None
        drops: Iterator[tuple[int, int]] | None = None
        cut: Body = body
        if ledger is not None and ledger.any_dropped:
            # The runs left out are read once: the parts' ordinals follow them a little behind the cut.
            runs = ledger.dropped_runs(ordinal or 0)
            if ordinal is not None:
                runs, drops = tee(runs)
            if resume_at is not None and mark is not None:
                start = (resume_at[1], mark.inner, mark.ordinal)
                dropping = DroppingBody(body, runs=runs, start=start)
            else:
                dropping = DroppingBody(body, runs=runs)
                if resume_at is not None:
                    dropping.skip_to(resume_at[1])
            cut = dropping
        elif resume_at is not None:
            body.skip_to(resume_at[1])
        parts = iter_parts(
            cut, header, max_part_bytes=source.max_part_bytes, name=source.name, first_index=first_index
        )
        yield _numbered(parts, dropping, ordinal, drops)


def _numbered(
    parts: Iterator[Part],
    dropping: DroppingBody | None,
    ordinal: int | None,
    drops: Iterator[tuple[int, int]] | None,
) -> Iterator[Part]:
    """The parts, each with the ordinals of its records and where in the source it ends
    (``drops``: the runs of records left out, from ``ordinal`` on)."""
    run = next(drops, None) if drops is not None else None
    for part in parts:
        if ordinal is None:
            yield part
            continue
        raw: Any = part.data.obj
        end = len(part.data)
        remaining = count_records(raw, part.header_len, end)
        if end > part.header_len and raw[end - 1] != NEWLINE[0]:
            remaining += 1
        first = ordinal
        while run is not None and run[0] < ordinal + remaining:
            remaining -= run[0] - ordinal
            ordinal = run[1]
            run = next(drops, None) if drops is not None else None
        ordinal += remaining
        while run is not None and run[0] == ordinal:  # left out right after the part
            ordinal = run[1]
            run = next(drops, None) if drops is not None else None
        inner_end = dropping.inner_offset(part.source_end) if dropping is not None else part.source_end
        yield replace(part, first_ordinal=first, end_ordinal=ordinal, inner_end=inner_end)
