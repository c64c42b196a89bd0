"""The checks stage: every record's values against Marketo's field types (from the describe call
pre-flight makes), empty keys and rows of the wrong width, before anything is sent.

It reads the parts the cutter makes (whole records, with the pieces of files they came from), so
it costs a pass of the source that pre-flight makes anyway. Column values are checked a column at a
time, matched in C against the field's pattern (:func:`marketo_provider.api.fields.column_problems`).
What is found goes into the import's ledger (:mod:`marketo_provider.sources.ledger`), which also
finds repeated keys, in bounded memory whatever the source's size.
"""

from __future__ import annotations

import csv
import enum
import io
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from marketo_provider.api import ObjectType
from marketo_provider.api.fields import (
    LENGTHY,
    TYPED,
    Field,
    GoodValues,
    Problem,
    Verdict,
    column_problems,
    empty_key_problem,
)
from marketo_provider.sources.base import NEWLINE, QUOTE, SourceError
from marketo_provider.sources.header import Header
from marketo_provider.sources.parts import Part
from marketo_provider.sources.quotes import last_boundary
from marketo_provider.sources.records import Location

EXAMPLES = 5  # locations kept per reason
CHUNK_BYTES = 1024 * 1024  # records read and checked at a time


def stable_hash(text: str) -> int:
    """A 64-bit hash of ``text`` that every process computes alike (unlike ``hash``), as a signed
    integer SQLite stores: two C checksums side by side."""
    data = text.encode("utf-8", "surrogatepass")
    value = (zlib.crc32(data) << 32) | zlib.adler32(data)
    return value - (1 << 64) if value >= 1 << 63 else value


_HIGH = 1 << 31
_WRAP = 1 << 64


def stable_hashes(texts: Iterable[str]) -> list[int]:
    """:func:`stable_hash` of many texts, the checksums computed in C over the whole list."""
    high, low = stable_hash_halves(texts)
    return [(c << 32 | a) - _WRAP if c >= _HIGH else c << 32 | a for c, a in zip(high, low, strict=True)]


def stable_hash_halves(texts: Iterable[str]) -> tuple[list[int], list[int]]:
    """The two checksums :func:`stable_hash` puts side by side, of many texts, computed in C (SQLite
    puts them together as it stores them: ``(high << 32) | low`` is the same signed integer)."""
    data = [t.encode("utf-8", "surrogatepass") for t in texts]
    return list(map(zlib.crc32, data)), list(map(zlib.adler32, data))


class Columns(list[tuple[str, ...]]):
    """A chunk's values a column at a time, split from ``text``, its records a line each (when
    known): no value is longer than its longest line."""

    def __init__(self, columns: Iterable[tuple[str, ...]], text: str | None = None) -> None:
        super().__init__(columns)
        self._text = text
        self._longest: int | None = None

    @property
    def longest(self) -> int | None:
        """The length of the longest line, found once, when asked for (None: not known)."""
        if self._longest is None and self._text is not None:
            self._longest = max(map(len, self._text.split("\n")))
        return self._longest


def _columns_of_plain(chunk: str, delimiter: str, width: int) -> tuple[Columns, int] | None:
    """The columns of whole records without quotes, split in C; None when a record is blank or of
    another width (the csv module then reads them)."""
    body = chunk[:-2] if chunk.endswith("\r\n") else chunk[:-1] if chunk.endswith("\n") else chunk
    if "\r" in body:
        body = body.replace("\r\n", "\n")
        if "\r" in body:
            return None
    n = body.count("\n") + 1
    flat = body.replace("\n", delimiter).split(delimiter)
    if len(flat) != n * width or not body:
        return None
    return Columns((tuple(flat[c::width]) for c in range(width)), body), n


@dataclass
class Chunk:
    """About a MiB of a part's whole records, a column at a time."""

    columns: list[tuple[str, ...]]
    found: dict[int, Problem]  # rows of another width
    blank: Sequence[int]  # blank lines (no rows)
    starts: Sequence[int]  # the part-relative line each record starts on
    index: int  # the part-relative index of the first record
    n: int  # records
    rows: list[list[str]] | None = None  # the records as read, when read with the csv module


