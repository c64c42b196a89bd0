"""Stage 3: the header line Marketo sees: read from the first file (or given with ``columns=``),
renamed by ``column_mapping``, and checked by Marketo's rules for names; then the columns an
import needs and the names Marketo knows (from its describe call)."""

from __future__ import annotations

import csv
import difflib
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from marketo_provider.api import FileFormat, ObjectType
from marketo_provider.api.targets import header_name_problems, why_required
from marketo_provider.bounds import NAMED, cut, named
from marketo_provider.sources.base import BOM, HEAD_BYTES, SourceError
from marketo_provider.sources.content import Content
from marketo_provider.sources.listing import SourceFile
from marketo_provider.sources.model import Source
from marketo_provider.sources.quotes import record_end

_MAX_HEADER_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Header:
    """The names every part's header line carries, and the exact bytes of that line."""

    names: tuple[str, ...]  # Marketo's names: the source's, renamed by column_mapping
    line: bytes  # what every part starts with, line terminator included, byte order mark removed
    source_offset: int  # where the body starts in the (first) file
    delimiter: str = ","
    source_names: tuple[str, ...] = ()  # as the source names them; () when the same as ``names``


@dataclass(frozen=True)
class FirstRecord:
    bom: int
    line: bytes  # without the byte order mark, terminator included
    names: tuple[str, ...]
    rest: bytes  # what was read after the line


def first_record(first: bytes, stream: Any, fmt: FileFormat, name: str) -> FirstRecord:
    """Read and parse a file's first record (its header line, when it has one)."""
    head = first
    bom = len(BOM) if head.startswith(BOM) else 0
    end = record_end(head, bom)
    while end < 0:
        more = stream.read(HEAD_BYTES)
        if not more:
            head += b"\n"
            end = record_end(head, bom)
            if end < 0:
                raise SourceError(f"the header of {name} has an unterminated quote")
            head = head[:-1]
            end = min(end, len(head))
            break
        head += more
        if len(head) > _MAX_HEADER_BYTES:
            raise SourceError(
                f"the first line of {name} is over {_MAX_HEADER_BYTES:,} bytes long: either the file has no "
                "header line and its first record is that long, or its header names more columns than any "
                "Marketo object has fields; give the columns with columns= or write a header line"
            )
        end = record_end(head, bom)
    line = head[bom:end]
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(
            f"the header of {name} is not UTF-8 (byte {exc.start + bom}: {line[exc.start : exc.start + 4]!r}); "
            "save the file as UTF-8"
        ) from None
    if not text.strip():
        raise SourceError(
            f"the first line of {name} is blank; the first line must be the header of Marketo field names"
        )
    if "\r" in text.rstrip("\r\n"):
        raise SourceError(
            f"import source {name} uses old Mac line endings (CR only); convert its line endings to LF or CR LF"
        )
    try:
        names = next(csv.reader([text.rstrip("\r\n")], delimiter=fmt.delimiter, strict=True))
    except csv.Error as exc:
        raise SourceError(f"the header of {name} cannot be read as {fmt.value}: {exc}") from None
    return FirstRecord(bom=bom, line=line, names=tuple(names), rest=head[end:])


def header_problem(names: Iterable[str], fmt: FileFormat, name: str) -> SourceError | None:
    problems = header_name_problems(names, fmt)
    return SourceError(f"the header of {name} {problems[0]}") if problems else None


def encode_header(names: Sequence[str], fmt: FileFormat, terminator: bytes = b"\n") -> bytes:
    out = io.StringIO()
    csv.writer(out, delimiter=fmt.delimiter, lineterminator=terminator.decode()).writerow(names)
    return out.getvalue().encode("utf-8")


def line_terminator(line: bytes) -> bytes:
    return b"\r\n" if line.endswith(b"\r\n") else b"\n"


