"""Parquet (Arrow) columns in the forms Marketo documents: which types it can take (the others
refused before anything is sent, naming each column) and how each type's values are written as the
import's CSV (or TSV, SSV), a record batch at a time, in C (pyarrow.compute).

How values are written (the forms Marketo's field types document):

===========================================  =======================================================
Parquet (Arrow) type                         written as
===========================================  =======================================================
string                                       as is; quoted when it holds the delimiter, a quote
                                             (doubled) or a line break
integers                                     ``42``
booleans                                     ``true`` / ``false``
floats, decimals                             ``1234.5``, ``0.0000001``: never with an exponent;
                                             NaN and infinities are refused
date                                         ``2026-01-31``
timestamp with a time zone                   ``2026-01-31T09:30:00+01:00``: ISO 8601 in the
                                             column's zone, with its offset, to the second
timestamp without a time zone                taken as UTC: ``2026-01-31T08:30:00+00:00``
time of day                                  ``09:30:00`` (``09:30:00.250`` with a fraction)
null (any type)                              an empty field
dictionary-encoded columns                   as their values
===========================================  =======================================================

Nested columns (list, struct, map, union), binary columns and durations or intervals are refused
before anything is sent, naming each such column; NaN and infinities, NUL in text, and dates or
datetimes outside the years 1 to 9999 (as written, in the column's zone) are refused naming the
column and row.
"""

from __future__ import annotations

import decimal
import re
from typing import Any

from marketo_provider.api import FileFormat
from marketo_provider.sources.base import SourceError

# ---- what Marketo can take --------------------------------------------------------------------


def _is(pa: Any, kind: str, t: Any) -> bool:
    """``pa.types.is_<kind>(t)``, False where this pyarrow has no such type."""
    test = getattr(pa.types, f"is_{kind}", None)
    return bool(test is not None and test(t))


def _is_text(pa: Any, t: Any) -> bool:
    return _is(pa, "string", t) or _is(pa, "large_string", t) or _is(pa, "string_view", t)


def _type_problem(pa: Any, t: Any) -> str | None:
    """Why a column of Arrow type ``t`` cannot be imported, or None."""
    types = pa.types
    if types.is_dictionary(t):
        return _type_problem(pa, t.value_type)
    if isinstance(t, pa.ExtensionType):
        return _type_problem(pa, t.storage_type)
    if types.is_nested(t) or _is(pa, "list_view", t) or _is(pa, "large_list_view", t):
        return f"nested ({t}): Marketo imports one value per field; flatten it in the unload or leave it out"
    if any(_is(pa, kind, t) for kind in ("binary", "large_binary", "fixed_size_binary", "binary_view")):
        return f"binary ({t}): Marketo imports text; encode it (hex, base64) in the unload or leave it out"
    if (
        _is_text(pa, t)
        or types.is_integer(t)
        or types.is_boolean(t)
        or types.is_floating(t)
        or types.is_decimal(t)
        or types.is_date(t)
        or types.is_timestamp(t)
        or types.is_time(t)
        or types.is_null(t)
    ):
        return None
    return f"of type {t}, which has no Marketo field type; cast it to text or a number in the unload"


def check_schema(pa: Any, schema: Any, name: str) -> None:
    """Refuse the columns Marketo cannot take, naming every one of them."""
    problems = [f"{field.name!r} is {why}" for field in schema if (why := _type_problem(pa, field.type))]
    if problems:
        raise SourceError(f"import source {name} has columns that cannot be imported: " + "; ".join(problems))


# ---- values in Marketo's forms ----------------------------------------------------------------


