"""The checks stage: every record's values against Marketo's field types (from the describe call
pre-flight makes), empty keys, rows of the wrong width, and repeated keys, before anything is sent.

It reads the parts the cutter makes (whole records, with the pieces of files they came from), so
it costs a pass of the source that pre-flight makes anyway. Column values are checked a column at a
time, matched in C against the field's pattern (:func:`marketo_provider.api.fields.column_problems`).
Repeated keys are found in bounded memory, whatever the source's size: a hash of each key goes into
an SQLite table on disk, which groups them once the pass is over.
"""

from __future__ import annotations

import enum
import os
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from marketo_provider.api import ObjectType
from marketo_provider.api.fields import Field, Problem, Verdict, column_problems, empty_key_problem
from marketo_provider.sources.base import SourceError
from marketo_provider.sources.header import Header
from marketo_provider.sources.parts import Part
from marketo_provider.sources.records import LineTracker, Location, part_rows

EXAMPLES = 5  # locations kept per reason


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
class RowRules:
    """What the checks look at: the field of each column (None: not checked) and the key columns."""

    fields: tuple[Field | None, ...]
    keys: tuple[int, ...]
    key_names: tuple[str, ...]
    empty_key: Problem
    delimiter: str

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

    def problems(self, rows: Sequence[Sequence[str]]) -> dict[int, Problem]:
        """The first problem of each row that has one (the key first, then the columns in order,
        as Marketo reports one reason a row), by the row's index."""
        width = len(self.fields)
        found: dict[int, Problem] = {}
        blank = [""] * width
        if any(len(row) != width for row in rows):
            for i, row in enumerate(rows):
                if row and len(row) != width:
                    found[i] = Problem(
                        Verdict.MAY_FAIL,
                        f"Invalid row: {len(row)} values for {width} columns",
                        f"{width} values",
                    )
            rows = [row if len(row) == width else blank for row in rows]
        columns = list(zip(*rows, strict=True)) if rows else []
        for k in self.keys:
            for i, value in enumerate(columns[k] if columns else ()):
                if not value and i not in found and rows[i] is not blank:
                    found[i] = self.empty_key
        for column, spec in enumerate(self.fields):
            if spec is None or not columns:
                continue
            for i, problem in column_problems(spec, columns[column]):
                if i not in found or (
                    found[i].verdict is Verdict.WARNS and problem.verdict is not Verdict.WARNS
                ):
                    found[i] = problem
        return found

    def key_of(self, row: Sequence[str]) -> tuple[str, ...] | None:
        if not self.keys or len(row) != len(self.fields):
            return None
        key = tuple(row[k] for k in self.keys)
        return key if all(key) else None


@dataclass
class CheckReport:
    """What the checks found: rows predicted to fail (Adobe shows such rows failing, or they may
    fail) and to be warned, by reason with their first locations, and repeated keys."""

    records: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    expected: dict[str, str] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    repeated_keys: int = 0  # keys found on more than one row
    repeated_rows: int = 0  # rows whose key is on an earlier row
    repeated_examples: list[str] = field(default_factory=list)

    @property
    def rows_failing(self) -> int:
        return sum(self.failures.values())

    @property
    def rows_certain_to_fail(self) -> int:
        return sum(n for r, n in self.failures.items() if self.verdicts[r] is Verdict.FAILS)

    @property
    def rows_warned(self) -> int:
        return sum(self.warnings.values())

    def add(self, problem: Problem, where: Location | None) -> None:
        counts = self.warnings if problem.verdict is Verdict.WARNS else self.failures
        counts[problem.reason] += 1
        self.verdicts.setdefault(problem.reason, problem.verdict)
        self.expected.setdefault(problem.reason, problem.expected)
        places = self.examples.setdefault(problem.reason, [])
        if len(places) < EXAMPLES and where is not None:
            places.append(str(where))

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