def record_chunks(part: Part, rules: RowRules) -> Iterator[Chunk]:
    """The records of a part a chunk at a time: a chunk without quotes is split in C straight into
    columns; others are read with the csv module."""
    raw: Any = part.data.obj
    start = part.header_len
    stop = len(part.data)
    line = 0
    index = 0
    width = len(rules.fields)
    while start < stop:
        limit = min(stop, start + CHUNK_BYTES)
        last = raw.rfind(NEWLINE, start, limit)
        # Without a quote, the records end at the last line break (found in C, as memchr finds it).
        quoted = last < 0 or raw.find(QUOTE, start, limit if limit == stop else last) >= 0
        end = last_boundary(raw, start, limit) if quoted else last + 1
        if end == start:
            end = stop
            quoted = raw.find(QUOTE, start, end) >= 0
        with memoryview(raw)[start:end] as view:  # decoded without a copy
            chunk = str(view, "utf-8", "replace")
        flat = None if quoted else _columns_of_plain(chunk, rules.delimiter, width)
        if flat is not None:
            plain, n = flat
            yield Chunk(plain, {}, [], range(line, line + n), index, n)
            line += n  # no quotes: a record a line
            index += n
            start = end
            continue
        else:
            reader = csv.reader(io.StringIO(chunk, newline=""), delimiter=rules.delimiter)
            rows = list(reader)
            n = len(rows)
            starts = range(line, line + n) if reader.line_num == n else _starts(rows, line)
            columns, found = rules.columns(rows)
            yield Chunk(columns, found, [i for i, row in enumerate(rows) if not row], starts, index, n, rows)
        line += raw.count(NEWLINE, start, end)
        index += n
        start = end


def key_column(columns: list[tuple[str, ...]], rules: RowRules) -> Sequence[str]:
    """Each row's key as one text ("" when a part of it is empty)."""
    if len(rules.keys) == 1:
        return columns[rules.keys[0]]
    return ["\x1f".join(k) if all(k) else "" for k in zip(*(columns[c] for c in rules.keys), strict=True)]


def _starts(rows: Sequence[Sequence[str]], line: int) -> list[int]:
    """The line each row starts on, for rows some of whose quoted values hold line breaks."""
    starts = []
    for row in rows:
        starts.append(line)
        line += 1 + sum(v.count("\n") + v.count("\r") - v.count("\r\n") for v in row)
    return starts


class OnInvalidRows(str, enum.Enum):
    """What becomes of rows pre-flight predicts Marketo will (or may) fail."""

    SEND = "send"  # report them, and send them as they are (Marketo decides)
    SKIP = "skip"  # keep them out: they go into the failures file, refused before upload
    FAIL = "fail"  # stop before anything is sent

    @classmethod
    def parse(cls, value: Any) -> OnInvalidRows:
        try:
            return cls(str(value.value if isinstance(value, enum.Enum) else value).lower())
        except ValueError:
            raise SourceError(f"on_invalid_rows must be 'send', 'skip' or 'fail', not {value!r}") from None


class OnRepeatedKeys(str, enum.Enum):
    """What becomes of rows whose key (lookup field, email, dedupe fields) appeared before."""

    WARN = "warn"  # report them and send every row
    KEEP_LAST = "keep_last"  # send only the last row of each key, so the later row wins
    FAIL = "fail"  # stop before anything is sent

    @classmethod
    def parse(cls, value: Any) -> OnRepeatedKeys:
        try:
            return cls(str(value.value if isinstance(value, enum.Enum) else value).lower())
        except ValueError:
            raise SourceError(
                f"on_repeated_keys must be 'warn', 'keep_last' or 'fail', not {value!r}"
            ) from None


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
        longest = columns.longest if isinstance(columns, Columns) and self._has_lengths else None
        for column, spec in enumerate(self.fields):
            if spec is None:
                continue
            for i, problem in column_problems(spec, columns[column], self.good, longest):
                rows.setdefault(i, []).append(problem)
        return {i: RowProblems(tuple(problems)) for i, problems in rows.items()}

    @property
    def _has_lengths(self) -> bool:
        """Some column's rule is a length (then the chunk's longest line may clear them all)."""
        return any(
            f is not None and f.data_type not in TYPED and (f.length is not None or f.data_type in LENGTHY)
            for f in self.fields
        )

    def key_of(self, row: Sequence[str]) -> tuple[str, ...] | None:
        if not self.keys or len(row) != len(self.fields):
            return None
        key = tuple(row[k] for k in self.keys)
        return key if all(key) else None


