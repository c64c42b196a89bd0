"""Running one import: :class:`BulkImport` checks every argument, the source and the results
location before anything is sent (:mod:`~marketo_provider.importing.checking`); submits parts
while Marketo's queue has room (:mod:`~marketo_provider.importing.submitting`); waits (on the
worker, or in the triggerer through the same rules); and concludes through its
:class:`~marketo_provider.importing.batch_watch.BatchWatch`."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from marketo_provider.api import ImportSpec
from marketo_provider.importing import checking, submitting
from marketo_provider.importing.batch_watch import BatchWatch, PushXCom
from marketo_provider.importing.changes import ChangedRows
from marketo_provider.importing.conclusion import Conclusion
from marketo_provider.importing.errors import ImportAbortedError
from marketo_provider.importing.ledgers import LedgerPlace, check_fingerprint
from marketo_provider.importing.options import ImportOptions
from marketo_provider.importing.state import ImportState
from marketo_provider.importing.waiting import Wait, WaitEnd
from marketo_provider.results import ImportSummary
from marketo_provider.sources import (
    AnySource,
    Ledger,
    QuerySource,
    RecordTracer,
    RowPolicy,
    counts_line,
    source_fingerprint,
)


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
        """What the import would send after every check :meth:`begin` makes, without importing
        anything (:func:`~marketo_provider.importing.checking.plan`)."""
        return checking.plan(self)

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
        checked = checking.check(
            self, state=state, ledger_path=place.prepare() if place is not None else None
        )
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
            place.keep()
            # Its size bounds what the stored copy may unpack to when another process reads it.
            state.ledger = {**place.info, "fingerprint": fingerprint, "bytes": os.path.getsize(place.local)}
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
        checked = checking.preflight_source(self, previous, path, policy)
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
        """Submit what can be submitted now; the wait that comes next, or None when the import is
        ready to conclude (:func:`~marketo_provider.importing.submitting.advance`)."""
        return submitting.advance(self, state)

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
