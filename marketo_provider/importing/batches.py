"""Watching an import's batches until they are done, and concluding: the part of an import the
sensor shares with the operator (:class:`BatchWatch`), with the options every import is checked
against before its first call."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from marketo_provider.api import (
    QUEUED,
    BatchStatus,
    FileFormat,
    ImportTarget,
    MarketoError,
    MarketoTransportError,
    MarketoValueError,
    TransportFailure,
    positive_seconds,
)
from marketo_provider.importing.state import ImportState
from marketo_provider.importing.watch import Wait, WaitEnd, poll
from marketo_provider.results import ImportSummary, ResultsLocation, Trace, publish_results
from marketo_provider.sources import OnInvalidRows, OnRepeatedKeys, RowPolicy, counts_line
from marketo_provider.storage import StateLocation

DEFAULT_POLL_INTERVAL_SECONDS = 30.0
DEFAULT_IMPORT_TIMEOUT_SECONDS = 24 * 3600.0

PushXCom = Callable[[str, Any], None]


class ImportAbortedError(MarketoError):
    """The import stopped on an error; the message says which parts were submitted and which not."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class ImportFailedError(MarketoError):
    """The import ran but must not look like success (a batch failed, too many rows failed, parts
    may be missing, the results could not be written); the summary is in XCom all the same."""

    def __init__(self, problems: Sequence[str], *, permanent: bool) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)
        self.permanent = permanent


@dataclass(frozen=True)
class ImportOptions:
    """How an import runs, every value checked once before anything is sent."""

    poll_interval: float = DEFAULT_POLL_INTERVAL_SECONDS
    timeout: float = DEFAULT_IMPORT_TIMEOUT_SECONDS
    results: ResultsLocation = field(default_factory=ResultsLocation)
    max_failed_rows: int | None = None
    check_columns: bool = True
    wait_for_completion: bool = True
    resend_uncertain_parts: bool = False
    rows: RowPolicy = field(default_factory=RowPolicy)  # what becomes of invalid, repeated, unchanged rows
    state: StateLocation | None = None  # where the confirmed state (and the journal) is kept
    full_refresh: bool = False

    # The row policy's settings, as the rest of the import reads them (never parsed again).
    @property
    def check_values(self) -> bool:
        return self.rows.check_values

    @property
    def on_invalid_rows(self) -> OnInvalidRows:
        return self.rows.on_invalid_rows

    @property
    def on_repeated_keys(self) -> OnRepeatedKeys:
        return self.rows.on_repeated_keys

    @property
    def changed_rows_only(self) -> bool:
        return self.rows.changed_rows_only

    @classmethod
    def of(
        cls,
        *,
        poll_interval: float | str = DEFAULT_POLL_INTERVAL_SECONDS,
        timeout: float | str = DEFAULT_IMPORT_TIMEOUT_SECONDS,
        results_path: str | None = None,
        results_conn_id: str | None = None,
        source: Any = None,
        source_conn_id: str | None = None,
        max_failed_rows: int | str | None = None,
        check_columns: bool = True,
        wait_for_completion: bool = True,
        resend_uncertain_parts: bool = False,
        check_values: bool = True,
        on_invalid_rows: str | OnInvalidRows = OnInvalidRows.SEND,
        on_repeated_keys: str | OnRepeatedKeys = OnRepeatedKeys.WARN,
        changed_rows_only: bool | str = False,
        state_path: str | None = None,
        state_conn_id: str | None = None,
        full_refresh: bool | str = False,
    ) -> ImportOptions:
        failed: int | None = None
        if max_failed_rows not in (None, ""):
            try:
                failed = int(max_failed_rows)
            except (TypeError, ValueError):
                raise MarketoValueError(
                    f"max_failed_rows must be a whole number, not {max_failed_rows!r}"
                ) from None
            if failed < 0:
                raise MarketoValueError(f"max_failed_rows must be 0 or more, not {max_failed_rows!r}")
        rows = RowPolicy.of(
            check_values=check_values,
            on_invalid_rows=on_invalid_rows,
            on_repeated_keys=on_repeated_keys,
            changed_rows_only=_flag("changed_rows_only", changed_rows_only),
        )
        if (
            not wait_for_completion
            and rows.skip_invalid
            and results_path in (None, "")
            and state_path in (None, "")
        ):
            raise MarketoValueError(
                "on_invalid_rows='skip' with wait_for_completion=False needs results_path (or state_path): the "
                "sensor that concludes the import writes the rows refused before upload into the failures file "
                "from the import's ledger, which is kept there for it"
            )
        return cls(
            poll_interval=positive_seconds("poll_interval", poll_interval),
            timeout=positive_seconds("timeout", timeout),
            results=ResultsLocation.of(
                results_path, results_conn_id, source=source, source_conn_id=source_conn_id
            ),
            max_failed_rows=failed,
            check_columns=bool(check_columns),
            wait_for_completion=bool(wait_for_completion),
            resend_uncertain_parts=bool(resend_uncertain_parts),
            rows=rows,
            state=_state_location(changed_rows_only, state_path, state_conn_id, source, source_conn_id),
            full_refresh=_flag("full_refresh", full_refresh),
        )


