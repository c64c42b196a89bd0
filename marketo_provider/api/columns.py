"""A column of values checked against its field's rule at once, the common case decided in C:
the values joined a line each and matched whole against a cheap subset of the good values
(:mod:`marketo_provider.api.fields` states the rules), repeated values matched once, and only the
values that do not fit looked at one by one."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence

from marketo_provider.api.fields import (
    _SHAPES,
    STRING_DEFAULT_LENGTH,
    TEXT_MAX_BYTES,
    Field,
    Problem,
    Verdict,
    value_problem,
)

__all__ = [
    "GOOD_VALUES",
    "GOOD_VALUE_CHARS",
    "SETTLED_MISFITS",
    "GoodValues",
    "column_problems",
]

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

# Good values remembered for an import, over all its columns (a column's repeated values, such as
# dates, flags and scores, are matched once), and the longest value remembered.
GOOD_VALUES = 65_536
GOOD_VALUE_CHARS = 64
# A settled column (GoodValues.settled) is matched whole while at most one value in this many does
# not fit its pattern (each such value is then looked at alone); beyond, distinct values are.
SETTLED_MISFITS = 64


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
