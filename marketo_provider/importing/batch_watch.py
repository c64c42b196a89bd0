"""Watching an import's batches until they are done, and concluding: the part of an import the
sensor shares with the operator (:class:`BatchWatch`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from marketo_provider.api import BatchStatus, FileFormat, ImportTarget, MarketoTransportError
from marketo_provider.api.errors import error_from_carried
from marketo_provider.api.targets import QUEUED
from marketo_provider.importing.errors import ImportAbortedError, ImportFailedError, past_deadline
from marketo_provider.importing.options import ImportOptions
from marketo_provider.importing.state import ImportState
from marketo_provider.importing.waiting import Wait, WaitEnd, poll
from marketo_provider.results import ImportSummary, Trace, publish_results
from marketo_provider.sources import counts_line

PushXCom = Callable[[str, Any], None]


class BatchWatch:
    """Watches an import's batches and concludes it: polls (on the worker; the trigger does the same
    in the triggerer), takes a trigger's event back, and publishes the merged results and the
    summary. The sensor uses it alone; :class:`~marketo_provider.importing.run.BulkImport` uses it
    for the batches it submitted.

    :param hook: a :class:`~marketo_provider.hooks.marketo.MarketoHook`.
    :param target: where the batches live.
    :param options: how the import runs (checked).
    :param file_format: the format of the batches' files (for the merged results).
    :param save: called with the state after every change that must survive the task.
    :param source: how the summary names the source the batches came from, when known.
    """

    def __init__(
        self,
        hook: Any,
        target: ImportTarget,
        options: ImportOptions,
        *,
        file_format: FileFormat = FileFormat.CSV,
        log: Any,
        save: Callable[[ImportState], None] | None = None,
        source: str | None = None,
    ) -> None:
        self.hook = hook
        self.source = source
        self.target = target
        self.options = options
        self.file_format = file_format
        self.log = log
        self._save = save or (lambda state: None)
        self._calls_seen = 0

    # ---- bookkeeping -------------------------------------------------------------------------

    def save(self, state: ImportState) -> None:
        self.count_calls(state)
        self._save(state)

    def count_calls(self, state: ImportState) -> None:
        """Add the calls this process made since the last count to the import's total."""
        made = self.hook.api_calls - self._calls_seen
        self._calls_seen = self.hook.api_calls
        state.api_calls += made

    # ---- waiting -----------------------------------------------------------------------------

    def wait(self, state: ImportState, wait: Wait, *, sleep: Callable[[float], None] = time.sleep) -> None:
        """Wait on the worker until ``wait`` is over (the trigger does the same in the triggerer)."""
        while True:
            sleep(wait.pause(self.options.poll_interval, time.time()))
            head = self.poll(state)
            end = wait.check(state, head, time.time())
            if end is WaitEnd.TIMEOUT:
                self.raise_timeout(state)
            if end is WaitEnd.SLOT_FREE:
                state.woken_at = time.time()
            if end is not None:
                return

    def bound(self, state: ImportState) -> None:
        """Have every call the hook makes for this import end by the import's deadline."""
        self.hook.deadline = state.deadline

    def poll(self, state: ImportState) -> BatchStatus | None:
        """One poll round over the hook (sync); logs the import's progress."""
        self.bound(state)
        try:
            head = poll(state, self.hook.get_import_status)
        except MarketoTransportError as exc:
            if past_deadline(exc):
                self.save(state)
                self.raise_timeout(state)
            raise
        self.save(state)
        self.log.info("%s", state.progress(head))
        return head

    def resume(self, event: Mapping[str, Any]) -> ImportState:
        """The state a trigger's event hands back; raises for a timeout or a polling error."""
        state = ImportState.from_json(event["import_state"])
        state.resumes += 1
        self._calls_seen = self.hook.api_calls
        end = WaitEnd(event["event"])
        if end is WaitEnd.ERROR:
            message = f"{event.get('message')}. {state.accounting()}"
            # The polling error's own class where the trigger carried it, as on a worker.
            raise error_from_carried(event.get("error"), message) or ImportAbortedError(message)
        if end is WaitEnd.TIMEOUT:
            self.raise_timeout(state)
        self._save(state)
        return state

    def raise_timeout(self, state: ImportState) -> None:
        running = state.pending_batch_ids
        raise ImportAbortedError(
            f"the import did not finish within timeout={self.options.timeout:g} s; batches still running in "
            f"Marketo (Marketo cannot cancel an import): {running}. {state.accounting()}"
        )

    # ---- concluding --------------------------------------------------------------------------

    def queued_summary(self, state: ImportState) -> dict[str, Any]:
        """The summary right after submission (``wait_for_completion=False``), for a sensor."""
        if state.uncertain:
            raise ImportFailedError(
                [f"some parts may not have been imported: {state.accounting()}"], permanent=True
            )
        queued = [(p.part, BatchStatus(batch_id=p.batch_id, status=QUEUED)) for p in state.submitted]
        return self._summary(state, queued, api_calls=state.api_calls, resumes=state.resumes).to_xcom()

    def _summary(
        self, state: ImportState, batches: list[tuple[int, BatchStatus]], **more: Any
    ) -> ImportSummary:
        """The summary of ``batches`` (part, status), with what the state knows of the rows."""
        return ImportSummary(
            self.target.object_type,
            batches,
            origins={p.part: p.origin for p in state.submitted if p.origin},
            source=self.source,
            row_checks=state.row_checks,
            rows_kept_out=state.rows_kept_out,
            rows=state.rows,
            **more,
        )

    def conclude(
        self,
        state: ImportState,
        push_xcom: PushXCom,
        trace: Trace | None = None,
        changes: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Publish the merged results and return the summary. The summary reaches XCom whatever
        else fails: when the import must fail, it is pushed before :class:`ImportFailedError`.
        With ``trace`` every failed or warned row names its place in the source."""
        summary = self._summary(state, state.statuses(), changes=changes, times=state.part_times)
        self.bound(state)
        problems, permanent = publish_results(
            self.hook,
            summary,
            target=self.target,
            file_format=self.file_format,
            results=self.options.results,
            max_failed_rows=self.options.max_failed_rows,
            push_xcom=push_xcom,
            log=self.log,
            trace=trace,
        )
        self.count_calls(state)
        summary.api_calls = state.api_calls
        summary.resumes = state.resumes
        summary.parts_outcome_unknown = [u.part for u in state.uncertain]
        summary.parts_sent_twice = [r.part for r in state.resent]
        if state.resent:
            self.log.warning("Parts that may have been imported twice: %s", state.accounting())
        if state.uncertain:
            problems.append(f"some parts may not have been imported: {state.accounting()}")
        batches = len(summary.batches)
        self.log.info(
            "Import of %s done: %d batch%s, %s rows processed, %s failed, %s with warnings, %d API calls, "
            "%d resume%s%s",
            state.name,
            batches,
            "" if batches == 1 else "es",
            f"{summary.rows_processed:,}",
            f"{summary.rows_failed:,}",
            f"{summary.rows_with_warning:,}",
            summary.api_calls,
            summary.resumes,
            "" if summary.resumes == 1 else "s",
            _reasons_text(summary),
        )
        if state.rows is not None:
            self.log.info("Rows of %s: %s", state.name, counts_line(state.rows))
        out = summary.to_xcom()
        if problems:
            push_xcom("return_value", out)
            raise ImportFailedError(problems, permanent=permanent)
        return out


def _reasons_text(summary: ImportSummary, most: int = 3) -> str:
    """The most frequent failure reasons, for the closing line of the log."""
    if not summary.failure_reasons:
        return ""
    top = list(summary.failure_reasons.items())[:most]
    text = "; ".join(f"{count:,} x {reason!r}" for reason, count in top)
    more = len(summary.failure_reasons) - len(top)
    return f". Failure reasons: {text}" + (f" and {more} more" if more > 0 else "")
