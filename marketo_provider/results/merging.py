"""Merging a kind of result file (failures or warnings) over an import's parts: every batch's file
downloaded in part order into one file with one header, the reason column last, the job's format;
the rows counted per reason in bounded memory. When the import can trace them, every row gains the
file and line (or query row) of the record it echoes, and the rows refused before upload are added
after the batches'."""

from __future__ import annotations

import csv
import io
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from marketo_provider.api import FileFormat, MarketoAnswerError, ObjectType
from marketo_provider.api.limits import MAX_IMPORT_FILE_BYTES
from marketo_provider.api.redaction import server_text
from marketo_provider.api.targets import FAILURE_REASON_COLUMN, WARNING_REASON_COLUMN
from marketo_provider.bounds import field_too_long, field_too_long_text, raise_csv_field_limit

# Merged files are kept in memory up to this size, then spill to a temporary file.
_SPOOL_BYTES = 8 * 1024 * 1024
# failure_reasons / warning_reasons keep this many reasons, most frequent first; the rows of the
# others are counted under OTHER_REASONS.
REASONS_KEPT = 100
OTHER_REASONS = "(other reasons)"
# Distinct reasons counted per kind (the first ones met; rows with later ones count as other reasons),
# and the characters kept of each: the memory reasons take stays small whatever a file holds.
REASONS_COUNTED = 10_000
REASON_CHARS = 500


class ResultFileSource(Protocol):
    def download_result_file(
        self,
        object_type: str | ObjectType,
        batch_id: int,
        kind: str,
        dest: Any,
        *,
        custom_object_name: str | None = None,
    ) -> int | None: ...


@dataclass(frozen=True)
class MergedFile:
    """A merged failures or warnings file, positioned at its start."""

    kind: str
    file: IO[bytes]
    batches: int  # how many batches contributed rows
    reasons: dict[str, int] = field(default_factory=dict)  # rows per reason, most frequent first
    rows: dict[int, int] = field(default_factory=dict)  # rows in the file of each batch that had one
    refused: int = 0  # rows refused before upload, added after the batches'

    def read_text(self) -> str:
        self.file.seek(0)
        return self.file.read().decode("utf-8")


# A result file row's values (reason removed) -> where the record it echoes is in the source.
Finder = Callable[[Sequence[str]], Any]
SOURCE_COLUMNS = ("Source", "Source Line")
# kind, batch ids -> a context giving (batch id -> Finder, or None; rows refused before upload).
Trace = Callable[
    [str, Sequence[int]], AbstractContextManager[tuple[Callable[[int], Finder] | None, Iterable[Any]]]
]


def merge_result_files(
    hook: ResultFileSource,
    object_type: ObjectType,
    batch_ids: Sequence[int],
    kind: str,
    *,
    custom_object_name: str | None = None,
    file_format: str | FileFormat = FileFormat.CSV,
    log: Any = None,
    finder: Callable[[int], Finder] | None = None,
    more_rows: Iterable[tuple[Sequence[str], Any, str]] = (),
) -> MergedFile | None:
    """Download ``kind`` (failures or warnings) of the given batches and merge them, in part order,
    into one file with a single header, counting the rows per reason (the last column). None when
    no batch has a row of that kind. Callers pass only batches whose status counts rows of that
    kind (:meth:`BatchStatus.has_rows`): every download is a call against the instance's quota.

    With ``finder`` (batch id -> a function from a row's values to the record's place in the
    source; asked in the order of ``batch_ids``), every row gains the columns ``Source`` and
    ``Source Line`` before the reason. ``more_rows`` (values, place, reason) are added at the end
    (rows refused before upload)."""
    if finder is not None:
        return _merge_traced(
            hook, object_type, batch_ids, kind, custom_object_name, file_format, log, finder, more_rows
        )
    merged = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115 - returned to the caller
    header: bytes | None = None
    contributing = 0
    reasons = _ReasonCount()
    rows: dict[int, int] = {}
    delimiter = FileFormat.parse(file_format).delimiter
    for batch_id in batch_ids:
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as one:
            if not _download(hook, object_type, batch_id, kind, custom_object_name, one):
                continue
            what = f"{kind} file of batch {batch_id}"
            first = _read_record(one, what)
            if not one.read(1):
                continue  # a header and no rows
            one.seek(len(first))
            if header is None:
                header = first
                merged.write(first)
            elif first.rstrip(b"\r\n") != header.rstrip(b"\r\n") and log is not None:
                log.warning(
                    "The %s file of batch %s has another header than the first; rows kept as they are",
                    kind,
                    batch_id,
                )
            rows[batch_id] = _count_reasons(one, len(first), delimiter, reasons, what)
            one.seek(len(first))
            start = merged.tell()
            shutil.copyfileobj(one, merged, 1024 * 1024)
            if merged.tell() > start:
                merged.seek(-1, 2)
                if merged.read(1) != b"\n":
                    merged.write(header[len(header.rstrip(b"\r\n")) :] or b"\n")
            contributing += 1
    if header is None:
        merged.close()
        return None
    merged.seek(0)
    return MergedFile(kind=kind, file=merged, batches=contributing, reasons=reasons.top(), rows=rows)


