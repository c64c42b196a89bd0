"""Submitting an import's parts: in order, while Marketo's queue has room, each recorded as in
flight before it is sent, and what came of it (a batch, an unknown outcome, a full queue). Each
function reads the :class:`~marketo_provider.importing.run.BulkImport` it submits."""

from __future__ import annotations

import enum
import re
import time
from typing import TYPE_CHECKING

from marketo_provider.api import MarketoError, MarketoQueueFullError, MarketoSubmitOutcomeUnknownError
from marketo_provider.api.limits import MAX_QUEUED_JOBS, queue_full_wait_seconds
from marketo_provider.importing.errors import ImportAbortedError, past_deadline
from marketo_provider.importing.state import ImportState, PartRange, SubmittedPart
from marketo_provider.importing.waiting import Wait, WaitFor
from marketo_provider.sources import AnySource, Ledger, Mark, Part, QuerySource, source_parts

if TYPE_CHECKING:
    from marketo_provider.importing.run import BulkImport


class SubmitOutcome(str, enum.Enum):
    """What came of uploading one part."""

    ACCEPTED = "accepted"  # Marketo created a batch for it
    OUTCOME_UNKNOWN = "outcome_unknown"  # sent, no answer: recorded, not sent again
    QUEUE_FULL = "queue_full"  # 1016: Marketo's queue has no room; the part waits


def advance(run: BulkImport, state: ImportState) -> Wait | None:
    """Submit what can be submitted now. Returns the wait that comes next, or None when the
    import is ready to conclude (every part handled and, when waiting for completion, every
    batch done)."""
    if state.all_submitted:
        if not run.options.wait_for_completion or not state.pending_batch_ids:
            return None
        return Wait.start(state, WaitFor.COMPLETION, poll_interval=run.options.poll_interval)
    if time.time() >= state.deadline:
        run.batches.raise_timeout(state)
    run.batches.bound(state)
    blocked_by_others = _submit(run, state)
    if state.all_submitted:
        run.log.info("Every part is handled: %s", state.accounting())
        return advance(run, state)
    # The queue is full. When our own batches fill it, only their finishing frees a slot: wait
    # for the low-water mark (waiting.Wait). When other integrations' jobs do (1016), look again
    # after a while.
    wake_at = None
    if blocked_by_others:
        wake_at = time.time() + queue_full_wait_seconds(run.options.poll_interval, state.queue_full_refusals)
    return Wait.start(state, WaitFor.QUEUE_SLOT, wake_at, poll_interval=run.options.poll_interval)


def _submit(run: BulkImport, state: ImportState) -> bool:
    """Submit parts in order while the queue has room. Returns True when Marketo answered 1016
    (other jobs fill the queue), False when every part is handled or ours fill the queue."""
    _settle_in_flight(run, state)
    handled = state.handled_parts
    if handled != set(range(len(handled))):  # parts are handled strictly in order
        raise ImportAbortedError(f"the import state is inconsistent: {state.accounting()}")
    if len(state.pending_batch_ids) >= MAX_QUEUED_JOBS:
        return False
    resume_at = (len(handled), state.resume_offset) if handled else None
    ledger = run.ledger(state)
    if ledger is not None and handled:
        _number_earlier_parts(run, state, ledger)
    last = state.last_part
    mark = None
    if last is not None and last.end_ordinal is not None and last.inner_end is not None:
        mark = Mark(last.source_end, last.inner_end, last.end_ordinal)
    with source_parts(
        run.source,
        resume_at=resume_at,
        expected_header=state.header or None,
        ledger=ledger,
        mark=mark,
    ) as parts:
        count = len(handled)
        for part in parts:
            if len(state.pending_batch_ids) >= MAX_QUEUED_JOBS:
                run.log.info("Marketo's queue holds 10 of this import's batches; part %d waits", part.index)
                return False
            count = part.index + 1
            if _submit_part(run, state, part) is SubmitOutcome.QUEUE_FULL:
                return True
        state.parts_total = count
        run.save(state)
    return False


