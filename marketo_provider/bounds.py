"""Bounds on what is shown: a list in an XCom value, a log line or a message keeps its first and
last items and counts the rest, so its size does not grow with the input (200,000 files, 100,000
columns). Everything here reads its input once, as a stream, keeping only what it shows."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

__all__ = [
    "CSV_FIELD_LIMIT",
    "ITEM_CHARS",
    "LIST_ENDS",
    "NAMED",
    "TEXT_ENDS",
    "Ends",
    "bounded_list",
    "bounded_text",
    "columns_differ",
    "cut",
    "field_too_long",
    "field_too_long_text",
    "named",
    "raise_csv_field_limit",
]

# Lists in the summary and the validate_only plan (``part_origins``) keep this many items at
# each end; a marker item between them says how many were left out.
LIST_ENDS = 10
# Texts joining many items (a part's origin, its files and byte ranges) keep this many at each end.
TEXT_ENDS = 3
# Messages naming columns, files or values name this many, then count the rest.
NAMED = 5
# The most characters of one item (a file name, a column name, a value) shown.
ITEM_CHARS = 300


def cut(text: Any, most: int = ITEM_CHARS) -> str:
    """``text`` cut to ``most`` characters (an ellipsis marks the cut)."""
    text = str(text)
    return text if len(text) <= most else text[: most - 1] + "…"


class Ends:
    """The first and last ``ends`` items of a stream and how many there were."""

    def __init__(self, ends: int) -> None:
        self.ends = ends
        self.first: list[str] = []
        self.last: deque[str] = deque(maxlen=ends)
        self.total = 0

    def add(self, item: Any) -> None:
        self.total += 1
        if len(self.first) < self.ends:
            self.first.append(cut(item))
        else:
            self.last.append(cut(item))

    @property
    def left_out(self) -> int:
        return self.total - len(self.first) - len(self.last)

    def listed(self, noun: str = "items") -> list[str]:
        """The first and last items, and between them ``"… 1,234 more <noun> …"`` when some were
        left out."""
        middle = [f"… {self.left_out:,} more {noun} …"] if self.left_out else []
        return [*self.first, *middle, *self.last]

    @classmethod
    def of(cls, items: Iterable[Any], ends: int) -> Ends:
        found = cls(ends)
        for item in items:
            found.add(item)
        return found


def bounded_list(items: Iterable[Any], *, ends: int = LIST_ENDS, noun: str = "items") -> list[str]:
    """``items`` as a list of at most ``2 * ends + 1`` strings: the first and last ``ends``, and
    between them ``"… 1,234 more <noun> …"`` when some were left out."""
    return Ends.of(items, ends).listed(noun)


def bounded_text(items: Iterable[Any], *, sep: str = "; ", ends: int = TEXT_ENDS, noun: str = "items") -> str:
    """``items`` joined by ``sep``, the first and last ``ends`` of them, with how many were left out
    and the total when some were: ``"a; b; c; … 199,994 more …; x; y; z (200,000 files)"``."""
    found = Ends.of(items, ends)
    if not found.left_out:
        return sep.join([*found.first, *found.last])
    return (
        sep.join([*found.first, f"… {found.left_out:,} more …", *found.last]) + f" ({found.total:,} {noun})"
    )


def named(items: Iterable[Any], *, most: int = NAMED, noun: str = "more", quote: bool = False) -> str:
    """The first ``most`` items, comma-separated, then ``"and 99,995 more"``: for messages."""
    shown: list[str] = []
    total = 0
    for item in items:
        total += 1
        if len(shown) < most:
            shown.append(repr(cut(item)) if quote else cut(item))
    text = ", ".join(shown)
    return text + (f" and {total - len(shown):,} {noun}" if total > len(shown) else "")


def columns_differ(found: tuple[str, ...], expected: tuple[str, ...]) -> str:
    """How two headers differ, bounded: the first differing column and a few names of each."""
    at = next((i for i, (a, b) in enumerate(zip(found, expected, strict=False)) if a != b), None)
    if at is None:
        at = min(len(found), len(expected))
    mine = repr(cut(found[at])) if at < len(found) else "nothing"
    theirs = repr(cut(expected[at])) if at < len(expected) else "nothing"
    return (
        f"it has {len(found):,} columns ({named(found, quote=True)}), the first file {len(expected):,} "
        f"({named(expected, quote=True)}); column {at + 1} is {mine} where the first file has {theirs}"
    )


# ---- csv's field limit ----------------------------------------------------------------------------

# One limit for every csv reader of a source and of result files: at least the largest part
# (Marketo takes files up to MAX_IMPORT_FILE_BYTES, so no field of a part is longer), where csv's
# own default (131,072 characters) fails a 200 KB note.
CSV_FIELD_LIMIT = 10_000_000 + 64 * 1024


def raise_csv_field_limit() -> int:
    """Raise csv's (process-wide) field limit to :data:`CSV_FIELD_LIMIT`, never lower it."""
    import csv

    if csv.field_size_limit() < CSV_FIELD_LIMIT:
        csv.field_size_limit(CSV_FIELD_LIMIT)
    return CSV_FIELD_LIMIT


def field_too_long(exc: BaseException) -> bool:
    """Whether a ``csv.Error`` is csv's field limit (its only signal is its text)."""
    return "field larger than field limit" in str(exc)


def field_too_long_text(line: int) -> str:
    return f"has a field longer than {CSV_FIELD_LIMIT:,} bytes on line {line:,}"
