"""Marketo's fields and the values each takes, as Adobe's "Field Types" page documents them, read
from the describe calls (``dataType``, ``length``), with no I/O.

What the bulk import pages show with an example is a certainty: a text value in an integer field
fails the row ("Invalid data type in field ..."), an empty lookup field fails it, an invalid email
address is a warning and the row is imported. For every other type Adobe documents the values a
field takes but shows no import of a bad one: such a row *may* fail, and is reported so.
"""

from __future__ import annotations

import enum
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "GOOD_VALUES",
    "GOOD_VALUE_CHARS",
    "LENGTHY",
    "STRING_DEFAULT_LENGTH",
    "TEXT_MAX_BYTES",
    "TYPED",
    "Field",
    "GoodValues",
    "Problem",
    "Verdict",
    "canonical_names",
    "column_problems",
    "empty_key_problem",
    "fields_of_describe",
    "value_problem",
]

# Text area fields hold up to 30,000 bytes; string fields up to describe's length (255 by default).
TEXT_MAX_BYTES = 30_000
STRING_DEFAULT_LENGTH = 255


class Verdict(str, enum.Enum):
    """What Marketo does with a row whose value breaks a rule."""

    FAILS = "fails"  # Adobe shows the row failing
    MAY_FAIL = "may_fail"  # Adobe documents the values the field takes, but not what a bad one does
    WARNS = "warns"  # imported with a warning

    @property
    def predicted_failure(self) -> bool:
        return self is not Verdict.WARNS


@dataclass(frozen=True)
class Problem:
    """A value's problem: what Marketo does about it and why, in words that name the field."""

    verdict: Verdict
    reason: str  # in Marketo's words, as its failures file would give it
    expected: str = ""  # what a good value looks like


@dataclass(frozen=True)
class Field:
    """A field as Marketo's describe call shows it."""

    name: str
    data_type: str
    length: int | None = None
    display_name: str = ""

    @property
    def label(self) -> str:
        return self.display_name or self.name


def fields_of_describe(result: Sequence[Mapping[str, Any]]) -> dict[str, Field]:
    """The fields of a describe answer's ``result``, by name (lead describe2, program member and
    custom object describe answers alike)."""
    out: dict[str, Field] = {}
    for entry in result[:1]:
        for f in entry.get("fields", []) or []:
            if not isinstance(f, Mapping) or not isinstance(f.get("name"), str):
                continue
            length = f.get("length")
            out[f["name"]] = Field(
                name=f["name"],
                data_type=str(f.get("dataType") or "string"),
                length=int(length) if isinstance(length, int) and not isinstance(length, bool) else None,
                display_name=str(f.get("displayName") or ""),
            )
    return out


# The values each type takes, as Adobe's Field Types page gives them; for dates and times, the
# W3C date-time profile of ISO 8601 that it names (https://www.w3.org/TR/NOTE-datetime), with
# calendar-valid parts. Digits are ASCII digits.
_WHOLE = r"[+-]?[0-9]+"
_NUMBER = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)"  # no exponent, no grouping, a decimal point
_MONTH = r"(?:0[1-9]|1[0-2])"
_MONTH_DAY = (
    r"(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    r"|02-(?:0[1-9]|1[0-9]|2[0-8]))"
)
# Years divisible by 4 but not by 100, or by 400 (the Gregorian calendar, year 0000 included).
_LEAP_YEAR = r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)"
_DATE = rf"(?:[0-9]{{4}}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)"
# hh 00-23, mm and ss 00-59, one or more digits of a second's fraction.
_TIME = r"(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]+)?)?"
# TZD: Z, or +hh:mm / -hh:mm within the offsets in use (UTC-12:00 to UTC+14:00). Adobe asks for the
# offset ("best practice") without requiring it, as ISO 8601 does not: a local time is taken too.
_OFFSET = r"(?:Z|\+(?:(?:0[0-9]|1[0-3]):[0-5][0-9]|14:00)|-(?:(?:0[0-9]|1[01]):[0-5][0-9]|12:00))"
# The six W3C levels: YYYY, YYYY-MM, YYYY-MM-DD, and the date with hh:mm, hh:mm:ss or hh:mm:ss.s.
_DATETIME = rf"(?:{_DATE}(?:T{_TIME}{_OFFSET}?)?|[0-9]{{4}}(?:-{_MONTH})?)"
_BOOLEAN = r"(?:[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])"
_URL = r"[A-Za-z][A-Za-z0-9+.-]*://\S+"
_EMAIL = r"[^@\s,;]+@[^@\s,;]+\.[A-Za-z]{2,}"