@dataclass
class CheckReport:
    """What the checks found: by reason, the rows predicted to fail (Adobe shows such rows failing,
    or they may fail) and to be warned, with their first locations, and repeated keys.

    A row is counted under every reason it has (a failing value and an invalid email address: under
    both), and once in the totals: ``rows_failing`` (rows predicted to fail), ``rows_certain_to_fail``
    and ``rows_warned`` (rows with a warning that are not predicted to fail, since Marketo does not
    import those)."""

    records: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    expected: dict[str, str] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    repeated_keys: int = 0  # keys found on more than one row
    repeated_rows: int = 0  # rows whose key is on an earlier row
    repeated_examples: list[str] = field(default_factory=list)
    rows_failing: int = 0  # rows predicted to fail (or to possibly fail), each once
    rows_certain_to_fail: int = 0  # rows Adobe shows failing, each once
    rows_warned: int = 0  # rows predicted to be imported with a warning, each once

    def add(self, problems: Problem | RowProblems, where: Location | None) -> None:
        """Count one row's problems (a :class:`Problem` alone, or every problem of the row)."""
        row = problems if isinstance(problems, RowProblems) else RowProblems((problems,))
        reasons = set()
        for problem in row.problems:
            reason = self._reason(problem)
            if reason in reasons:
                continue
            reasons.add(reason)
            counts = self.warnings if problem.verdict is Verdict.WARNS else self.failures
            counts[reason] += 1
            self.verdicts.setdefault(reason, problem.verdict)
            self.expected.setdefault(reason, problem.expected)
            places = self.examples.setdefault(reason, [])
            if len(places) < EXAMPLES and where is not None:
                places.append(str(where))
        if row.verdict.predicted_failure:
            self.rows_failing += 1
            self.rows_certain_to_fail += row.certain
        else:
            self.rows_warned += 1

    def _reason(self, problem: Problem) -> str:
        """The problem's reason, as a reason has one verdict: should two problems of different
        verdicts share their words (two fields of one display name), the later is told apart."""
        known = self.verdicts.get(problem.reason)
        if known is None or known is problem.verdict:
            return problem.reason
        return f"{problem.reason} ({problem.verdict.value.replace('_', ' ')})"

    def lines(self) -> list[str]:
        """One line per reason, most frequent first, for the log and for messages."""
        out = []
        for reason, count in self.failures.most_common():
            verdict = "fail" if self.verdicts[reason] is Verdict.FAILS else "may fail"
            out.append(self._line(reason, count, verdict))
        for reason, count in self.warnings.most_common():
            out.append(self._line(reason, count, "warned"))
        if self.repeated_rows:
            out.append(
                f"{self.repeated_rows:,} rows repeat the key of an earlier row ({self.repeated_keys:,} keys), "
                f"e.g. {'; '.join(self.repeated_examples)}"
            )
        return out

    def _line(self, reason: str, count: int, verdict: str) -> str:
        expected = f", expected {self.expected[reason]}" if self.expected.get(reason) else ""
        return (
            f"{count:,} rows {verdict}: {reason}{expected} (e.g. {'; '.join(self.examples.get(reason, []))})"
        )

    def to_json(self) -> dict[str, Any]:
        """The plan's and the summary's ``row_checks``."""
        return {
            "records": self.records,
            "rows_predicted_to_fail": self.rows_failing,
            "rows_certain_to_fail": self.rows_certain_to_fail,
            "rows_predicted_warned": self.rows_warned,
            "failures": {
                reason: {
                    "rows": n,
                    "verdict": self.verdicts[reason].value,
                    "expected": self.expected.get(reason, ""),
                    "first": self.examples.get(reason, []),
                }
                for reason, n in self.failures.most_common()
            },
            "warnings": {
                reason: {"rows": n, "first": self.examples.get(reason, [])}
                for reason, n in self.warnings.most_common()
            },
            "repeated_keys": self.repeated_keys,
            "rows_repeating_a_key": self.repeated_rows,
            "repeated_key_examples": list(self.repeated_examples),
        }
