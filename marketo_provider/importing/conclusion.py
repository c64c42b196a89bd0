"""Concluding an import from its ledger, the same for the operator and for the sensor that
concludes an import the operator submitted: every failed or warned row traced to its place, the
rows refused before upload added to the failures file under the names that were sent, and, for
``changed_rows_only``, the rows of the batches Marketo completed and accounted for kept as the
next state."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from marketo_provider.api import COMPLETE, BatchStatus
from marketo_provider.importing.changes import ChangedRows
from marketo_provider.importing.state import ImportState
from marketo_provider.sources.ledger import Ledger, RowPolicy
from marketo_provider.sources.records import Location


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