# dataType -> (pattern of a good value, verdict of a bad one, what a good value looks like)
_SHAPES: dict[str, tuple[str, Verdict, str]] = {
    "integer": (_WHOLE, Verdict.FAILS, "a whole number"),
    "score": (_WHOLE, Verdict.MAY_FAIL, "a whole number"),
    "percent": (_WHOLE, Verdict.MAY_FAIL, "a whole number"),
    "float": (_NUMBER, Verdict.MAY_FAIL, "a number"),
    "currency": (_NUMBER, Verdict.MAY_FAIL, "a number"),
    "boolean": (_BOOLEAN, Verdict.MAY_FAIL, "true or false"),
    "date": (_DATE, Verdict.MAY_FAIL, "a calendar date as YYYY-MM-DD"),
    "datetime": (
        _DATETIME,
        Verdict.MAY_FAIL,
        "a W3C date and time (YYYY, YYYY-MM, YYYY-MM-DD, or YYYY-MM-DDThh:mm[:ss[.s]] "
        "with Z or an offset as +hh:mm), e.g. 2010-05-07T15:41:32-05:00",
    ),
    "url": (_URL, Verdict.MAY_FAIL, "a URL with its protocol, e.g. http://example.com/"),
    "email": (_EMAIL, Verdict.WARNS, "an email address"),
}
TYPED = frozenset(_SHAPES)  # the types whose values have a shape (the others: a length at most)
LENGTHY = frozenset({"string", "text", "textarea"})  # types with a length limit even without describe's
_COMPILED = {kind: re.compile(rf"(?:{pattern})\Z") for kind, (pattern, _, _) in _SHAPES.items()}
# What a column's joined values are matched against, a line a value: a subset of the good values
# that is cheap to match (ASCII classes, little backtracking). Every line it matches is a good
# value; a line it does not match is looked at alone (value_problem decides). Whole numbers of up to
# 9 digits are the integers sure to fit in 32 bits; numbers have no leading point here, emails the
# characters most addresses are made of.
_FAST = {
    **{kind: pattern for kind, (pattern, _, _) in _SHAPES.items()},
    "integer": r"[+-]?[0-9]{1,9}",
    "float": r"[+-]?[0-9]+\.?[0-9]*",
    "currency": r"[+-]?[0-9]+\.?[0-9]*",
    "email": r"[0-9A-Za-z._%+'-]+@[0-9A-Za-z.-]+\.[A-Za-z]{2,}",
}
# No pattern matches a line break, so each repetition is one line: none is given back, and Python
# 3.11 on is told so (a possessive repeat keeps no state to backtrack to, line after line).
_ONCE = "+" if sys.version_info >= (3, 11) else ""
_LINES = {kind: re.compile(rf"(?:{pattern}\n)*{_ONCE}") for kind, pattern in _FAST.items()}
_LINES_OR_EMPTY = {kind: re.compile(rf"(?:\n|{pattern}\n)*{_ONCE}") for kind, pattern in _FAST.items()}
_PAST_32_BITS = "past 32 bits"

# Good values remembered for an import, over all its columns (a column's repeated values, such as
# dates, flags and scores, are matched once), and the longest value remembered.
GOOD_VALUES = 65_536
GOOD_VALUE_CHARS = 64
# A settled column (GoodValues.settled) is matched whole while at most one value in this many does
# not fit its pattern (each such value is then looked at alone); beyond, distinct values are.
SETTLED_MISFITS = 64


def _int32(value: str) -> bool:
    return -(2**31) <= int(value) < 2**31


def value_problem(field: Field, value: str) -> Problem | None:
    """What is wrong with ``value`` for ``field`` (an empty value is no value: never a problem
    here; required columns are checked on their own). Spaces around a value are not part of it."""
    if value == "":
        return None
    kind = field.data_type
    shape = _SHAPES.get(kind)
    if shape is not None:
        _, verdict, good = shape
        if not _COMPILED[kind].match(value.strip()):
            if verdict is Verdict.WARNS:
                return Problem(verdict, "Invalid email address")
            return Problem(verdict, f"Invalid data type in field {field.label}", good)
        if kind == "integer" and not _int32(value.strip()):
            # A whole number Marketo's integer may not hold: a reason of its own, since its verdict
            # (may fail) is not that of a value that is no whole number at all (fails).
            return Problem(
                Verdict.MAY_FAIL,
                f"Invalid data type in field {field.label} ({_PAST_32_BITS})",
                "a whole number from -2147483648 to 2147483647",
            )
        if field.length is not None and len(value) > field.length:
            # Describe gives some typed fields a length (emails, URLs, phone numbers): Adobe
            # documents lengths for strings and text areas only, so a longer value may fail.
            return Problem(
                Verdict.MAY_FAIL,
                f"Value too long for field {field.label}",
                f"up to {field.length} characters",
            )
        return None
    if kind == "string":
        limit = field.length or STRING_DEFAULT_LENGTH
        if len(value) > limit:
            return Problem(
                Verdict.MAY_FAIL, f"Value too long for field {field.label}", f"up to {limit} characters"
            )
    elif kind in ("text", "textarea"):
        if len(value.encode("utf-8")) > TEXT_MAX_BYTES:
            return Problem(
                Verdict.MAY_FAIL, f"Value too long for field {field.label}", f"up to {TEXT_MAX_BYTES:,} bytes"
            )
    elif field.length is not None and len(value) > field.length:
        return Problem(
            Verdict.MAY_FAIL, f"Value too long for field {field.label}", f"up to {field.length} characters"
        )
    return None