def _flag(name: str, value: Any) -> bool:
    """A yes/no argument, as given or as a template rendered it."""
    if isinstance(value, bool) or value is None:
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", "", "none"):
        return False
    raise MarketoValueError(f"{name} must be true or false, not {value!r}")


def _state_location(
    changed_rows_only: Any, path: str | None, conn_id: str | None, source: Any, source_conn_id: str | None
) -> StateLocation | None:
    path = str(path).strip() if path not in (None, "") else None
    if path is None:
        if _flag("changed_rows_only", changed_rows_only):
            raise MarketoValueError(
                "changed_rows_only needs state_path: a folder (local or object storage) where what Marketo "
                "confirmed is kept between runs"
            )
        return None
    same = ResultsLocation.of(path, conn_id, source=source, source_conn_id=source_conn_id)
    return StateLocation(path, same.conn_id)


def parse_batch_ids(value: Any) -> list[int]:
    """Batch ids as given to the sensor: a list, the operator's summary, or text rendered from a
    template (``"[3404, 3405]"`` or ``"3404,3405"``)."""
    if isinstance(value, Mapping) and "batch_ids" in value:
        value = value["batch_ids"]
    if isinstance(value, str):
        text = value.strip()
        try:
            value = json.loads(text) if text.startswith("[") else [v for v in text.split(",") if v.strip()]
        except ValueError:
            raise MarketoValueError(f"batch_ids {text!r} is not a list of batch ids") from None
    if isinstance(value, int):
        value = [value]
    try:
        ids = [int(v) for v in value]
    except (TypeError, ValueError):
        raise MarketoValueError(f"batch_ids must be a list of whole numbers, not {value!r}") from None
    if not ids:
        raise MarketoValueError("batch_ids is empty: there is nothing to wait for")
    return ids


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
            raise ImportAbortedError(f"{event.get('message')}. {state.accounting()}")
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
        return ImportSummary(
            self.target.object_type,
            queued,
            origins={p.part: p.origin for p in state.submitted if p.origin},
            api_calls=state.api_calls,
            source=self.source,
            resumes=state.resumes,
            row_checks=state.row_checks,
            rows_kept_out=state.rows_kept_out,
            rows=state.rows,
        ).to_xcom()

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
        summary = ImportSummary(
            self.target.object_type,
            state.statuses(),
            origins={p.part: p.origin for p in state.submitted if p.origin},
            row_checks=state.row_checks,
            rows_kept_out=state.rows_kept_out,
            changes=changes,
            source=self.source,
            rows=state.rows,
            times=state.part_times,
        )
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


def past_deadline(exc: BaseException) -> bool:
    """Whether a call ended because the import's deadline passed."""
    return isinstance(exc, MarketoTransportError) and exc.failure in (
        TransportFailure.DEADLINE,
        TransportFailure.DEADLINE_PASSED,
    )


def _reasons_text(summary: ImportSummary, most: int = 3) -> str:
    """The most frequent failure reasons, for the closing line of the log."""
    if not summary.failure_reasons:
        return ""
    top = list(summary.failure_reasons.items())[:most]
    text = "; ".join(f"{count:,} x {reason!r}" for reason, count in top)
    more = len(summary.failure_reasons) - len(top)
    return f". Failure reasons: {text}" + (f" and {more} more" if more > 0 else "")
