"""Running one import: :class:`BulkImport` checks every argument, the source and the results
location before anything is sent; submits parts while Marketo's queue has room; waits (on the
worker, or in the triggerer through the same rules); and concludes through its
:class:`~marketo_provider.importing.batches.BatchWatch`."""

from __future__ import annotations

import enum
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

from marketo_provider.api import (
    MAX_QUEUED_JOBS,
    ImportSpec,
    MarketoError,
    MarketoQueueFullError,
    MarketoSubmitOutcomeUnknownError,
    queue_full_wait_seconds,
)
from marketo_provider.importing.batches import (
    BatchWatch,
    ImportAbortedError,
    ImportOptions,
    PushXCom,
    past_deadline,
)
from marketo_provider.importing.changes import ChangedRows
from marketo_provider.importing.state import ImportState, PartRange, SubmittedPart
from marketo_provider.importing.watch import Wait, WaitEnd, WaitFor
from marketo_provider.results import ImportSummary
from marketo_provider.sources import AnySource, Part, Preflight, QuerySource, preflight, source_parts
from marketo_provider.sources.checks import (
    OnInvalidRows,
    OnRepeatedKeys,
    RowRules,
    key_column,
    refused_rows,
    stable_hash,
)
from marketo_provider.sources.preflight import KeptOut, kept_out_ordinals
from marketo_provider.sources.trace import RecordTracer


class SubmitOutcome(str, enum.Enum):
    """What came of uploading one part."""

    ACCEPTED = "accepted"  # Marketo created a batch for it
    OUTCOME_UNKNOWN = "outcome_unknown"  # sent, no answer: recorded, not sent again
    QUEUE_FULL = "queue_full"  # 1016: Marketo's queue has no room; the part waits


