"""Running one import: :class:`BulkImport` checks every argument, the source and the results
location before anything is sent; submits parts while Marketo's queue has room; waits (on the
worker, or in the triggerer through the same rules); and concludes through its
:class:`~marketo_provider.importing.batches.BatchWatch`."""

from __future__ import annotations

import enum
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
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
from marketo_provider.importing.conclusion import Conclusion
from marketo_provider.importing.ledgers import LedgerPlace, check_fingerprint
from marketo_provider.importing.state import ImportState, PartRange, SubmittedPart
from marketo_provider.importing.watch import Wait, WaitEnd, WaitFor
from marketo_provider.results import ImportSummary
from marketo_provider.sources import (
    AnySource,
    Ledger,
    Mark,
    OnInvalidRows,
    OnRepeatedKeys,
    Part,
    Preflight,
    QuerySource,
    RecordTracer,
    RowPolicy,
    counts_line,
    preflight,
    source_fingerprint,
    source_parts,
)


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
        self.changes = ChangedRows.of(spec, source, options, owner=self.owner, log=log)
        self._ledger: Ledger | None = None
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
        the results location), and what the import would send, without importing anything: the
        plan is made from the ledger pre-flight writes."""
        plan_state = ImportState("", self.target.object_type.value, None, 0.0)
        try:
            checked = self._check(for_plan=True, state=plan_state)
        finally:
            self.changes.release()
        checks = checked.checks
        counts = checked.counts
        would_send = None
        if counts is not None:
            would_send = counts["rows_to_send"]
        elif checked.records is not None:
            would_send = checked.records
        if checked.ledger is not None:
            checked.ledger.close()
        if checked.workdir is not None:
            checked.workdir.cleanup()
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
            "rows": counts,
            "results_path": self.options.results.path,
            "query": self.spec.query,
            "row_checks": checks.to_json() if checks is not None else None,
            "changes": self.changes.summary(plan_state),
            "api_calls": self.hook.api_calls,
        }

    def _check(
        self, *, for_plan: bool = False, state: ImportState | None = None, ledger_path: str | None = None
    ) -> Preflight:
        """Every check before the first upload: the results location, the source (its header, its
        columns against describe, every record, every value), then what the user chose to do
        about rows Marketo would refuse and repeated keys. ``for_plan``: report, never stop."""
        self.options.results.check_writable()
        if self.options.state is not None:
            self.options.state.check_writable()
        options = self.options
        loaded = self.changes.load() if self.changes.on else None
        checked = self._preflight(loaded.path if loaded is not None else None, ledger_path)
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
            if checked.ledger is not None:
                checked.ledger.close()
            raise ImportAbortedError(
                f"nothing was sent: {checked.name} has {' and '.join(stops)}. "
                + " ".join(f"{line}." for line in report.lines()),
                permanent=True,
            )
        return checked

    def _preflight(
        self, previous: str | None, ledger_path: str | None, policy: RowPolicy | None = None
    ) -> Preflight:
        return preflight(
            self.source,
            object_type=self.spec.object_type,
            lookup_field=self.spec.lookup_field,
            custom_object_name=self.target.custom_object_name,
            describe=self.hook.describe,
            check_columns=self.options.check_columns,
            policy=policy or self.options.rows,
            previous=previous,
            ledger_path=ledger_path,
        )

    def begin(self, saved: Mapping[str, Any] | None) -> ImportState | None:
        """Check everything and start the import, or resume the one an earlier try began.

        Returns None when the source holds no records (nothing to import, no import call made).
        Every check happens here, before the first upload: the source (header, columns against
        Marketo's describe call, quoting, UTF-8, record sizes, every value) and the results
        location; what is decided about each row goes into the import's ledger."""
        if saved:
            state = ImportState.from_json(saved)
            state.woken_at = None  # a retry is no way back from a wait: not a resume to measure
            self.log.info("Resuming the import begun by an earlier try: %s", state.accounting())
            self.changes.lock()  # this run's own lock, kept across its tries, renewed
            return state
        state = ImportState(
            name=self.source.name,
            object_type=self.target.object_type.value,
            custom_object_name=self.target.custom_object_name,
            deadline=time.time() + self.options.timeout,
        )
        self.changes.lock()
        try:
            return self._begin(state)
        except BaseException:
            self.release()
            raise

    def _begin(self, state: ImportState) -> ImportState | None:
        place = None
        if self.options.rows.reads_rows and not isinstance(self.source, QuerySource):
            place = LedgerPlace.new(self.owner, state.started_at, self.options)
        checked = self._check(state=state, ledger_path=place.prepare() if place is not None else None)
        fingerprint = source_fingerprint(self.source) if place is not None else None
        if checked.empty:
            self.log.info(
                "%s has a header and no records: nothing to import, no import call made", checked.name
            )
            if checked.ledger is not None:
                checked.ledger.close()
            if place is not None:
                place.remove()
            self.release()
            return None
        if checked.parts is None:
            self.log.info("%s passed the checks; its rows are read once, as they are imported", checked.name)
        else:
            self.log.info(
                "%s passed the checks: %s records in %s bytes (%s)",
                checked.name,
                f"{checked.records:,}",
                f"{checked.body_bytes:,}",
                f"{checked.parts} part{'' if checked.parts == 1 else 's'} when every record is sent",
            )
        state.name = checked.name
        state.header = list(checked.header.names)
        state.row_rules = checked.rules.to_json() if checked.rules is not None else None
        state.row_checks = checked.checks.to_json() if checked.checks is not None else None
        state.rows_kept_out = checked.kept_out
        state.policy = self.options.rows.to_json()
        state.rows = checked.counts
        if checked.ledger is not None and place is not None:
            self._ledger = checked.ledger
            state.ledger = {**place.info, "fingerprint": fingerprint}
            place.keep()
        if checked.counts is not None:
            self.log.info("%s: %s", checked.name, counts_line(checked.counts))
        state.parts_planned = checked.parts if not checked.kept_out else None  # fewer when rows are kept out
        self.save(state)
        return state

    def ledger(self, state: ImportState) -> Ledger | None:
        """The import's ledger: kept by this process, else found where :meth:`_begin` left it,
        else written again from the source (once; a source that changed meanwhile is refused)."""
        if self._ledger is not None:
            return self._ledger
        if state.ledger is None:
            if state.row_rules is None or isinstance(self.source, QuerySource):
                return None  # the rows were not read (check_values=False), or an earlier release's state
            state.ledger = {
                **LedgerPlace.new(self.owner, state.started_at, self.options).info,
                "fingerprint": None,
            }
        info = state.ledger
        check_fingerprint(info.get("fingerprint"), source_fingerprint(self.source), self.source.name)
        self._ledger = LedgerPlace(info).open(lambda path: self._rebuild(state, path), self.log)
        return self._ledger

    def _rebuild(self, state: ImportState, path: str) -> Ledger:
        """The ledger written again by the same single pass, against the same state generation."""
        previous = self.changes.previous(state) if self.changes.on else None
        policy = RowPolicy.from_json(state.policy) if state.policy else self.options.rows
        checked = self._preflight(previous, path, policy)
        if checked.ledger is None:
            raise ImportAbortedError(f"the ledger of {self.source.name} cannot be written again")
        if state.rows is not None and checked.counts is not None:
            was = {k: state.rows.get(k) for k in ("records", "rows_to_send", "kept_out")}
            now = {k: checked.counts.get(k) for k in ("records", "rows_to_send", "kept_out")}
            if was != now:
                checked.ledger.close()
                raise ImportAbortedError(
                    f"import source {self.source.name} changed since the import began ({was} then, {now} now): "
                    f"the rest cannot be cut to line up with what was sent. {state.accounting()}",
                    permanent=True,
                )
        return checked.ledger

    def release(self) -> None:
        """Let go of the state's lock and the import's local files (the import is over)."""
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None
        self.changes.release()

    def abandon(self, state: ImportState | None, *, retried: bool) -> None:
        """The import stopped on an error: the lock is released unless the task is retried
        (a retry takes it again, and a run that never comes back loses it once its lease ends)."""
        if retried:
            if self._ledger is not None:
                self._ledger.close()
                self._ledger = None
            return
        if state is not None and state.ledger is not None:
            LedgerPlace(state.ledger).remove()
        self.release()

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
        ledger = self.ledger(state)
        if ledger is not None and handled:
            self._number_earlier_parts(state, ledger)
        last = state.last_part
        mark = None
        if last is not None and last.end_ordinal is not None and last.inner_end is not None:
            mark = Mark(last.source_end, last.inner_end, last.end_ordinal)
        with source_parts(
            self.source,
            resume_at=resume_at,
            expected_header=state.header or None,
            ledger=ledger,
            mark=mark,
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

    def _number_earlier_parts(self, state: ImportState, ledger: Ledger) -> None:
        """Parts an earlier release submitted do not know the ordinals of their records: cut the
        source again up to them (nothing is sent) to learn them from the ledger, so they are traced
        and confirmed like the others. A cut that does not line up means the source changed."""
        handled: list[SubmittedPart | PartRange] = [*state.submitted, *state.uncertain]
        if all(p.end_ordinal is not None for p in handled):
            return
        last = max(p.part for p in handled)
        found: dict[int, tuple[int, int, int | None, int | None, int | None]] = {}
        with source_parts(self.source, expected_header=state.header or None, ledger=ledger) as parts:
            for part in parts:
                found[part.index] = (
                    part.source_start,
                    part.source_end,
                    part.first_ordinal,
                    part.end_ordinal,
                    part.inner_end,
                )
                if part.index >= last:
                    break
        for p in state.submitted:
            start, end, first, stop, inner = found.get(p.part, (None, None, None, None, None))
            if (start, end) != (p.source_start, p.source_end):
                raise ImportAbortedError(
                    f"import source {self.source.name} changed since earlier parts were submitted: part "
                    f"{p.part} no longer lines up. {state.accounting()}",
                    permanent=True,
                )
            p.first_ordinal, p.end_ordinal, p.inner_end = first, stop, inner
        state.uncertain = [
            PartRange(u.part, u.source_start, u.source_end, *found.get(u.part, (0, 0, None, None, None))[2:])
            for u in state.uncertain
        ]
        self.save(state)

    def _submit_part(self, state: ImportState, part: Part) -> SubmitOutcome:
        """Upload one part, recorded as in flight first, and record what came of it: accepted (its
        batch id), an unknown outcome (not sent again unless ``resend_uncertain_parts``), or a full
        queue (the part waits for a slot)."""
        span = PartRange(
            part.index,
            part.source_start,
            part.source_end,
            part.first_ordinal,
            part.end_ordinal,
            part.inner_end,
        )
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
                SubmittedPart(
                    part.index,
                    batch_id,
                    part.source_start,
                    part.source_end,
                    part.origin,
                    part.first_ordinal,
                    part.end_ordinal,
                    part.inner_end,
                )
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
        """Wait on the worker; the state's lock (``changed_rows_only``) is renewed as it goes."""
        renewed = time.monotonic()

        def pause(seconds: float) -> None:
            nonlocal renewed
            sleep(seconds)
            if self.changes.on and time.monotonic() - renewed >= self.changes.lease / 3:
                renewed = time.monotonic()
                self.changes.renew()

        self.batches.wait(state, wait, sleep=pause)

    def resume(self, event: Mapping[str, Any]) -> ImportState:
        """The state a trigger's event hands back. Resumed to submit more, the task asks Marketo
        once more first: the trigger's last poll is seconds old (its hold, the way back), and
        batches that finished since free slots the next parts can take now."""
        state = self.batches.resume(event)
        if WaitEnd(event["event"]) is WaitEnd.SLOT_FREE and state.pending_batch_ids:
            self.batches.poll(state)
        return state

    def conclusion(self, state: ImportState) -> Conclusion:
        return Conclusion(
            self.ledger(state),
            self.changes,
            RowPolicy.from_json(state.policy) if state.policy else self.options.rows,
            header=state.header,
            log=self.log,
        )

    def handover(self, state: ImportState) -> dict[str, Any]:
        """What the sensor needs to conclude this import as the operator would (the operator's
        summary carries it under ``import``): the import's state (its parts' ordinals, the ledger's
        place, the counts) and the changed-rows state it compared with."""
        return {"state": state.to_json(), "owner": self.owner, "changes": self.changes.context()}

    def conclude(self, state: ImportState, push_xcom: PushXCom) -> dict[str, Any]:
        """Publish the results and return the summary; with ``changed_rows_only``, then keep what
        Marketo confirmed as the next state (only when the import succeeded). Without waiting for
        completion, the summary hands the import over to the sensor (the state's lock held until
        it concludes)."""
        if not self.options.wait_for_completion:
            summary = self.batches.queued_summary(state)
            summary["import"] = self.handover(state)
            if self.changes.on:
                self.changes.renew()  # the sensor renews it as it waits, and releases it
            if self._ledger is not None:
                self._ledger.close()
                self._ledger = None
            return summary
        conclusion = self.conclusion(state) if state.row_rules is not None else None
        try:
            trace = (
                (lambda kind, ids: conclusion.tracing(state, kind))
                if conclusion is not None and conclusion.ledger is not None
                else (lambda kind, ids: self._tracing(state, kind))
            )
            summary = self.batches.conclude(
                state, push_xcom, trace=trace, changes=self.changes.summary(state)
            )
            if conclusion is not None:
                conclusion.confirm(state, summary)
            if state.ledger is not None:
                if self._ledger is not None:
                    self._ledger.close()
                    self._ledger = None
                LedgerPlace(state.ledger).remove()
        finally:
            self.release()
        return summary

    @contextmanager
    def _tracing(
        self, state: ImportState, kind: str
    ) -> Iterator[tuple[Callable[[int], Any] | None, Iterable[Any]]]:
        """Where each row of the batches' ``kind`` files came from, when the import has no ledger
        (its rows were not read before upload: ``check_values=False``, a query): the source is
        walked again."""
        spans = {p.batch_id: (p.source_start, p.source_end) for p in state.submitted}
        with RecordTracer(
            self.source, self.spec.file_format.delimiter, header=state.header or None
        ) as tracer:

            def finder(batch_id: int) -> Any:
                start, end = spans[batch_id]
                return tracer.finder(start, end)

            yield finder, ()


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
