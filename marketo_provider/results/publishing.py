"""Publishing an import's results: each kind merged over the batches that have rows of it, written
under the results location or pushed to XCom (within a bound), the counts checked against the
statuses; a publishing error becomes a reason the task fails, never a lost summary."""

from __future__ import annotations

import io
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

from marketo_provider.api import BatchStatus, FileFormat, ImportTarget, MarketoError, MarketoValueError
from marketo_provider.api.redaction import hide_secrets
from marketo_provider.api.targets import RESULT_KINDS
from marketo_provider.results.location import ResultsLocation
from marketo_provider.results.merging import MergedFile, ResultFileSource, Trace, merge_result_files
from marketo_provider.results.summary import ImportSummary

# Text above this size in XCom slows the metadata database; suggest results_path instead.
XCOM_WARN_BYTES = 1024 * 1024
# The most failures or warnings text pushed to XCom; beyond it the import fails (after publishing its
# summary) asking for results_path.
XCOM_MAX_RESULT_BYTES = 4 * 1024 * 1024


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