class BulkImport:
    """One import, from the first check to the published results.

    :param hook: a :class:`~marketo_provider.hooks.marketo.MarketoHook`.
    :param spec: what the import sends besides the file (target, format, options).
    :param source: the resolved source (:func:`~marketo_provider.sources.resolve_source`); its
        file format is the spec's.
    :param options: how the import runs (checked).
    :param save: called with the state after every change that must survive the task (the task
        state store on Airflow 3.3+).
    """

    def __init__(
        self,
        hook: Any,
        spec: ImportSpec,
        source: AnySource,
        options: ImportOptions,
        *,
        log: Any,
        save: Callable[[ImportState], None] | None = None,
        owner: str = "",
    ) -> None:
        """``owner`` names who runs the import (the DAG run and task), for the state's lock."""
        self.hook = hook
        self.owner = owner or f"process {os.getpid()}"
        self.changes = ChangedRows(spec, source, options, owner=self.owner, log=log)
        self.spec = spec
        self.source = source
        self.options = options
        self.target = spec.target
        self.log = log
        self.batches = BatchWatch(
            hook, spec.target, options, file_format=spec.file_format, log=log, save=save, source=source.name
        )

    def save(self, state: ImportState) -> None:
        self.batches.save(state)

    # ---- start ------------------------------------------------------------------------------

    def plan(self) -> dict[str, Any]:
        """Every check :meth:`begin` makes (the source, the columns against Marketo's describe call,
        the results location), and what the import would send, without importing anything."""
        plan_state = ImportState("", self.target.object_type.value, None, 0.0)
        checked = self._check(for_plan=True, state=plan_state)
        checks = checked.checks
        would_send = None
        if checked.records is not None:
            would_send = checked.records - checked.kept_out
        return {
            "validate_only": True,
            "object_type": self.target.object_type.value,
            "target": self.target.label,
            "source": checked.name,
            "columns": list(checked.header.names),
            "renamed_columns": _renamed(checked),
            "parts": checked.parts,
            "part_origins": list(checked.part_origins),
            "bytes": checked.body_bytes,
            "records": checked.records,
            "records_to_send": would_send,
            "results_path": self.options.results.path,
            "query": self.spec.query,
            "row_checks": checks.to_json() if checks is not None else None,
            "changes": self.changes.summary(plan_state),
            "api_calls": self.hook.api_calls,
        }

    def _kept_out(self, state: ImportState) -> KeptOut | None:
        """What the import keeps out of what it sends, as it began (the same at every opening)."""
        previous = self.changes.previous(state) if self.options.changed_rows_only else None
        if state.row_rules is None or (not state.kept_out and previous is None):
            return None
        return KeptOut(
            RowRules.from_json(state.row_rules),
            invalid="invalid" in state.kept_out,
            earlier_repeats="earlier_repeats" in state.kept_out,
            previous=previous,
        )

    def _keep_out(self, rules: Any) -> KeptOut | None:
        if rules is None:
            return None
        return KeptOut(
            rules,
            invalid=self.options.on_invalid_rows is OnInvalidRows.SKIP,
            earlier_repeats=self.options.on_repeated_keys is OnRepeatedKeys.KEEP_LAST,
        )

    def _check(self, *, for_plan: bool = False, state: ImportState | None = None) -> Preflight:
        """Every check before the first upload: the results location, the source (its header, its
        columns against describe, every record, every value), then what the user chose to do
        about rows Marketo would refuse and repeated keys. ``for_plan``: report, never stop."""
        self.options.results.check_writable()
        options = self.options
        loaded = self.changes.load(state) if options.changed_rows_only else None
        checked = preflight(
            self.source,
            object_type=self.spec.object_type,
            lookup_field=self.spec.lookup_field,
            custom_object_name=self.target.custom_object_name,
            describe=self.hook.describe,
            check_columns=options.check_columns,
            check_values=options.check_values,
            keep_out_invalid=options.on_invalid_rows is OnInvalidRows.SKIP,
            keep_out_earlier_repeats=options.on_repeated_keys is OnRepeatedKeys.KEEP_LAST,
            changed_rows_only=options.changed_rows_only,
            previous=loaded.path if loaded is not None else None,
        )
        if loaded is not None and state is not None:
            state.change = {
                "generation": loaded.generation,
                "full": loaded.path is None,
                "why_full": loaded.why_full,
                "owner": self.owner,
                "counts": checked.changes or {},
            }
            self.changes.log_changes(checked, loaded)
        report = checked.checks
        if report is None:
            return checked
        for line in report.lines():
            self.log.warning("Pre-flight, %s: %s", checked.name, line)
        if for_plan:
            return checked
        stops = []
        if options.on_invalid_rows is OnInvalidRows.FAIL and report.rows_failing:
            stops.append(f"{report.rows_failing:,} rows Marketo would or may refuse (on_invalid_rows='fail')")
        elif options.max_failed_rows is not None and report.rows_failing > options.max_failed_rows:
            stops.append(
                f"{report.rows_failing:,} rows Marketo would or may refuse, more than "
                f"max_failed_rows={options.max_failed_rows}"
            )
        if options.on_repeated_keys is OnRepeatedKeys.FAIL and report.repeated_rows:
            stops.append(
                f"{report.repeated_rows:,} rows repeat an earlier row's key (on_repeated_keys='fail')"
            )
        if stops:
            raise ImportAbortedError(
                f"nothing was sent: {checked.name} has {' and '.join(stops)}. "
                + " ".join(f"{line}." for line in report.lines()),
                permanent=True,
            )
        return checked

    def begin(self, saved: Mapping[str, Any] | None) -> ImportState | None:
        """Check everything and start the import, or resume the one an earlier try began.

        Returns None when the source holds no records (nothing to import, no import call made).
        Every check happens here, before the first upload: the source (header, columns against
        Marketo's describe call, quoting, UTF-8, record sizes) and the results location."""
        if saved:
            state = ImportState.from_json(saved)
            state.woken_at = None  # a retry is no way back from a wait: not a resume to measure
            self.log.info("Resuming the import begun by an earlier try: %s", state.accounting())
            return state
        state = ImportState(
            name=self.source.name,
            object_type=self.target.object_type.value,
            custom_object_name=self.target.custom_object_name,
            deadline=time.time() + self.options.timeout,
        )
        store = self.changes.store()
        if store is not None:
            store.lock(self.owner, until=state.deadline + 3600)
        try:
            return self._begin(state)
        except BaseException:
            self.changes.release()
            raise

    def _begin(self, state: ImportState) -> ImportState | None:
        checked = self._check(state=state)
        if checked.empty:
            self.log.info(
                "%s has a header and no records: nothing to import, no import call made", checked.name
            )
            self.changes.release()
            return None
        if checked.parts is None:
            self.log.info("%s passed the checks; its rows are read once, as they are imported", checked.name)
        else:
            self.log.info(
                "%s passed the checks: %s records in %s bytes (%s), %s records to send",
                checked.name,
                f"{checked.records:,}",
                f"{checked.body_bytes:,}",
                f"{checked.parts} part{'' if checked.parts == 1 else 's'} when every record is sent",
                f"{(checked.records or 0) - checked.kept_out:,}",
            )
        state.name = checked.name
        state.header = list(checked.header.names)
        state.row_rules = checked.rules.to_json() if checked.rules is not None else None
        state.row_checks = checked.checks.to_json() if checked.checks is not None else None
        state.rows_kept_out = checked.kept_out
        keep_out = self._keep_out(checked.rules)
        if keep_out is not None:
            state.kept_out = [
                n
                for n, on in (("invalid", keep_out.invalid), ("earlier_repeats", keep_out.earlier_repeats))
                if on
            ]
        if checked.kept_out:
            self.log.info(
                "%s of %s records are kept out of what is sent",
                f"{checked.kept_out:,}",
                f"{checked.records:,}",
            )
        state.parts_planned = checked.parts if not checked.kept_out else None  # fewer when rows are kept out
        self.save(state)
        return state

    def empty_summary(self) -> dict[str, Any]:
        return ImportSummary(
            self.target.object_type, api_calls=self.hook.api_calls, source=self.source.name
        ).to_xcom()

    # ---- submit -----------------------------------------------------------------------------

    def advance(self, state: ImportState) -> Wait | None:
        """Submit what can be submitted now. Returns the wait that comes next, or None when the
        import is ready to conclude (every part handled and, when waiting for completion, every
        batch done)."""
        if state.all_submitted:
            if not self.options.wait_for_completion or not state.pending_batch_ids:
                return None
            return Wait.start(state, WaitFor.COMPLETION, poll_interval=self.options.poll_interval)
        if time.time() >= state.deadline:
            self.batches.raise_timeout(state)
        self.batches.bound(state)
        blocked_by_others = self._submit(state)
        if state.all_submitted:
            self.log.info("Every part is handled: %s", state.accounting())
            return self.advance(state)
        # The queue is full. When our own batches fill it, only their finishing frees a slot: wait
        # for the low-water mark (watch.Wait). When other integrations' jobs do (1016), look again
        # after a while.
        wake_at = None
        if blocked_by_others:
            wake_at = time.time() + queue_full_wait_seconds(
                self.options.poll_interval, state.queue_full_refusals
            )
        return Wait.start(state, WaitFor.QUEUE_SLOT, wake_at, poll_interval=self.options.poll_interval)

    def _submit(self, state: ImportState) -> bool:
        """Submit parts in order while the queue has room. Returns True when Marketo answered 1016
        (other jobs fill the queue), False when every part is handled or ours fill the queue."""
        self._settle_in_flight(state)
        handled = state.handled_parts
        if handled != set(range(len(handled))):  # parts are handled strictly in order
            raise ImportAbortedError(f"the import state is inconsistent: {state.accounting()}")
        if len(state.pending_batch_ids) >= MAX_QUEUED_JOBS:
            return False
        resume_at = (len(handled), state.resume_offset) if handled else None
        with source_parts(
            self.source,
            resume_at=resume_at,
            expected_header=state.header or None,
            kept_out=self._kept_out(state),
        ) as parts:
            count = len(handled)
            for part in parts:
                if len(state.pending_batch_ids) >= MAX_QUEUED_JOBS:
                    self.log.info(
                        "Marketo's queue holds 10 of this import's batches; part %d waits", part.index
                    )
                    return False
                count = part.index + 1
                if self._submit_part(state, part) is SubmitOutcome.QUEUE_FULL:
                    return True
            state.parts_total = count
            self.save(state)
        return False

    def _submit_part(self, state: ImportState, part: Part) -> SubmitOutcome:
        """Upload one part, recorded as in flight first, and record what came of it: accepted (its
        batch id), an unknown outcome (not sent again unless ``resend_uncertain_parts``), or a full
        queue (the part waits for a slot)."""
        span = PartRange(part.index, part.source_start, part.source_end)
        while True:
            state.in_flight = span
            self.save(state)
            try:
                entry = self.hook.submit_import(
                    self.spec, part.reader(), filename=part_filename(self.source, part.index)
                )
            except MarketoQueueFullError:
                self._note_resumed(state)
                state.in_flight = None
                state.queue_full_refusals += 1
                self.save(state)
                self.log.info(
                    "Marketo's import queue is full (1016); part %d and later wait for a slot", part.index
                )
                return SubmitOutcome.QUEUE_FULL
            except MarketoSubmitOutcomeUnknownError as exc:
                self.log.error("Part %d: %s", part.index, exc)
                state.in_flight = None
                if self.options.resend_uncertain_parts and span not in state.resent:
                    state.resent.append(span)
                    self.save(state)
                    self.log.warning(
                        "Part %d is sent again (resend_uncertain_parts=True): if Marketo had it, its rows are "
                        "imported twice",
                        part.index,
                    )
                    continue
                state.uncertain.append(span)
                self.save(state)
                return SubmitOutcome.OUTCOME_UNKNOWN
            except MarketoError as exc:
                state.in_flight = None
                self.save(state)
                if past_deadline(exc):
                    self.batches.raise_timeout(state)
                raise ImportAbortedError(
                    f"submitting part {part.index} failed: {exc}. {state.accounting()}",
                    permanent=exc.permanent,
                ) from exc
            batch_id = int(entry["batchId"])
            self._note_resumed(state)
            state.submitted.append(
                SubmittedPart(part.index, batch_id, part.source_start, part.source_end, part.origin)
            )
            state.part_times[batch_id] = {"submitted": time.time()}
            state.in_flight = None
            state.queue_full_refusals = 0
            self.save(state)
            self.log.info(
                "Part %d (%s bytes, %s) accepted as batch %s",
                part.index,
                f"{part.size:,}",
                part.origin,
                batch_id,
            )
            return SubmitOutcome.ACCEPTED

    def _note_resumed(self, state: ImportState) -> None:
        seconds = state.note_resumed(time.time())
        if seconds is not None:
            self.log.info(
                "Marketo answered %.1f s after the wait for a slot ended (the way back; the next waits "
                "allow for the longest of the last few)",
                seconds,
            )

    def _settle_in_flight(self, state: ImportState) -> None:
        """A part recorded as being uploaded when an earlier try died: Marketo may have it."""
        span = state.in_flight
        if span is None:
            return
        state.in_flight = None
        if self.options.resend_uncertain_parts:
            state.resent.append(span)
            self.log.warning(
                "%s was being uploaded when an earlier try stopped; it is sent again "
                "(resend_uncertain_parts=True): if Marketo had accepted it, its rows are imported twice",
                span.described.capitalize(),
            )
        else:
            self.log.error(
                "%s was being uploaded when an earlier try stopped; Marketo may or may not have it. It is "
                "not sent again (resend_uncertain_parts=False) and the import will fail naming it once the "
                "other parts are done",
                span.described.capitalize(),
            )
            state.uncertain.append(span)
        self.save(state)

    # ---- wait and conclude (the batches' watch) ---------------------------------------------

    def wait(self, state: ImportState, wait: Wait, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.batches.wait(state, wait, sleep=sleep)

    def resume(self, event: Mapping[str, Any]) -> ImportState:
        """The state a trigger's event hands back. Resumed to submit more, the task asks Marketo
        once more first: the trigger's last poll is seconds old (its hold, the way back), and
        batches that finished since free slots the next parts can take now."""
        state = self.batches.resume(event)
        if WaitEnd(event["event"]) is WaitEnd.SLOT_FREE and state.pending_batch_ids:
            self.batches.poll(state)
        return state

    def conclude(self, state: ImportState, push_xcom: PushXCom) -> dict[str, Any]:
        """Publish the results and return the summary; with ``changed_rows_only``, then keep what
        Marketo confirmed as the next state (only when the import succeeded)."""
        if not self.options.wait_for_completion:
            return self.batches.queued_summary(state)
        try:
            summary = self.batches.conclude(
                state,
                push_xcom,
                trace=lambda kind, ids: self._tracing(state, kind),
                changes=self.changes.summary(state),
            )
            if self.options.changed_rows_only:
                pointer = self.changes.write(state, self._kept_out(state))
                summary["changes"]["state_generation"] = pointer["generation"]
                summary["changes"]["state_keys"] = pointer["keys"]
        finally:
            self.changes.release()
        return summary

    @contextmanager
    def _tracing(
        self, state: ImportState, kind: str
    ) -> Iterator[tuple[Callable[[int], Any] | None, Iterable[Any]]]:
        """Where each row of the batches' ``kind`` files came from: the source is walked again,
        and with ``on_invalid_rows="skip"`` the rows refused before upload join the failures."""
        kept_out = self._kept_out(state)
        spans = {p.batch_id: (p.source_start, p.source_end) for p in state.submitted}
        rules = RowRules.from_json(state.row_rules) if state.row_rules else None
        failed = self.changes.failed_keys if kind == "failures" and self.options.changed_rows_only else None
        delimiter = self.spec.file_format.delimiter
        header = state.header or None
        with ExitStack() as stack:
            dropped = None
            if kept_out is not None and kept_out.any:
                dropped = stack.enter_context(kept_out_ordinals(self.source, kept_out, header))
            tracer = stack.enter_context(RecordTracer(self.source, delimiter, header=header, dropped=dropped))

            def finder(batch_id: int) -> Any:
                start, end = spans[batch_id]
                find = tracer.finder(start, end)
                if failed is None or rules is None or not rules.keys:
                    return find

                def find_and_remember(values: Sequence[str]) -> Any:
                    if len(values) == len(rules.fields):  # a failed row's key is not confirmed
                        key = key_column([(v,) for v in values], rules)
                        if key and key[0]:
                            failed.add(stable_hash(key[0]))
                    return find(values)

                return find_and_remember

            more: Iterable[Any] = ()
            if kind == "failures" and kept_out is not None and kept_out.invalid:
                parts = stack.enter_context(source_parts(self.source, expected_header=header))
                more = refused_rows(parts, kept_out.rules)
            yield finder, more


def _renamed(checked: Preflight) -> dict[str, str]:
    """Columns sent under another name than the source's (column_mapping, describe's spelling)."""
    source = checked.header.source_names or checked.header.names
    return {s: n for s, n in zip(source, checked.header.names, strict=False) if s != n}


def part_filename(source: AnySource, index: int) -> str:
    """The file name a part is uploaded as: the source's name (no folder, pattern or compression
    suffix) and the part's number, e.g. ``leads-part0003.csv``."""
    fmt = source.file_format.value
    if isinstance(source, QuerySource):
        stem = "query"
    else:
        stem = str(source.location).rstrip("/").rsplit("/", 1)[-1]
        for suffix in (".gz", ".gzip", ".bz2", ".xz", f".{fmt}", ".csv", ".txt"):
            if stem.lower().endswith(suffix):
                stem = stem[: -len(suffix)]
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._") or "import"
    return f"{stem}-part{index:04d}.{fmt}"
