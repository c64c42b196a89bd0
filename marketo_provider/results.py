"""Results of an import: per-batch statuses summed up, and the failure and warning files of all parts
merged into one file each (one header, the reason column last, the job's format), published to
object storage or XCom."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, Protocol

from marketo_provider.api import FAILED, BatchStatus, FileFormat, ObjectType

RESULT_KINDS = ("failures", "warnings")
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
    log: Any = None,
) -> MergedFile | None:
    """Download ``kind`` (failures or warnings) of every batch and merge them, in part order, into
    one file with a single header. None when no batch has a row of that kind."""
    merged = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115 - returned to the caller
    header: bytes | None = None
    contributing = 0
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
    return MergedFile(kind=kind, file=merged, batches=contributing)


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


def write_to_object_storage(
    merged: MergedFile, results_path: str, file_format: str | FileFormat, conn_id: str | None
) -> str:
    """Write a merged file under ``results_path`` (any ObjectStoragePath URI); returns its URI."""
    from airflow.sdk import ObjectStoragePath

    folder = ObjectStoragePath(results_path, conn_id=conn_id) if conn_id else ObjectStoragePath(results_path)
    if folder.protocol in ("", "file"):
        folder.mkdir(parents=True, exist_ok=True)
    name = result_file_name(merged.kind, file_format)
    target = folder / name
    merged.file.seek(0)
    with target.open("wb") as out:
        shutil.copyfileobj(merged.file, out, 1024 * 1024)
    # The URI as the user wrote it (ObjectStoragePath would put the conn id in it as userinfo).
    return f"{results_path.rstrip('/')}/{name}"


def summarize(object_type: ObjectType, batches: Sequence[tuple[int, BatchStatus]]) -> dict[str, Any]:
    """The operator's and the sensor's return value (XCom ``return_value``), paths still null."""
    entries = [status.summary(part=part) for part, status in batches]
    return {
        "object_type": object_type.value,
        "batch_ids": [status.batch_id for _, status in batches],
        "batches": entries,
        "rows_processed": sum(e["rows_processed"] for e in entries),
        "rows_failed": sum(e["rows_failed"] for e in entries),
        "rows_with_warning": sum(e["rows_with_warning"] for e in entries),
        "failures_path": None,
        "warnings_path": None,
    }


def problems(summary: Mapping[str, Any], max_failed_rows: int | None) -> list[str]:
    """Why the task must fail after publishing (empty when it succeeds)."""
    found = [
        f"batch {b['batch_id']} (part {b['part']}) ended Failed: {b.get('message') or 'no message from Marketo'}"
        for b in summary["batches"]
        if b["status"] == FAILED
    ]
    if max_failed_rows is not None and summary["rows_failed"] > max_failed_rows:
        found.append(f"{summary['rows_failed']} rows failed, more than max_failed_rows={max_failed_rows}")
    return found


def publish(
    hook: ResultFileSource,
    summary: dict[str, Any],
    *,
    object_type: ObjectType,
    custom_object_name: str | None,
    file_format: str | FileFormat,
    results_path: str | None,
    results_conn_id: str | None,
    push_xcom: Any,
    log: Any,
) -> dict[str, Any]:
    """Merge each kind of result file over all batches and publish it: written under
    ``results_path`` when given (the URIs go into the summary), else pushed to XCom under the keys
    ``failures`` / ``warnings``. A file is written only when it has rows."""
    batch_ids = [b["batch_id"] for b in summary["batches"] if b["status"] != FAILED]
    for kind in RESULT_KINDS:
        merged = merge_result_files(
            hook, object_type, batch_ids, kind, custom_object_name=custom_object_name, log=log
        )
        if merged is None:
            continue
        with merged.file:
            if results_path:
                uri = write_to_object_storage(merged, results_path, file_format, results_conn_id)
                summary[f"{kind}_path"] = uri
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
    return summary


def statuses_from_entries(object_type: ObjectType, entries: Iterable[Mapping[str, Any]]) -> list[BatchStatus]:
    return [BatchStatus.from_entry(object_type, e) for e in entries]


def conclude(
    hook: ResultFileSource,
    ordered: Sequence[tuple[int, BatchStatus]],
    *,
    object_type: ObjectType,
    custom_object_name: str | None,
    file_format: str | FileFormat,
    results_path: str | None,
    results_conn_id: str | None,
    max_failed_rows: int | None,
    push_xcom: Any,
    log: Any,
) -> tuple[dict[str, Any], list[str]]:
    """Summarize finished batches, publish their merged results, and say what (if anything) is
    wrong: the summary and the reasons the task must fail."""
    summary = publish(
        hook,
        summarize(object_type, ordered),
        object_type=object_type,
        custom_object_name=custom_object_name,
        file_format=file_format,
        results_path=results_path,
        results_conn_id=results_conn_id,
        push_xcom=push_xcom,
        log=log,
    )
    log.info(
        "Import done: %d batches, %d rows processed, %d failed, %d with warnings",
        len(ordered),
        summary["rows_processed"],
        summary["rows_failed"],
        summary["rows_with_warning"],
    )
    return summary, problems(summary, max_failed_rows)
