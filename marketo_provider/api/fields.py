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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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


# Whole numbers (integer, score, percent); numbers (float, currency) without exponent or grouping.
_WHOLE = r"[+-]?\d+"
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"
_DATE = r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
_DATETIME = _DATE + r"[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?"
_BOOLEAN = r"(?i:true|false)"
_URL = r"(?i:[a-z][a-z0-9+.-]*://)\S+"
_EMAIL = r"[^@\s,;]+@[^@\s,;]+\.[A-Za-z]{2,}"

# dataType -> (pattern of a good value, verdict of a bad one, what a good value looks like)
_SHAPES: dict[str, tuple[str, Verdict, str]] = {
    "integer": (_WHOLE, Verdict.FAILS, "a whole number"),
    "score": (_WHOLE, Verdict.MAY_FAIL, "a whole number"),
    "percent": (_WHOLE, Verdict.MAY_FAIL, "a whole number"),
    "float": (_NUMBER, Verdict.MAY_FAIL, "a number"),
    "currency": (_NUMBER, Verdict.MAY_FAIL, "a number"),
    "boolean": (_BOOLEAN, Verdict.MAY_FAIL, "true or false"),
    "date": (_DATE, Verdict.MAY_FAIL, "a date as YYYY-MM-DD"),
    "datetime": (_DATETIME, Verdict.MAY_FAIL, "an ISO 8601 date and time, e.g. 2010-05-07T15:41:32-05:00"),
    "url": (_URL, Verdict.MAY_FAIL, "a URL with its protocol, e.g. http://example.com/"),
    "email": (_EMAIL, Verdict.WARNS, "an email address"),
}
_COMPILED = {kind: re.compile(rf"(?:{pattern})\Z") for kind, (pattern, _, _) in _SHAPES.items()}
# Joined values every one of which is empty or good (spaces around them allowed).
_ALL_GOOD = {
    kind: re.compile(rf"(?:(?:{pattern})?\n)*(?:{pattern})?") for kind, (pattern, _, _) in _SHAPES.items()
}
_WHOLE_TYPES = ("integer", "score", "percent")
# A line of joined values that is neither empty nor a good value (spaces around it allowed).
_BAD_LINES = {
    kind: re.compile(rf"^(?![ \t]*(?:{pattern})?[ \t]*$).*$", re.M)
    for kind, (pattern, _, _) in _SHAPES.items()
}


def _int32(value: str) -> bool:
    return -(2**31) <= int(value) < 2**31


def value_problem(field: Field, value: str) -> Problem | None:
    """What is wrong with ``value`` for ``field`` (an empty value is no value: never a problem
    here; required columns are checked on their own)."""
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
            return Problem(
                Verdict.MAY_FAIL, f"Invalid data type in field {field.label}", "a 32-bit whole number"
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


def column_problems(field: Field, values: Sequence[str]) -> Iterable[tuple[int, Problem]]:
    """``(index, problem)`` of every value of one column that breaks ``field``'s rule, in order.

    The common case (every value fine) is decided in C: the values are joined and the column's
    pattern is matched against all of them at once; only the values that do not fit are looked at
    one by one."""
    kind = field.data_type
    if not values:
        return
    if kind in _SHAPES:
        joined = "\n".join(values)
        if joined.count("\n") == len(values) - 1:
            if kind in _WHOLE_TYPES and joined.replace("\n", "").isdigit() and max(map(len, values)) <= 9:
                return  # unsigned whole numbers that fit in 32 bits
            if _ALL_GOOD[kind].fullmatch(joined) and (kind != "integer" or max(map(len, values)) <= 9):
                return  # every value fits: decided in one pass in C
            bad_lines = _BAD_LINES[kind]
            line = 0
            at = 0
            for match in bad_lines.finditer(joined):
                line += joined.count("\n", at, match.start())
                at = match.start()
                problem = value_problem(field, values[line])
                if problem is not None:
                    yield line, problem
            if kind == "integer":
                for i, value in enumerate(values):
                    problem = value_problem(field, value) if len(value) > 9 else None
                    if problem is not None and problem.expected == "a 32-bit whole number":
                        yield i, problem
            return
    elif kind == "string":
        limit = field.length or STRING_DEFAULT_LENGTH
        if max(map(len, values), default=0) <= limit:
            return
    elif kind in ("text", "textarea"):
        if max(map(len, values), default=0) * 4 <= TEXT_MAX_BYTES:
            return
    elif field.length is None:
        return
    for i, value in enumerate(values):
        problem = value_problem(field, value)
        if problem is not None:
            yield i, problem


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