class Writer:
    """Turns Arrow record batches into CSV lines: one large_string per row, line break included."""

    def __init__(self, pa: Any, fmt: FileFormat, ncols: int) -> None:
        self.pa = pa
        self.pc = pa.compute
        self.text = pa.large_string()
        self._empty = pa.scalar("", self.text)
        self._quote = pa.scalar('"', self.text)
        self._delimiter = pa.scalar(fmt.delimiter, self.text)
        self._newline = pa.scalar("\n", self.text)
        self._needs_quotes = f'[{fmt.delimiter}"\r\n]'
        self._special = [c.encode() for c in (fmt.delimiter, '"', "\r", "\n")]
        self._ncols = ncols

    def lines(self, batch: Any, name: str, row0: int) -> Any:
        pc = self.pc
        fields = [
            self._field(column, batch.schema.field(i).name, name, row0)
            for i, column in enumerate(batch.columns)
        ]
        if self._ncols == 1:  # an empty value alone on a line would be a blank line: quote it
            only = fields[0]
            fields[0] = pc.if_else(pc.equal(only, self._empty), self.pa.scalar('""', self.text), only)
        fields[-1] = pc.binary_join_element_wise(fields[-1], self._newline, self._empty)
        if len(fields) == 1:
            return fields[0]
        return pc.binary_join_element_wise(*fields, self._delimiter)

    def _field(self, column: Any, column_name: str, name: str, row0: int) -> Any:
        """One column as the text of its fields (quoted where needed), nulls as empty fields."""
        pa, pc, types = self.pa, self.pc, self.pa.types
        if isinstance(column.type, pa.ExtensionType):
            column = column.storage
        if types.is_dictionary(column.type):
            column = column.dictionary_decode()
        t = column.type
        if types.is_null(t):
            return pa.repeat(self._empty, len(column)).cast(self.text)
        if _is_text(pa, t):
            text = pc.fill_null(column.cast(self.text), self._empty)
            held = _bytes_of(text)  # most columns hold none of these: then no value is looked at
            if b"\0" in held:
                self._refuse(
                    pc.match_substring(text, "\0"),
                    column_name,
                    name,
                    row0,
                    "a NUL character, which Marketo "
                    "cannot take in text (a CSV source with one is refused too): remove it",
                )
            if b'"' in held:
                text = pc.replace_substring(text, '"', '""')
            if any(c in held for c in self._special):
                quote = pc.match_substring_regex(text, self._needs_quotes)
                text = pc.if_else(
                    quote, pc.binary_join_element_wise(self._quote, text, self._quote, self._empty), text
                )
            return text
        if types.is_floating(t) or types.is_decimal(t):
            if types.is_floating(t):
                bad = pc.or_(pc.is_nan(column), pc.is_inf(column))
                if pc.any(bad).as_py():
                    row = row0 + pc.index(bad, True).as_py()
                    value = column[row - row0].as_py()
                    raise SourceError(
                        f"import source {name} has {value} in column {column_name!r} (row {row:,}); Marketo "
                        "has no such number: write NULL (an empty field) instead"
                    )
                if types.is_float16(t):
                    column = column.cast(pa.float32())
            text = column.cast(self.text)
            held = _bytes_of(text)
            if b"e" in held or b"E" in held:
                text = _without_exponent(pa, text, pc.match_substring_regex(text, "[eE]"))
            return pc.fill_null(text, self._empty)
        if types.is_timestamp(t):
            return pc.fill_null(self._timestamp(column, column_name, name, row0), self._empty)
        if types.is_time(t):  # 09:30:00, a fraction only when there is one
            text = pc.replace_substring_regex(column.cast(self.text), r"\.0+$", "")
            return pc.fill_null(text, self._empty)
        if types.is_date(t):
            self._check_years(column, column_name, name, row0)
            return pc.fill_null(column.cast(self.text), self._empty)
        if types.is_integer(t) or types.is_boolean(t):
            return pc.fill_null(column.cast(self.text), self._empty)
        raise SourceError(f"import source {name}: column {column_name!r} is {_type_problem(pa, t)}")

    def _refuse(self, bad: Any, column_name: str, name: str, row0: int, what: str) -> None:
        """A :class:`SourceError` naming the first row where ``bad`` (a boolean array) holds."""
        bad = self.pc.fill_null(bad, False)
        if self.pc.any(bad).as_py():
            row = row0 + self.pc.index(bad, True).as_py()
            raise SourceError(f"import source {name} has {what} in column {column_name!r} (row {row:,})")

    def _check_years(self, wall: Any, column_name: str, name: str, row0: int) -> None:
        """Marketo's dates and datetimes are years 1 to 9999 (ISO 8601's four digits)."""
        pc = self.pc
        years = pc.year(wall)
        bad = pc.or_(pc.greater(years, 9999), pc.less(years, 1))
        if pc.any(pc.fill_null(bad, False)).as_py():
            at = pc.index(pc.fill_null(bad, False), True).as_py()
            self._refuse(
                bad,
                column_name,
                name,
                row0,
                f"a date in the year {years[at].as_py()} (as written, in the column's "
                "time zone), which Marketo cannot take: its dates are years 1 to 9999",
            )

    def _timestamp(self, column: Any, column_name: str = "", name: str = "", row0: int = 0) -> Any:
        """ISO 8601 with the offset, to the second: in the column's zone, else as UTC. Arrow's
        own text for a timestamp (``2026-01-31 08:30:00``) with a ``T`` and the offset: ten times
        faster than ``strftime``."""
        pa, pc = self.pa, self.pc
        zone = column.type.tz
        utc = column.cast(pa.timestamp(column.type.unit))  # the same instants, as UTC wall times
        seconds = pc.floor_temporal(utc, unit="second").cast(pa.timestamp("s"))
        if not zone or zone in _UTC:
            wall, offsets = seconds, pa.scalar("+00:00", self.text)
        elif _FIXED.match(zone):
            wall = pc.local_timestamp(seconds.cast(pa.timestamp("s", tz=zone)))
            offsets = pa.scalar(zone[:3] + ":" + zone[-2:], self.text)
        else:  # a named zone: each value's own offset (summer time), from the few in the batch
            wall = pc.local_timestamp(seconds.cast(pa.timestamp("s", tz=zone)))
            shift = pc.subtract(wall.cast(pa.int64()), seconds.cast(pa.int64()))
            found = pc.drop_null(pc.unique(shift))
            names = pa.array([_offset(s) for s in found.to_pylist()], self.text)
            offsets = pc.take(names, pc.index_in(shift, value_set=found))
        self._check_years(wall, column_name, name, row0)
        text = pc.replace_substring(wall.cast(self.text), " ", "T", max_replacements=1)
        return pc.binary_join_element_wise(text, offsets, self._empty)


_UTC = frozenset({"UTC", "Etc/UTC", "Z", "+00:00", "GMT", "Etc/GMT", "utc"})
_FIXED = re.compile(r"^[+-]\d\d:?\d\d$")


def _offset(seconds: int) -> str:
    """``+02:00`` for 7200 seconds east of UTC."""
    sign = "-" if seconds < 0 else "+"
    hours, minutes = divmod(abs(seconds) // 60, 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


def _bytes_of(text: Any) -> bytes:
    """The UTF-8 bytes of every value of a large_string array, one after the other."""
    buffers = text.buffers()
    if len(text) == 0 or buffers[2] is None:
        return b""
    ends = memoryview(buffers[1]).cast("q")
    return bytes(memoryview(buffers[2]).cast("B")[ends[text.offset] : ends[text.offset + len(text)]])


def _without_exponent(pa: Any, text: Any, exponent: Any) -> Any:
    """Numbers Arrow wrote with an exponent (``1e-07``, ``1.23E+4``) written out in full."""
    values = text.to_pylist()
    flags = exponent.to_pylist()
    fixed = [
        format(decimal.Decimal(v), "f") if flag and v is not None else v
        for v, flag in zip(values, flags, strict=True)
    ]
    return pa.array(fixed, pa.large_string())