def _merge_traced(
    hook: ResultFileSource,
    object_type: ObjectType,
    batch_ids: Sequence[int],
    kind: str,
    custom_object_name: str | None,
    file_format: str | FileFormat,
    log: Any,
    finder: Callable[[int], Finder],
    more_rows: Iterable[tuple[Sequence[str], Any, str]],
) -> MergedFile | None:
    """:func:`merge_result_files` with each row traced to its source (parsed and written again)."""
    merged = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115 - returned to the caller
    out = io.TextIOWrapper(merged, encoding="utf-8", newline="", write_through=True)
    delimiter = FileFormat.parse(file_format).delimiter
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    header: list[str] | None = None
    contributing = 0
    reasons = _ReasonCount()
    per_batch: dict[int, int] = {}
    raise_csv_field_limit()
    for batch_id in batch_ids:
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as one:
            if not _download(hook, object_type, batch_id, kind, custom_object_name, one):
                continue
            text = io.TextIOWrapper(one, encoding="utf-8", errors="replace", newline="")
            rows = csv.reader(text, delimiter=delimiter)
            try:
                first = next(rows, None) or [_reason_column(kind)]
                find = finder(batch_id)
                wrote = False
                for row in rows:
                    if not row:
                        continue
                    if header is None:
                        header = [*first[:-1], *SOURCE_COLUMNS, first[-1]]
                        writer.writerow(header)
                    elif len(first) + 2 != len(header) and not wrote and log is not None:
                        log.warning(
                            "The %s file of batch %s has another header than the first; rows kept as they are",
                            kind,
                            batch_id,
                        )
                    writer.writerow([*row[:-1], *_place(find(row[:-1])), row[-1]])
                    reasons.add(row[-1])
                    per_batch[batch_id] = per_batch.get(batch_id, 0) + 1
                    wrote = True
                contributing += wrote
            except csv.Error as exc:
                what = f"{kind} file of batch {batch_id}"
                if field_too_long(exc):
                    raise MarketoAnswerError(what, field_too_long_text(rows.line_num)) from None
                raise MarketoAnswerError(what, f"cannot be read on line {rows.line_num:,}: {exc}") from None
            finally:
                text.detach()
    sent_header = getattr(more_rows, "header", None)  # the names the refused rows were read under
    refused = 0
    for values, place, reason in more_rows:
        refused += 1
        if header is None:
            names = list(sent_header) if sent_header else [f"column{i + 1}" for i in range(len(values))]
            header = [*names, *SOURCE_COLUMNS, _reason_column(kind)]
            writer.writerow(header)
        writer.writerow([*values, *_place(place), reason])
        reasons.add(reason)
    out.detach()
    if header is None:
        merged.close()
        return None
    merged.seek(0)
    return MergedFile(
        kind=kind, file=merged, batches=contributing, reasons=reasons.top(), rows=per_batch, refused=refused
    )


def _download(
    hook: ResultFileSource,
    object_type: ObjectType,
    batch_id: int,
    kind: str,
    custom_object_name: str | None,
    one: IO[bytes],
) -> bool:
    """Download a batch's ``kind`` file into ``one``, positioned at its start; False when Marketo
    sent nothing."""
    written = hook.download_result_file(
        object_type, batch_id, kind, one, custom_object_name=custom_object_name
    )
    if not written:
        return False
    one.seek(0)
    return True


def _place(place: Any) -> tuple[str, str]:
    return ("", "") if place is None else (str(place.name), str(place.line))


def _reason_column(kind: str) -> str:
    return FAILURE_REASON_COLUMN if kind == "failures" else WARNING_REASON_COLUMN


class _ReasonCount:
    """Rows per reason in bounded memory: the first :data:`REASONS_COUNTED` distinct reasons (each
    cut to a few times :data:`REASON_CHARS`) are counted; rows with any other reason are counted
    together."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.other = 0

    def add(self, reason: str) -> None:
        key = reason[: 4 * REASON_CHARS]
        if key in self.counts or len(self.counts) < REASONS_COUNTED:
            self.counts[key] += 1
        else:
            self.other += 1

    def top(self) -> dict[str, int]:
        """The :data:`REASONS_KEPT` most frequent reasons, as they may be shown (redacted, cut to
        :data:`REASON_CHARS`), most frequent first; the rows of the rest under :data:`OTHER_REASONS`."""
        shown: Counter[str] = Counter()
        for reason, count in self.counts.items():
            shown[server_text(reason, REASON_CHARS)] += count
        ranked = shown.most_common()
        kept = dict(ranked[:REASONS_KEPT])
        other = self.other + sum(count for _, count in ranked[REASONS_KEPT:])
        if other:
            kept[OTHER_REASONS] = kept.get(OTHER_REASONS, 0) + other
        return kept


def _count_reasons(
    stream: IO[bytes], body_start: int, delimiter: str, reasons: _ReasonCount, what: str
) -> int:
    """Count the rows of a result file (positioned anywhere) by their last column, the reason;
    returns how many rows it holds. A field may be as long as a part (a source's field is)."""
    raise_csv_field_limit()
    stream.seek(body_start)
    text = io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline="")
    rows = 0
    reader = csv.reader(text, delimiter=delimiter)
    try:
        for row in reader:
            if row:
                rows += 1
                reasons.add(row[-1])
    except csv.Error as exc:
        if field_too_long(exc):
            raise MarketoAnswerError(what, field_too_long_text(reader.line_num + 1)) from None
        raise MarketoAnswerError(what, f"cannot be read after {rows:,} rows: {exc}") from None
    finally:
        text.detach()
    return rows


def _read_record(stream: IO[bytes], what: str) -> bytes:
    """The first record (the header line; quoted names may hold newlines), at most a part's size."""
    line = stream.readline(MAX_IMPORT_FILE_BYTES + 1)
    while line.count(b'"') % 2 and len(line) <= MAX_IMPORT_FILE_BYTES:
        more = stream.readline(MAX_IMPORT_FILE_BYTES + 1 - len(line))
        if not more:
            break
        line += more
    if len(line) > MAX_IMPORT_FILE_BYTES:
        raise MarketoAnswerError(what, f"has a header longer than {MAX_IMPORT_FILE_BYTES:,} bytes")
    return line
