"""Results of an import: per-batch statuses summed up, and the failure and warning files of all parts
merged into one file each (one header, the reason column last, the job's format), published to
object storage or XCom."""

from __future__ import annotations

import csv
import io
import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import IO, Any, Protocol

from marketo_provider._compat import mask_uri_secrets
from marketo_provider.api import (
    FAILED,
    FAILURE_REASON_COLUMN,
    MAX_IMPORT_FILE_BYTES,
    RESULT_KINDS,
    WARNING_REASON_COLUMN,
    BatchStatus,
    FileFormat,
    ImportTarget,
    MarketoAnswerError,
    MarketoError,
    MarketoValueError,
    ObjectType,
    hide_secrets,
    server_text,
)
from marketo_provider.bounds import field_too_long, field_too_long_text, raise_csv_field_limit

# Merged files are kept in memory up to this size, then spill to a temporary file.
_SPOOL_BYTES = 8 * 1024 * 1024
# Text above this size in XCom slows the metadata database; suggest results_path instead.
XCOM_WARN_BYTES = 1024 * 1024
# The most failures or warnings text pushed to XCom; beyond it the import fails (after publishing its
# summary) asking for results_path.
XCOM_MAX_RESULT_BYTES = 4 * 1024 * 1024
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
            written = hook.download_result_file(
                object_type, batch_id, kind, one, custom_object_name=custom_object_name
            )
            if not written:
                continue
            one.seek(0)
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
            written = hook.download_result_file(
                object_type, batch_id, kind, one, custom_object_name=custom_object_name
            )
            if not written:
                continue
            one.seek(0)
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


def result_file_name(kind: str, file_format: str | FileFormat) -> str:
    return f"{kind}.{FileFormat.parse(file_format).value}"


def _scheme(location: Any) -> str:
    text = str(location)
    return text.split("://", 1)[0].lower() if "://" in text else "file"


def storage_folder(path: str, conn_id: str | None, argument: str) -> Any:
    """The ObjectStoragePath of a folder an argument (``results_path``, ``state_path``) names, or a
    clear error naming the argument."""
    from airflow.sdk import ObjectStoragePath

    mask_uri_secrets(path)
    path = _checked_uri(path, argument)
    try:
        return ObjectStoragePath(path, conn_id=conn_id) if conn_id else ObjectStoragePath(path)
    except Exception as exc:  # an unknown scheme, a malformed URI
        raise MarketoValueError(
            f"{argument} {hide_secrets(path)!r} is not a location Airflow can write: {hide_secrets(str(exc))}. Use a local "
            "folder, file://, or an object storage URI whose provider is installed (s3://, gs://, ...)"
        ) from None


def _checked_uri(path: str, argument: str) -> str:
    """``path`` as ObjectStoragePath should read it: credentials in the URI are refused (Airflow
    would take ``KEY:SECRET`` for a connection id and log it), and ``file://localhost/x`` is
    ``file:///x`` (RFC 8089) where fsspec would read ``localhost/x`` relative to the working
    directory; a ``file://`` URI naming another host is refused."""
    if "://" not in path:
        return path
    scheme, rest = path.split("://", 1)
    authority, _, below = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    conn_argument = argument.replace("_path", "_conn_id")
    if at and (":" in userinfo or scheme.lower() == "file"):
        raise MarketoValueError(
            f"{argument} {hide_secrets(path)!r} has credentials written in it, which Airflow would take for a "
            f"connection id (and log). Keep them in an Airflow connection and name it with {conn_argument}"
        )
    if scheme.lower() == "file" and host:
        if host.lower() != "localhost":
            raise MarketoValueError(
                f"{argument} {path!r} names the host {host!r}: a file:// URI names a folder on this machine "
                "(file:///path or file://localhost/path); reach another machine through its storage's URI"
            )
        return f"{scheme}:///{below}"
    return path


