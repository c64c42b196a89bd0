"""Concluding an import from its ledger, the same for the operator and for the sensor that
concludes an import the operator submitted: every failed or warned row traced to its place, the
rows refused before upload added to the failures file under the names that were sent, and, for
``changed_rows_only``, the rows of the batches Marketo completed and accounted for kept as the
next state."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from marketo_provider.api import BatchStatus
from marketo_provider.api.targets import COMPLETE
from marketo_provider.importing.changes import ChangedRows
from marketo_provider.importing.errors import ImportAbortedError
from marketo_provider.importing.ledgers import LedgerPlace
from marketo_provider.importing.state import ImportState
from marketo_provider.sources import Ledger, Location, RowPolicy

FAILED_BATCH = 10_000  # ordinals of failed rows held before they go to the ledger


class RefusedRows:
    """The rows refused before upload, and the header they were read under (the names sent)."""

    def __init__(self, rows: Iterable[tuple[list[str], Location, str]], header: Sequence[str]) -> None:
        self._rows = rows
        self.header = list(header)

    def __iter__(self) -> Iterator[tuple[list[str], Location, str]]:
        return iter(self._rows)


class Conclusion:
    """What concluding an import needs of its rows: the ledger (None: the rows were not read, e.g.
    ``check_values=False``, or a query), the changed-rows state, and the policy they were sent by."""

    def __init__(
        self,
        ledger: Ledger | None,
        changes: ChangedRows,
        policy: RowPolicy,
        *,
        header: Sequence[str],
        log: Any,
    ) -> None:
        self.ledger = ledger
        self.changes = changes
        self.policy = policy
        self.header = list(header)
        self.log = log
        self.matched: Counter[int] = Counter()  # batch id -> rows of its failures file found in the ledger
        self.unmatched: Counter[int] = Counter()  # batch id -> rows of its failures file not found

    @contextmanager
    def tracing(
        self, state: ImportState, kind: str
    ) -> Iterator[tuple[Callable[[int], Any] | None, Iterable[Any]]]:
        """Where each row of the batches' ``kind`` files came from, from the ledger; with
        ``on_invalid_rows="skip"`` the rows refused before upload join the failures."""
        ledger = self.ledger
        if ledger is None:
            yield None, ()
            return
        parts = {p.batch_id: p for p in state.submitted}
        failed: list[int] = []

        def finder(batch_id: int) -> Callable[[Sequence[str]], Location | None]:
            part = parts.get(batch_id)
            span = part.ordinals if part is not None else None
            if span is None:  # submitted by an earlier release, without ordinals: no place
                return lambda values: None
            records = ledger.part_records(*span)

            def find(values: Sequence[str]) -> Location | None:
                found = records.find(values)
                if kind == "failures":
                    (self.matched if found else self.unmatched)[batch_id] += 1
                if found is None:
                    return None
                if kind == "failures":
                    failed.append(found[0])
                    if len(failed) >= FAILED_BATCH:  # kept in the ledger, not in memory
                        ledger.mark_failed(failed)
                        failed.clear()
                return found[1]

            return find

        more: Iterable[Any] = ()
        if kind == "failures" and self.policy.skip_invalid:
            more = RefusedRows(ledger.refused_rows(), self.header)
        yield finder, more
        if failed:
            ledger.mark_failed(failed)

    def accounted(self, state: ImportState) -> tuple[list[tuple[int, int]], dict[int, str]]:
        """The ordinal ranges of the parts Marketo completed and accounted for (its counts and its
        failures file add up to the rows sent), and why each other completed batch is not."""
        ranges: list[tuple[int, int]] = []
        not_confirmed: dict[int, str] = {}
        ledger = self.ledger
        for part in state.submitted:
            final = state.finished.get(part.batch_id)
            if final is None or final.get("status") != COMPLETE:
                continue
            span = part.ordinals
            if ledger is None or span is None:
                not_confirmed[part.batch_id] = "the part's rows are not in the ledger"
                continue
            status = BatchStatus.from_json(final)
            sent = ledger.sent_rows(*span)
            processed, failed = status.rows_processed, status.rows_failed
            if processed is None or failed is None:
                not_confirmed[part.batch_id] = "Marketo's status did not count the rows"
            elif processed + failed != sent:
                not_confirmed[part.batch_id] = (
                    f"Marketo counts {processed:,} rows processed and {failed:,} failed of the {sent:,} sent"
                )
            elif failed and self.matched[part.batch_id] != failed:
                not_confirmed[part.batch_id] = (
                    f"its failures file names {self.matched[part.batch_id]:,} of the {failed:,} failed rows "
                    f"({self.unmatched[part.batch_id]:,} rows not found among those sent)"
                )
            else:
                ranges.append(span)
        for batch_id, why in not_confirmed.items():
            self.log.warning(
                "Batch %s: none of its rows is kept as confirmed (%s); they are sent again next time",
                batch_id,
                why,
            )
        return ranges, not_confirmed

    def confirm(self, state: ImportState, summary: dict[str, Any]) -> None:
        """Keep what Marketo confirmed as the next state (``changed_rows_only``)."""
        if not self.changes.on or self.ledger is None:
            return
        ranges, not_confirmed = self.accounted(state)
        pointer = self.changes.write(state, self.ledger, ranges)
        changes = summary.setdefault("changes", {}) or {}
        summary["changes"] = changes
        changes["state_generation"] = pointer["generation"]
        changes["state_keys"] = pointer["keys"]
        if not_confirmed:
            changes["batches_not_confirmed"] = {str(k): v for k, v in list(not_confirmed.items())[:100]}


class HandedOver:
    """An import the operator submitted without waiting (``wait_for_completion=False``) and a
    sensor concludes, from what the operator's summary hands over (:meth:`BulkImport.handover`):
    the same conclusion as the operator's, and the state's lock released when it is done."""

    def __init__(self, handover: Mapping[str, Any] | None, *, log: Any, poll_interval: float) -> None:
        self.handover = handover
        self.log = log
        owner = str(handover.get("owner") or "") if handover else ""
        context = handover.get("changes") if handover else None
        if context:
            self.changes = ChangedRows.of_context(context, owner=owner, log=log, poll_interval=poll_interval)
        else:
            self.changes = ChangedRows(
                None, full_refresh=False, owner=owner, log=log, poll_interval=poll_interval
            )
        self.ledger: Ledger | None = None

    def __enter__(self) -> HandedOver:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.ledger is not None:
            self.ledger.close()
            self.ledger = None
        self.changes.release()

    def renew(self) -> None:
        """Keep the state's lock while the batches run."""
        if self.changes.on:
            self.changes.renew()

    def conclude(self, run: Any, state: ImportState, push: Callable[[str, Any], None]) -> dict[str, Any]:
        if self.handover is None or state.row_rules is None:
            return dict(run.conclude(state, push))
        policy = RowPolicy.from_json(state.policy) if state.policy else RowPolicy()
        if state.ledger is not None:
            self.ledger = LedgerPlace(state.ledger).open(lambda path: self._missing(state, policy), self.log)
        conclusion = Conclusion(self.ledger, self.changes, policy, header=state.header, log=self.log)
        trace = (lambda kind, ids: conclusion.tracing(state, kind)) if self.ledger is not None else None
        summary: dict[str, Any] = run.conclude(state, push, trace=trace, changes=self.changes.summary(state))
        conclusion.confirm(state, summary)
        if state.ledger is not None:
            LedgerPlace(state.ledger).remove()
        return summary

    def _missing(self, state: ImportState, policy: RowPolicy) -> Ledger | None:
        if policy.skip_invalid or self.changes.on:
            raise ImportAbortedError(
                f"the ledger of the import of {state.name} is neither on this machine nor stored beside its "
                "results or state: the rows refused before upload and the changed rows Marketo confirmed "
                "cannot be concluded. Give the operator results_path (or state_path) on storage every worker "
                "reaches",
                permanent=True,
            )
        self.log.warning(
            "The ledger of the import of %s is not on this machine: failed rows are published without their "
            "places in the source",
            state.name,
        )
        return None