def _number_earlier_parts(run: BulkImport, state: ImportState, ledger: Ledger) -> None:
    """Parts an earlier release submitted do not know the ordinals of their records: cut the
    source again up to them (nothing is sent) to learn them from the ledger, so they are traced
    and confirmed like the others. A cut that does not line up means the source changed."""
    handled: list[SubmittedPart | PartRange] = [*state.submitted, *state.uncertain]
    if all(p.end_ordinal is not None for p in handled):
        return
    last = max(p.part for p in handled)
    found: dict[int, tuple[int, int, int | None, int | None, int | None]] = {}
    with source_parts(run.source, expected_header=state.header or None, ledger=ledger) as parts:
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
                f"import source {run.source.name} changed since earlier parts were submitted: part "
                f"{p.part} no longer lines up. {state.accounting()}",
                permanent=True,
            )
        p.first_ordinal, p.end_ordinal, p.inner_end = first, stop, inner
    state.uncertain = [
        PartRange(u.part, u.source_start, u.source_end, *found.get(u.part, (0, 0, None, None, None))[2:])
        for u in state.uncertain
    ]
    run.save(state)


def _submit_part(run: BulkImport, state: ImportState, part: Part) -> SubmitOutcome:
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
        run.save(state)
        try:
            entry = run.hook.submit_import(
                run.spec, part.reader(), filename=part_filename(run.source, part.index)
            )
        except MarketoQueueFullError:
            _note_resumed(run, state)
            state.in_flight = None
            state.queue_full_refusals += 1
            run.save(state)
            run.log.info(
                "Marketo's import queue is full (1016); part %d and later wait for a slot", part.index
            )
            return SubmitOutcome.QUEUE_FULL
        except MarketoSubmitOutcomeUnknownError as exc:
            run.log.error("Part %d: %s", part.index, exc)
            state.in_flight = None
            if run.options.resend_uncertain_parts and span not in state.resent:
                state.resent.append(span)
                run.save(state)
                run.log.warning(
                    "Part %d is sent again (resend_uncertain_parts=True): if Marketo had it, its rows are "
                    "imported twice",
                    part.index,
                )
                continue
            state.uncertain.append(span)
            run.save(state)
            return SubmitOutcome.OUTCOME_UNKNOWN
        except MarketoError as exc:
            state.in_flight = None
            run.save(state)
            if past_deadline(exc):
                run.batches.raise_timeout(state)
            raise ImportAbortedError(
                f"submitting part {part.index} failed: {exc}. {state.accounting()}",
                permanent=exc.permanent,
            ) from exc
        batch_id = int(entry["batchId"])
        _note_resumed(run, state)
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
        run.save(state)
        run.log.info(
            "Part %d (%s bytes, %s) accepted as batch %s",
            part.index,
            f"{part.size:,}",
            part.origin,
            batch_id,
        )
        return SubmitOutcome.ACCEPTED


def _note_resumed(run: BulkImport, state: ImportState) -> None:
    seconds = state.note_resumed(time.time())
    if seconds is not None:
        run.log.info(
            "Marketo answered %.1f s after the wait for a slot ended (the way back; the next waits "
            "allow for the longest of the last few)",
            seconds,
        )


def _settle_in_flight(run: BulkImport, state: ImportState) -> None:
    """A part recorded as being uploaded when an earlier try died: Marketo may have it."""
    span = state.in_flight
    if span is None:
        return
    state.in_flight = None
    if run.options.resend_uncertain_parts:
        state.resent.append(span)
        run.log.warning(
            "%s was being uploaded when an earlier try stopped; it is sent again "
            "(resend_uncertain_parts=True): if Marketo had accepted it, its rows are imported twice",
            span.described.capitalize(),
        )
    else:
        run.log.error(
            "%s was being uploaded when an earlier try stopped; Marketo may or may not have it. It is "
            "not sent again (resend_uncertain_parts=False) and the import will fail naming it once the "
            "other parts are done",
            span.described.capitalize(),
        )
        state.uncertain.append(span)
    run.save(state)


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