@dataclass(frozen=True)
class ResultsLocation:
    """Where merged results go: a folder URI (``results_path``) with its connection, or XCom."""

    path: str | None = None
    conn_id: str | None = None

    @classmethod
    def of(
        cls,
        path: str | None,
        conn_id: str | None = None,
        *,
        source: Any = None,
        source_conn_id: str | None = None,
    ) -> ResultsLocation:
        """Without ``conn_id``, a results path on the source's kind of storage (same scheme) uses
        the source's connection: the credentials that read the export write its results."""
        path = str(path).strip() if path not in (None, "") else None
        mask_uri_secrets(path)
        conn_id = conn_id or None
        same_storage = source is not None and _scheme(path) == _scheme(source) != "file"
        if path and conn_id is None and source_conn_id and same_storage:
            conn_id = source_conn_id
        return cls(path, conn_id)

    def folder(self) -> Any:
        assert self.path is not None
        return storage_folder(self.path, self.conn_id, "results_path")

    def check_writable(self) -> None:
        """Write and remove a small file in the folder, so a results location that cannot be written
        (read-only, under a regular file, no credentials) is found before anything is uploaded."""
        if not self.path:
            return
        folder = self.folder()
        probe = folder / f".marketo-write-check-{uuid.uuid4().hex[:12]}"
        try:
            if folder.protocol in ("", "file"):
                folder.mkdir(parents=True, exist_ok=True)
            with probe.open("wb") as out:
                out.write(b"")
            probe.unlink()
        except Exception as exc:
            via = f" (connection {self.conn_id!r})" if self.conn_id else ""
            raise MarketoValueError(
                f"results_path {self.path!r}{via} cannot be written: {type(exc).__name__}: {exc}. "
                "Nothing was sent to Marketo; fix the location or its connection (results_conn_id)"
            ) from None

    def write(self, merged: MergedFile, file_format: str | FileFormat) -> str:
        """Write a merged file under the folder; returns its URI as the user wrote it."""
        return write_to_object_storage(merged, str(self.path), file_format, self.conn_id)


def write_to_object_storage(
    merged: MergedFile, results_path: str, file_format: str | FileFormat, conn_id: str | None
) -> str:
    """Write a merged file under ``results_path`` (any ObjectStoragePath URI); returns its URI."""
    folder = ResultsLocation(results_path, conn_id).folder()
    if folder.protocol in ("", "file"):
        folder.mkdir(parents=True, exist_ok=True)
    name = result_file_name(merged.kind, file_format)
    target = folder / name
    merged.file.seek(0)
    with target.open("wb") as out:
        shutil.copyfileobj(merged.file, out, 1024 * 1024)
    # The URI as the user wrote it (ObjectStoragePath would put the conn id in it as userinfo).
    return hide_secrets(f"{results_path.rstrip('/')}/{name}")