class GoodValues:
    """Values already found good, by data type, up to :data:`GOOD_VALUES` of them (whether a value
    of a typed field is good depends on the type alone)."""

    def __init__(self, limit: int = GOOD_VALUES) -> None:
        self.limit = limit
        self.size = 0
        self._by_type: dict[str, set[str]] = {}
        self.unique: set[str] = set()  # the fields whose values were found not to repeat
        # The fields whose values repeat and were all known already (good, or bad) in a chunk: from
        # then on matched whole, the few that do not fit looked at alone, until too many do not.
        self.settled: set[str] = set()
        self.unsettled: set[str] = set()  # fields that had too many such values: never settled again

    def of(self, data_type: str) -> set[str]:
        return self._by_type.get(data_type, set())

    def add(self, data_type: str, values: Iterable[str]) -> int:
        """Learn ``values`` good; how many were new."""
        if self.size >= self.limit:
            return 0
        known = self._by_type.setdefault(data_type, set())
        before = len(known)
        room = self.limit - self.size
        for value in values:
            if len(value) <= GOOD_VALUE_CHARS:
                known.add(value)
                room -= 1
                if room <= 0:
                    break
        self.size += len(known) - before
        return len(known) - before

    def settle(self, name: str) -> None:
        if name not in self.unsettled:
            self.settled.add(name)

    def unsettle(self, name: str) -> None:
        self.settled.discard(name)
        self.unsettled.add(name)


def _bad_lines(
    field: Field, values: Sequence[str], *, empty: bool = False, one_line: bool = False
) -> list[tuple[int, Problem]]:
    """``(index, problem)`` of each of ``values`` that has a problem (``empty``: some values may be
    empty; ``one_line``: none holds a line break), in order. Decided in C where the values are good:
    they are joined a line a value and matched at once; a line that does not match is looked at
    alone, and matching goes on after it."""
    found = _few_bad_lines(field, values, empty=empty, one_line=one_line)
    assert found is not None  # no bound
    return found


def _few_bad_lines(
    field: Field,
    values: Sequence[str],
    *,
    empty: bool = False,
    one_line: bool = False,
    most: int | None = None,
) -> list[tuple[int, Problem]] | None:
    """:func:`_bad_lines`, or None once more than ``most`` values do not fit the column's pattern
    (or some value holds a line break) when ``most`` is given."""
    joined = "\n".join(values) + "\n"
    found: list[tuple[int, Problem]] = []
    if not one_line and joined.count("\n") != len(values):  # values with line breaks: one at a time
        if most is not None:
            return None
        for i, value in enumerate(values):
            problem = value_problem(field, value)
            if problem is not None:
                found.append((i, problem))
        return found
    lines = (_LINES_OR_EMPTY if empty else _LINES)[field.data_type]
    end = len(joined)
    at = line = 0
    seen: dict[str, Problem | None] = {}  # a value that does not fit, looked at once
    while True:
        matched = lines.match(joined, at)
        assert matched is not None  # the pattern matches no line at least
        stop = matched.end()
        if stop == end:
            return found
        if most is not None:
            most -= 1
            if most < 0:
                return None
        line += joined.count("\n", at, stop)
        value = values[line]
        if value in seen:
            problem = seen[value]
        else:
            problem = seen[value] = value_problem(field, value)
        if problem is not None:
            found.append((line, problem))
        at = stop + len(value) + 1
        line += 1


def _places(values: Sequence[str], bad: Mapping[str, Problem]) -> Iterable[tuple[int, Problem]]:
    """``(index, problem)`` of the values that are in ``bad``, in order: a few bad values are found
    by C scans of the column, many by one pass."""
    if len(bad) > 8:
        for i, value in enumerate(values):
            problem = bad.get(value)
            if problem is not None:
                yield i, problem
        return
    found = []
    for value, problem in bad.items():
        at = -1
        while True:
            try:
                at = values.index(value, at + 1)
            except ValueError:
                break
            found.append((at, problem))
    yield from sorted(found, key=lambda item: item[0])


