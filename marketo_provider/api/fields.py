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

__all__ = [
    "LENGTHY",
    "STRING_DEFAULT_LENGTH",
    "TEXT_MAX_BYTES",
    "TYPED",
    "Field",
    "Problem",
    "Verdict",
    "canonical_names",
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
_PAST_32_BITS = "past 32 bits"


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