@dataclass
class ImportSummary:
    """What an import (or the sensor) returns: every batch with its part and final status, the
    totals, where the merged results went, and how the import went. :meth:`to_xcom` gives the
    documented XCom ``return_value``."""

    object_type: ObjectType
    batches: Sequence[tuple[int | None, BatchStatus]] = ()  # (part, status) in part order
    failures_path: str | None = None
    warnings_path: str | None = None
    failure_reasons: dict[str, int] = field(default_factory=dict)
    warning_reasons: dict[str, int] = field(default_factory=dict)
    api_calls: int = 0
    resumes: int = 0
    parts_outcome_unknown: list[int] = field(default_factory=list)
    parts_sent_twice: list[int] = field(default_factory=list)
    origins: dict[int, str] = field(default_factory=dict)  # part -> the files and bytes it came from
    row_checks: dict[str, Any] | None = None  # what pre-flight found in the rows
    rows_kept_out: int = (
        0  # rows left out of what was sent (refused before upload, earlier repeats, unchanged)
    )
    changes: dict[str, Any] | None = None  # changed_rows_only: rows new, changed, unchanged, the state
    source: str | None = None  # how messages name the import's source
    rows: dict[str, Any] | None = None  # what became of the source's rows (the ledger's counts)
    times: dict[int, dict[str, float]] = field(default_factory=dict)  # batch id -> ImportState.part_times

    @property
    def batch_ids(self) -> list[int]:
        return [status.batch_id for _, status in self.batches]

    @property
    def rows_processed(self) -> int:
        return sum(status.rows_processed or 0 for _, status in self.batches)

    @property
    def rows_failed(self) -> int:
        return sum(status.rows_failed or 0 for _, status in self.batches)

    @property
    def rows_with_warning(self) -> int:
        return sum(status.rows_with_warning or 0 for _, status in self.batches)

    def problems(self, max_failed_rows: int | None) -> list[str]:
        """Why the task must fail after publishing (empty when it succeeds)."""
        found = [
            f"batch {status.batch_id} (part {part}) ended Failed: {status.message or 'no message from Marketo'}"
            for part, status in self.batches
            if status.status == FAILED
        ]
        if max_failed_rows is not None and self.rows_failed > max_failed_rows:
            found.append(f"{self.rows_failed} rows failed, more than max_failed_rows={max_failed_rows}")
        elif self.rows_processed == 0 and self.rows_failed > 0:
            found.append(
                f"nothing was imported: all {self.rows_failed} rows failed (see the failures for the reasons)"
            )
        return found

    def set_reasons(self, kind: str, reasons: dict[str, int]) -> None:
        if kind == "failures":
            self.failure_reasons = reasons
        else:
            self.warning_reasons = reasons

    def set_path(self, kind: str, uri: str) -> None:
        if kind == "failures":
            self.failures_path = uri
        else:
            self.warnings_path = uri

    def to_xcom(self) -> dict[str, Any]:
        """The operator's and the sensor's return value (XCom ``return_value``)."""
        return {
            "object_type": self.object_type.value,
            "source": self.source,
            "batch_ids": self.batch_ids,
            "batches": [
                {
                    **status.summary(part=part),
                    "origin": self.origins.get(part) if part is not None else None,
                    **_times(self.times.get(status.batch_id)),
                }
                for part, status in self.batches
            ],
            "rows_processed": self.rows_processed,
            "rows_failed": self.rows_failed,
            "rows_with_warning": self.rows_with_warning,
            "failures_path": self.failures_path,
            "warnings_path": self.warnings_path,
            "failure_reasons": self.failure_reasons,
            "warning_reasons": self.warning_reasons,
            "api_calls": self.api_calls,
            "resumes": self.resumes,
            "parts_outcome_unknown": list(self.parts_outcome_unknown),
            "parts_sent_twice": list(self.parts_sent_twice),
            "row_checks": self.row_checks,
            "rows_kept_out": self.rows_kept_out,
            "rows": self.rows,
            "changes": self.changes,
        }


def _times(seen: dict[str, float] | None) -> dict[str, str]:
    """A batch's ``submitted_at``, ``importing_at`` and ``done_at`` (UTC, ISO 8601), where known."""
    return {
        f"{event}_at": datetime.fromtimestamp(seen[event], timezone.utc).isoformat(timespec="milliseconds")
        for event in ("submitted", "importing", "done")
        if seen and seen.get(event) is not None
    }


