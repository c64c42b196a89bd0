"""The checks stage: every record's values against Marketo's field types (from the describe call
pre-flight makes), empty keys and rows of the wrong width, before anything is sent.

It reads the parts the cutter makes (whole records, with the pieces of files they came from), so
it costs a pass of the source that pre-flight makes anyway. Column values are checked a column at a
time, matched in C against the field's pattern (:func:`marketo_provider.api.columns.column_problems`).
What is found is counted in a :class:`~marketo_provider.sources.report.CheckReport` and goes into
the import's ledger (``ledger_writer.py``), which also finds repeated keys, in bounded memory
whatever the source's size. The records come a chunk at a time (``chunks.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from marketo_provider.api import ObjectType
from marketo_provider.api.columns import GoodValues, column_problems
from marketo_provider.api.fields import LENGTHY, Field, Problem, Verdict, empty_key_problem
from marketo_provider.sources.chunks import Columns
from marketo_provider.sources.header import Header


def empty_key(object_type: ObjectType, keys: Sequence[str]) -> Problem:
    """Marketo's reason for a row whose key is empty, by object."""
    if object_type is ObjectType.PROGRAM_MEMBERS:
        return Problem(Verdict.FAILS, f"Field '{keys[0]}' is required and has no value", "a value")
    if object_type is ObjectType.CUSTOM_OBJECTS:
        return Problem(Verdict.FAILS, "missing.dedupe.fields", f"a value in {', '.join(keys)}")
    return empty_key_problem(keys)


@dataclass(frozen=True)
class RowProblems:
    """Every problem of one row, in Marketo's order (the key, then the columns from the left), and
    what becomes of the row: Marketo gives a row one reason, its first failing value's, so the row's
    ``verdict`` and ``reason`` are those of its first problem predicted to fail (else of its first
    warning); ``certain`` says whether one of its problems is one Adobe shows failing a row."""

    problems: tuple[Problem, ...]

    @property
    def first(self) -> Problem:
        return next((p for p in self.problems if p.verdict.predicted_failure), self.problems[0])

    @property
    def verdict(self) -> Verdict:
        return self.first.verdict

    @property
    def reason(self) -> str:
        return self.first.reason

    @property
    def expected(self) -> str:
        return self.first.expected

    @property
    def certain(self) -> bool:
        return any(p.verdict is Verdict.FAILS for p in self.problems)


@dataclass(frozen=True)
class RowRules:
    """What the checks look at: the field of each column (None: not checked) and the key columns."""

    fields: tuple[Field | None, ...]
    keys: tuple[int, ...]
    key_names: tuple[str, ...]
    empty_key: Problem
    delimiter: str
    # Values found good so far, so that a column's repeated values are matched once (bounded).
    good: GoodValues = field(default_factory=GoodValues, compare=False, repr=False)

    @classmethod
    def of(
        cls,
        header: Header,
        types: Mapping[str, Field],
        *,
        object_type: ObjectType,
        key_names: Sequence[str],
    ) -> RowRules:
        names = list(header.names)
        return cls(
            fields=tuple(types.get(n) for n in names),
            keys=tuple(names.index(k) for k in key_names if k in names),
            key_names=tuple(key_names),
            empty_key=empty_key(object_type, key_names),
            delimiter=header.delimiter,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "fields": [[f.name, f.data_type, f.length, f.display_name] if f else None for f in self.fields],
            "keys": list(self.keys),
            "key_names": list(self.key_names),
            "empty_key": [self.empty_key.verdict.value, self.empty_key.reason, self.empty_key.expected],
            "delimiter": self.delimiter,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RowRules:
        verdict, reason, expected = data["empty_key"]
        return cls(
            fields=tuple(Field(*f) if f else None for f in data["fields"]),
            keys=tuple(data["keys"]),
            key_names=tuple(data["key_names"]),
            empty_key=Problem(Verdict(verdict), reason, expected),
            delimiter=data["delimiter"],
        )

    def columns(self, rows: Sequence[Sequence[str]]) -> tuple[list[tuple[str, ...]], dict[int, Problem]]:
        """The rows' values a column at a time (a row of another width reads as empty), and the
        problem of each row of another width."""
        width = len(self.fields)
        found: dict[int, Problem] = {}
        if any(len(row) != width for row in rows):
            blank = [""] * width
            for i, row in enumerate(rows):
                if row and len(row) != width:
                    found[i] = Problem(
                        Verdict.MAY_FAIL,
                        f"Invalid row: {len(row)} values for {width} columns",
                        f"{width} values",
                    )
            rows = [row if len(row) == width else blank for row in rows]
        return (list(zip(*rows, strict=True)) if rows else []), found

    def problems(self, rows: Sequence[Sequence[str]]) -> dict[int, RowProblems]:
        """The problems of each row that has any (the key first, then the columns in order), by the
        row's index."""
        columns, found = self.columns(rows)
        return self.column_problems(columns, found, [i for i, row in enumerate(rows) if not row])

    def column_problems(
        self, columns: list[tuple[str, ...]], found: dict[int, Problem], blank: Sequence[int]
    ) -> dict[int, RowProblems]:
        """:meth:`problems` of rows already read a column at a time (``found``: width problems;
        ``blank``: the indices of blank lines, which are no rows)."""
        if not columns:
            return {i: RowProblems((problem,)) for i, problem in found.items()}
        rows: dict[int, list[Problem]] = {i: [problem] for i, problem in found.items()}
        skip = set(blank)
        for k in self.keys:
            values = columns[k]
            if "" not in values:
                continue
            for i, value in enumerate(values):
                if not value and i not in found and i not in skip:
                    problems = rows.setdefault(i, [])
                    if self.empty_key not in problems:
                        problems.append(self.empty_key)
        # Values split from lines: none holds a line break, and none is longer than its line.
        plain = isinstance(columns, Columns) and columns.plain
        longest = columns.longest if isinstance(columns, Columns) and self._has_lengths else None
        for column, spec in enumerate(self.fields):
            if spec is None:
                continue
            for i, problem in column_problems(spec, columns[column], self.good, longest, one_line=plain):
                rows.setdefault(i, []).append(problem)
        return {i: RowProblems(tuple(problems)) for i, problems in rows.items()}

    @property
    def _has_lengths(self) -> bool:
        """Some column's rule is a length (then the chunk's longest line may clear them all)."""
        return any(f is not None and (f.length is not None or f.data_type in LENGTHY) for f in self.fields)

    def key_of(self, row: Sequence[str]) -> tuple[str, ...] | None:
        if not self.keys or len(row) != len(self.fields):
            return None
        key = tuple(row[k] for k in self.keys)
        return key if all(key) else None