def column_problems(
    field: Field,
    values: Sequence[str],
    good: GoodValues | None = None,
    longest: int | None = None,
    *,
    one_line: bool = False,
) -> Iterable[tuple[int, Problem]]:
    """``(index, problem)`` of every value of one column that breaks ``field``'s rule, in order
    (``longest``: no value is longer, and ``one_line``: no value holds a line break, where the
    caller knows it).

    The common case (every value fine) is decided in C. A column whose values repeat is checked a
    distinct value at a time: the values not yet known good (``good``, which learns them) are
    joined and matched at once; once a chunk brings no value not known, the column is matched whole
    (as long as few values do not fit). A column of values that do not repeat is joined and matched
    whole. Only values that do not fit are looked at one by one."""
    kind = field.data_type
    if not values:
        return
    if kind in _SHAPES:
        found: Iterable[tuple[int, Problem]] = _shape_problems(field, values, good, one_line=one_line)
        if (
            field.length is not None
            and (longest if longest is not None else max(map(len, values), default=0)) > field.length
        ):
            found = _too_long(field, values, found)
        yield from found
        return
    if kind == "string":
        limit = field.length or STRING_DEFAULT_LENGTH
        if (longest if longest is not None else max(map(len, values), default=0)) <= limit:
            return
    elif kind in ("text", "textarea"):
        if (longest if longest is not None else max(map(len, values), default=0)) * 4 <= TEXT_MAX_BYTES:
            return
    elif field.length is None or (longest is not None and longest <= field.length):
        return
    for i, value in enumerate(values):
        problem = value_problem(field, value)
        if problem is not None:
            yield i, problem


def _shape_problems(
    field: Field, values: Sequence[str], good: GoodValues | None, *, one_line: bool
) -> Iterator[tuple[int, Problem]]:
    """The values of a column of a typed field (``_SHAPES``) whose shape does not fit."""
    kind = field.data_type
    if good is not None and field.name in good.unique:
        yield from _bad_lines(field, values, empty=True, one_line=one_line)
        return
    if good is not None and field.name in good.settled:
        found = _few_bad_lines(
            field, values, empty=True, one_line=one_line, most=len(values) // SETTLED_MISFITS
        )
        if found is not None:
            yield from found
            return
        good.unsettle(field.name)
    distinct = set(values)
    distinct.discard("")
    if good is not None and len(distinct) > len(values) // 2:
        good.unique.add(field.name)  # from the next chunk on, matched whole
    known = good.of(kind) if good is not None else None
    if known:
        distinct = distinct - known
    if not distinct:
        if good is not None:
            good.settle(field.name)
        return
    new = list(distinct)
    bad = {new[i]: problem for i, problem in _bad_lines(field, new, one_line=one_line)}
    if good is not None and field.name not in good.unique:
        learnt = good.add(kind, (v for v in new if v not in bad) if bad else new)
        if not learnt:
            good.settle(field.name)  # nothing new was good: the values are known
    if bad:
        yield from _places(values, bad)


def _too_long(
    field: Field, values: Sequence[str], found: Iterable[tuple[int, Problem]]
) -> list[tuple[int, Problem]]:
    """``found`` with the values longer than the field's describe length (which may fail: Adobe
    documents a length for strings and text areas only), in order; a value keeps its first
    problem."""
    problems = dict(found)
    limit = field.length or 0
    for i, value in enumerate(values):
        if i not in problems and len(value) > limit:
            problems[i] = Problem(
                Verdict.MAY_FAIL, f"Value too long for field {field.label}", f"up to {limit} characters"
            )
    return sorted(problems.items())


def empty_key_problem(fields: Sequence[str]) -> Problem:
    """An empty lookup field (or custom object dedupe field): Marketo fails the row."""
    names = ", ".join(fields)
    return Problem(Verdict.FAILS, f"Lookup field '{names}' is required and has no value", "a value")


def canonical_names(names: Sequence[str], known: Iterable[str]) -> dict[str, str]:
    """Header names that match a field of describe's only when case is ignored, mapped to the
    field's name as describe spells it (names that match exactly, or none, or more than one field,
    are left out)."""
    known = list(known)
    exact = set(known)
    by_fold: dict[str, list[str]] = {}
    for name in known:
        by_fold.setdefault(name.casefold(), []).append(name)
    out: dict[str, str] = {}
    for name in names:
        if name in exact:
            continue
        matches = by_fold.get(name.strip().casefold(), [])
        if len(matches) == 1:
            out[name] = matches[0]
    return out