def publish(
    hook: ResultFileSource,
    summary: ImportSummary,
    statuses: Sequence[BatchStatus],
    *,
    target: ImportTarget,
    file_format: str | FileFormat,
    results: ResultsLocation,
    push_xcom: Any,
    log: Any,
    trace: Trace | None = None,
) -> None:
    """Merge each kind of result file over the batches that have rows of it and publish it: written
    under the results location when there is one (the URIs go into the summary), else pushed to
    XCom under the keys ``failures`` / ``warnings``. A file is written only when it has rows.
    Results too large for XCom (:data:`XCOM_MAX_RESULT_BYTES`) are not pushed: once every kind is
    handled, a :class:`MarketoValueError` asks for ``results_path``. With ``trace``, every row names
    the file and line (or query row) it came from."""
    too_large: list[str] = []
    for kind in RESULT_KINDS:
        batch_ids = [s.batch_id for s in statuses if s.has_rows(kind)]
        with trace(kind, batch_ids) if trace is not None else nullcontext((None, ())) as (finder, more_rows):
            merged = merge_result_files(
                hook,
                target.object_type,
                batch_ids,
                kind,
                custom_object_name=target.custom_object_name,
                file_format=file_format,
                log=log,
                finder=finder,
                more_rows=more_rows,
            )
        if merged is None:
            continue
        summary.set_reasons(kind, merged.reasons)
        _check_counts(merged, statuses, log)
        with merged.file:
            if results.path:
                uri = results.write(merged, file_format)
                summary.set_path(kind, uri)
                log.info("Wrote the %s (%s) to %s", kind, _rows_from(merged), hide_secrets(uri))
            else:
                size = merged.file.seek(0, io.SEEK_END)
                if size > XCOM_MAX_RESULT_BYTES:
                    too_large.append(f"the {kind} ({size:,} bytes)")
                    continue
                text = merged.read_text()
                if len(text) > XCOM_WARN_BYTES:
                    log.warning(
                        "Pushing %s MB of %s to XCom; set results_path to keep large results in object storage",
                        f"{len(text) / 1e6:.1f}",
                        kind,
                    )
                push_xcom(kind, text)
                log.info("Pushed the %s (%s) to XCom under %r", kind, _rows_from(merged), kind)
    if too_large:
        raise MarketoValueError(
            f"{' and '.join(too_large)} are more than the {XCOM_MAX_RESULT_BYTES:,} bytes kept in XCom; "
            "set results_path to a folder (e.g. s3://bucket/marketo-results/{{ run_id }}/) to keep them in "
            "object storage"
        )


def _rows_from(merged: MergedFile) -> str:
    """Where a merged file's rows came from, for the log."""
    from_batches = sum(merged.rows.values())
    text = f"{from_batches:,} rows from {merged.batches} batch{'' if merged.batches == 1 else 'es'}"
    refused = merged.refused
    return text + (f" and {refused:,} refused before upload" if refused else "")


def _check_counts(merged: MergedFile, statuses: Sequence[BatchStatus], log: Any) -> None:
    """Warn where a batch's file holds another number of rows than its status counts."""
    kind = merged.kind
    for status in statuses:
        counted = status.rows_failed if kind == "failures" else status.rows_with_warning
        found = merged.rows.get(status.batch_id)
        if found is not None and counted is not None and found != counted:
            log.warning(
                "The %s file of batch %s holds %s rows where its status counts %s; the summary keeps "
                "Marketo's counts",
                kind,
                status.batch_id,
                f"{found:,}",
                f"{counted:,}",
            )


def publish_results(
    hook: ResultFileSource,
    summary: ImportSummary,
    *,
    target: ImportTarget,
    file_format: str | FileFormat,
    results: ResultsLocation,
    max_failed_rows: int | None,
    push_xcom: Any,
    log: Any,
    trace: Trace | None = None,
) -> tuple[list[str], bool]:
    """Publish the merged results of the summary's finished batches. Returns the reasons the task
    must fail and whether retrying the task cannot help. A publishing error is one of those
    reasons, never a lost summary."""
    found = summary.problems(max_failed_rows)
    permanent = True
    try:
        publish(
            hook,
            summary,
            [status for _, status in summary.batches],
            target=target,
            file_format=file_format,
            results=results,
            push_xcom=push_xcom,
            log=log,
            trace=trace,
        )
    except Exception as exc:
        where = hide_secrets(f"to {results.path}" if results.path else "to XCom")
        reason = hide_secrets(
            f"{type(exc).__name__}: {exc}" if not isinstance(exc, MarketoError) else str(exc)
        )
        log.error("The results could not be written %s: %s", where, reason)
        found.append(f"the failures and warnings could not be written {where}: {reason}")
        if not (isinstance(exc, MarketoError) and exc.permanent):
            permanent = False  # a retry resumes at this step and writes them again
    return found, permanent