class RowChecks:
    """The checks over parts given in order from the start of a source. Keys go to an SQLite file
    in a temporary folder, removed by :meth:`close`; the ordinals (from 0, blank lines counted) of
    rows to keep out are kept there too."""

    def __init__(self, rules: RowRules, *, values: bool = True, keys: bool = True) -> None:
        self.rules = rules
        self.report = CheckReport()
        self._values = values
        self._keys = keys and bool(rules.keys)
        self._lines = LineTracker()
        self._folder = tempfile.TemporaryDirectory(prefix="marketo-checks-")
        self._db = sqlite3.connect(os.path.join(self._folder.name, "checks.db"))
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "temp_store=FILE", "cache_size=-16000"):
            self._db.execute(f"PRAGMA {pragma}")
        # A key's hash, the row's ordinal, the key, and where the row is: the part and its line there.
        self._db.execute(
            "CREATE TABLE keys (h INTEGER, o INTEGER, k TEXT, p INTEGER, line INTEGER, i INTEGER)"
        )
        self._parts: list[Any] = []  # each part's PartLines, to say where a repeated key is
        self._db.execute("CREATE TABLE invalid (o INTEGER)")
        self._finished = False

    def check_part(self, part: Part) -> None:
        lines = self._lines.lines(part)
        self._parts.append(lines)
        starts: list[int] = []
        rows: list[list[str]] = []
        for line, row in part_rows(part, self.rules.delimiter):
            starts.append(line)
            rows.append(row)
        first = self.report.records
        self.report.records += len(rows)
        if self._values:
            invalid = []
            for i, problem in sorted(self.rules.problems(rows).items()):
                self.report.add(problem, lines.locate(starts[i], i))
                if problem.verdict.predicted_failure:
                    invalid.append((first + i,))
            self._db.executemany("INSERT INTO invalid VALUES (?)", invalid)
        if self._keys:
            key_of = self.rules.key_of
            p = len(self._parts) - 1
            keyed = []
            for i, row in enumerate(rows):
                key = key_of(row)
                if key is not None:
                    text = key[0] if len(key) == 1 else "\x1f".join(key)
                    keyed.append((hash(text), first + i, text, p, starts[i], i))
            self._db.executemany("INSERT INTO keys VALUES (?, ?, ?, ?, ?, ?)", keyed)

    def finish(self) -> CheckReport:
        """Group the keys: how many repeat, and where the first of them are."""
        if self._finished:
            return self.report
        self._finished = True
        if not self._keys:
            return self.report
        db = self._db
        db.execute(
            "CREATE TABLE repeated AS SELECT h, k, COUNT(*) AS n, MIN(o) AS first, MAX(o) AS last "
            "FROM keys GROUP BY h, k HAVING n > 1"
        )
        keys, rows = db.execute("SELECT COUNT(*), COALESCE(SUM(n - 1), 0) FROM repeated").fetchone()
        self.report.repeated_keys, self.report.repeated_rows = int(keys), int(rows)
        names = " and ".join(self.rules.key_names)
        for h, k, n in db.execute(
            "SELECT h, k, n FROM repeated ORDER BY first LIMIT ?", (EXAMPLES,)
        ).fetchall():
            places = [
                _where(self._parts[p].locate(line, i))
                for p, line, i in db.execute(
                    "SELECT p, line, i FROM keys WHERE h = ? AND k = ? ORDER BY o LIMIT 3", (h, k)
                )
            ]
            more = f" and {n - len(places)} more" if n > len(places) else ""
            shown = k.replace("\x1f", ", ")
            self.report.repeated_examples.append(f"{names} {shown!r} on {', '.join(places)}{more}")
        return self.report

    def dropped(self, *, invalid: bool, earlier_repeats: bool) -> Iterator[int]:
        """The ordinals of the rows to keep out, in order: those predicted to fail, and those whose
        key is on a later row."""
        self.finish()
        parts = []
        if invalid and self._values:
            parts.append("SELECT o FROM invalid")
        if earlier_repeats and self._keys:
            parts.append(
                "SELECT keys.o FROM keys JOIN repeated ON keys.h = repeated.h AND keys.k = repeated.k "
                "WHERE keys.o < repeated.last"
            )
        if not parts:
            return
        query = " UNION ".join(parts) + " ORDER BY o"
        for (o,) in self._db.execute(query):
            yield int(o)

    def count_dropped(self, *, invalid: bool, earlier_repeats: bool) -> int:
        """How many rows :meth:`dropped` would keep out."""
        return sum(1 for _ in self.dropped(invalid=invalid, earlier_repeats=earlier_repeats))

    def close(self) -> None:
        self._db.close()
        self._folder.cleanup()


def _where(location: Location | None) -> str:
    return str(location) if location is not None else "?"


REFUSED_PREFIX = "Refused before upload: "


def refused_rows(parts: Iterator[Part], rules: RowRules) -> Iterator[tuple[list[str], Location | None, str]]:
    """The rows predicted to fail, with their place and the reason they were kept out, from parts
    cut in order from the start of a source (``on_invalid_rows="skip"``)."""
    tracker = LineTracker()
    for part in parts:
        lines = tracker.lines(part)
        starts: list[int] = []
        rows: list[list[str]] = []
        for line, row in part_rows(part, rules.delimiter):
            starts.append(line)
            rows.append(row)
        for i, problem in sorted(rules.problems(rows).items()):
            if problem.verdict.predicted_failure:
                yield rows[i], lines.locate(starts[i], i), REFUSED_PREFIX + problem.reason
