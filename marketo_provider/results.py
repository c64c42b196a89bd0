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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from marketo_provider.api import (
    FAILED,
    RESULT_KINDS,
    BatchStatus,
    FileFormat,
    ImportTarget,
    MarketoError,
    MarketoValueError,
    ObjectType,
)

# Merged files are kept in memory up to this size, then spill to a temporary file.
_SPOOL_BYTES = 8 * 1024 * 1024
# Text above this size in XCom slows the metadata database; suggest results_path instead.
XCOM_WARN_BYTES = 1024 * 1024


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

    def read_text(self) -> str:
        self.file.seek(0)
        return self.file.read().decode("utf-8")


def merge_result_files(
    hook: ResultFileSource,
    object_type: ObjectType,
    batch_ids: Sequence[int],
    kind: str,
    *,
    custom_object_name: str | None = None,
    file_format: str | FileFormat = FileFormat.CSV,
    log: Any = None,
) -> MergedFile | None:
    """Download ``kind`` (failures or warnings) of the given batches and merge them, in part order,
    into one file with a single header, counting the rows per reason (the last column). None when
    no batch has a row of that kind. Callers pass only batches whose status counts rows of that
    kind (:meth:`BatchStatus.has_rows`): every download is a call against the instance's quota."""
    merged = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115 - returned to the caller
    header: bytes | None = None
    contributing = 0
    reasons: Counter[str] = Counter()
    delimiter = FileFormat.parse(file_format).delimiter
    for batch_id in batch_ids:
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as one:
            written = hook.download_result_file(
                object_type, batch_id, kind, one, custom_object_name=custom_object_name
            )
            if not written:
                continue
            one.seek(0)
            first = _read_record(one)
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
            _count_reasons(one, len(first), delimiter, reasons)
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
    return MergedFile(kind=kind, file=merged, batches=contributing, reasons=dict(reasons.most_common()))


def _count_reasons(stream: IO[bytes], body_start: int, delimiter: str, reasons: Counter[str]) -> None:
    """Count the rows of a result file (positioned anywhere) by their last column, the reason."""
    stream.seek(body_start)
    text = io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline="")
    try:
        for row in csv.reader(text, delimiter=delimiter):
            if row:
                reasons[row[-1]] += 1
    finally:
        text.detach()


def _read_record(stream: IO[bytes]) -> bytes:
    """The first record (the header line; quoted names may hold newlines)."""
    line = stream.readline()
    while line.count(b'"') % 2:
        more = stream.readline()
        if not more:
            break
        line += more
    return line


def result_file_name(kind: str, file_format: str | FileFormat) -> str:
    return f"{kind}.{FileFormat.parse(file_format).value}"


def _scheme(location: Any) -> str:
    text = str(location)
    return text.split("://", 1)[0].lower() if "://" in text else "file"


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
        conn_id = conn_id or None
        same_storage = source is not None and _scheme(path) == _scheme(source) != "file"
        if path and conn_id is None and source_conn_id and same_storage:
            conn_id = source_conn_id
        return cls(path, conn_id)

    def folder(self) -> Any:
        from airflow.sdk import ObjectStoragePath

        assert self.path is not None
        try:
            return (
                ObjectStoragePath(self.path, conn_id=self.conn_id)
                if self.conn_id
                else ObjectStoragePath(self.path)
            )
        except Exception as exc:  # an unknown scheme, a malformed URI
            raise MarketoValueError(
                f"results_path {self.path!r} is not a location Airflow can write: {exc}. Use a local folder, "
                "file://, or an object storage URI whose provider is installed (s3://, gs://, ...)"
            ) from None

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
    return f"{results_path.rstrip('/')}/{name}"


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
            "batch_ids": self.batch_ids,
            "batches": [status.summary(part=part) for part, status in self.batches],
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
) -> None:
    """Merge each kind of result file over the batches that have rows of it and publish it: written
    under the results location when there is one (the URIs go into the summary), else pushed to
    XCom under the keys ``failures`` / ``warnings``. A file is written only when it has rows."""
    for kind in RESULT_KINDS:
        batch_ids = [s.batch_id for s in statuses if s.has_rows(kind)]
        merged = merge_result_files(
            hook,
            target.object_type,
            batch_ids,
            kind,
            custom_object_name=target.custom_object_name,
            file_format=file_format,
            log=log,
        )
        if merged is None:
            continue
        summary.set_reasons(kind, merged.reasons)
        with merged.file:
            if results.path:
                uri = results.write(merged, file_format)
                summary.set_path(kind, uri)
                log.info("Wrote the %s of %d batches to %s", kind, merged.batches, uri)
            else:
                text = merged.read_text()
                if len(text) > XCOM_WARN_BYTES:
                    log.warning(
                        "Pushing %s MB of %s to XCom; set results_path to keep large results in object storage",
                        f"{len(text) / 1e6:.1f}",
                        kind,
                    )
                push_xcom(kind, text)
                log.info("Pushed the %s of %d batches to XCom under %r", kind, merged.batches, kind)


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
        )
    except Exception as exc:
        where = f"to {results.path}" if results.path else "to XCom"
        reason = f"{type(exc).__name__}: {exc}" if not isinstance(exc, MarketoError) else str(exc)
        log.error("The results could not be written %s: %s", where, reason)
        found.append(f"the failures and warnings could not be written {where}: {reason}")
        permanent = False  # a retry resumes at this step and writes them again
    return found, permanent