def map_header(
    source_names: tuple[str, ...],
    line: bytes,
    offset: int,
    fmt: FileFormat,
    mapping: Mapping[str, str],
    name: str,
) -> Header:
    """The header Marketo sees: ``source_names`` renamed by ``mapping``, every rule checked."""
    if not mapping:
        problem = header_problem(source_names, fmt, name)
        if problem:
            raise problem
        return Header(names=source_names, line=line, source_offset=offset, delimiter=fmt.delimiter)
    missing = [k for k in mapping if k not in source_names]
    if missing:
        hints = []
        for key in missing[:NAMED]:
            close = difflib.get_close_matches(key, source_names, n=1, cutoff=0.6)
            hints.append(f"{cut(key)!r}" + (f" (is {cut(close[0])!r} meant?)" if close else ""))
        more = f" and {len(missing) - NAMED:,} more" if len(missing) > NAMED else ""
        raise SourceError(
            f"column_mapping names columns that {name} does not have: {', '.join(hints)}{more}; "
            f"its {len(source_names):,} columns are {named(source_names, quote=True)}"
        )
    seen: dict[str, str] = {}
    for column in source_names:
        target = mapping.get(column, column)
        if target in seen:
            raise SourceError(
                f"column_mapping gives {name} the column {target!r} twice: from {seen[target]!r} and {column!r}; "
                "map one of them to another name"
            )
        seen[target] = column
    names = tuple(mapping.get(n, n) for n in source_names)
    problem = header_problem(names, fmt, name)
    if problem:
        raise problem
    return Header(
        names=names,
        line=encode_header(names, fmt, line_terminator(line)),
        source_offset=offset,
        delimiter=fmt.delimiter,
        source_names=source_names,
    )


def refuse_header_in_headerless(source: Source, file: SourceFile, content: Content, bom: int) -> None:
    end = record_end(content.first, bom)
    if end < 0:
        return
    try:
        first = next(
            csv.reader(
                [content.first[bom:end].decode("utf-8").rstrip("\r\n")],
                delimiter=source.file_format.delimiter,
            )
        )
    except (UnicodeDecodeError, csv.Error, StopIteration):
        return
    # The columns as given, or as Marketo will see them, in any case: a header line, not a record.
    columns = source.columns or ()
    names = {tuple(c.strip().casefold() for c in columns)}
    names.add(tuple(source.column_mapping.get(c, c).strip().casefold() for c in columns))
    if tuple(v.strip().casefold() for v in first) in names:
        raise SourceError(
            f"{file.name} starts with a header line ({named(first)}) although columns= says the files "
            "have none; leave columns unset to read the header from the files"
        )


def renamed(header: Header, names: Sequence[str]) -> Header:
    """``header`` sent under other names (describe's spelling of names given in another case):
    the header line is written again, as with ``column_mapping``."""
    names = tuple(names)
    if names == header.names:
        return header
    fmt = next(f for f in FileFormat if f.delimiter == header.delimiter)
    return Header(
        names=names,
        line=encode_header(names, fmt, line_terminator(header.line)),
        source_offset=header.source_offset,
        delimiter=header.delimiter,
        source_names=header.source_names or header.names,
    )


def missing_columns_problem(
    header: Header, object_type: str | ObjectType, required: Iterable[str]
) -> str | None:
    """What to say when the columns every row of the import must fill are not all there."""
    missing = [c for c in required if c not in header.names]
    if not missing:
        return None
    close = {m: difflib.get_close_matches(m, header.names, n=1) for m in missing}
    hints = "".join(f" (is {close[m][0]!r} meant to be {m!r}?)" for m in missing if close[m])
    mapped = " (after column_mapping)" if header.source_names and header.source_names != header.names else ""
    return f"has no {', '.join(repr(m) for m in missing)} column{mapped}, {why_required(object_type)}{hints}"


def unknown_columns_problem(header: Header, known_fields: Iterable[str]) -> str | None:
    """Columns Marketo does not know fail every row; list them with the closest known names."""
    known = list(known_fields)
    known_set = set(known)
    unknown = [n for n in header.names if n not in known_set]
    if not unknown:
        return None
    lines = []
    for column in unknown[:NAMED]:  # the closest names of the first few: difflib is slow on many
        close = difflib.get_close_matches(column, known, n=3, cutoff=0.6)
        lines.append(f"{cut(column)!r}" + (f" (closest: {', '.join(close)})" if close else ""))
    if len(unknown) > NAMED:
        lines.append(f"and {len(unknown) - NAMED:,} more ({len(unknown):,} of {len(header.names):,} columns)")
    fix = "Use the REST API names from Marketo's describe call"
    if header.source_names:
        fix += " (rename columns with column_mapping)"
    return (
        f"has columns Marketo does not know: {'; '.join(lines)}. {fix}, or turn the check off with "
        "check_columns=False"
    )


def header_problems(name: str, problems: Iterable[str | None]) -> SourceError | None:
    """Every problem of a header in one message."""
    found = [p for p in problems if p]
    if not found:
        return None
    return SourceError(f"import source {name} " + "; it also ".join(found) + ".")
