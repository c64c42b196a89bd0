"""Waiting on an import's batches: which batches a poll asks about, and when a wait is over. The
worker's wait, the sensor's pokes and the trigger share these rules.

Polling uses what Marketo guarantees: one instance imports its jobs in FIFO order, at most two at
a time, and a finished batch never changes. So a poll asks about the earliest unfinished batches
only, reads each batch's final status once and keeps it: the calls an import makes grow with its
parts, not with parts x polls.

While the import's own batches fill Marketo's queue, a wait for a slot ends at a low-water mark,
not at the first freed slot: every resume of a deferred task is a round trip through Airflow's
scheduler, a worker slot and its database, so a task woken once per slot resumes once per part and
leaves the queue to run dry between resumes. The mark is set from how fast the import's batches
drain and how long a resume takes, both measured as the import goes.
"""

from __future__ import annotations

import enum
import math
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

from marketo_provider.api import BatchStatus, ImportTarget
from marketo_provider.api.limits import MAX_IMPORTING_JOBS, MAX_QUEUED_JOBS
from marketo_provider.api.targets import IMPORTING, QUEUED
from marketo_provider.importing.state import ImportState

#: How a poll asks about one batch: Marketo's status entry of ``batch_id`` of ``target``.
GetStatus = Callable[[ImportTarget, int], Mapping[str, Any]]
AGetStatus = Callable[[ImportTarget, int], Awaitable[Mapping[str, Any]]]


class WaitFor(str, enum.Enum):
    """What a wait is for."""

    COMPLETION = "completion"  # every batch done
    QUEUE_SLOT = "queue_slot"  # room in Marketo's import queue for the parts that remain


class WaitEnd(str, enum.Enum):
    """How a wait ended (the trigger's event kinds)."""

    DONE = "done"  # every batch is done
    SLOT_FREE = "slot_free"  # a queue slot may have freed: submit the parts that remain
    TIMEOUT = "timeout"  # the import's deadline passed
    ERROR = "error"  # polling failed


def poll_round(state: ImportState) -> Generator[int, Mapping[str, Any], BatchStatus | None]:
    """One poll: yields the batch ids to ask about, one at a time, and takes Marketo's status
    entries.

    It asks about the earliest unfinished batch; when that one is done (its final status is kept
    in ``state`` and never asked again) it goes on to the next, and stops at the first that is not
    done. Returns that batch's status (None when every batch is done)."""
    object_type = state.target.object_type
    for batch_id in state.pending_batch_ids:
        status = BatchStatus.from_entry(object_type, (yield batch_id))
        seen = state.part_times.setdefault(batch_id, {})
        if status.status == IMPORTING:
            seen.setdefault("importing", time.time())
        if not status.done:
            return status
        seen["done"] = time.time()
        state.finished[batch_id] = status.to_json()
    return None


def poll(state: ImportState, get_status: GetStatus) -> BatchStatus | None:
    """:func:`poll_round` driven by a synchronous status call."""
    rounds = poll_round(state)
    target = state.target
    try:
        batch_id = next(rounds)
        while True:
            batch_id = rounds.send(get_status(target, batch_id))
    except StopIteration as stop:
        return stop.value


async def apoll(state: ImportState, get_status: AGetStatus) -> BatchStatus | None:
    """:func:`poll_round` driven by an async status call (the triggerer)."""
    rounds = poll_round(state)
    target = state.target
    try:
        batch_id = next(rounds)
        while True:
            batch_id = rounds.send(await get_status(target, batch_id))
    except StopIteration as stop:
        return stop.value


#: Before the pace of the queue is measured, a wait for a slot ends when this many of the import's
#: batches remain in Marketo's queue: the task can then submit four parts at once.
FIRST_LOW_WATER_MARK = MAX_QUEUED_JOBS - 4
#: Before a resume is measured: how long a task is assumed to take to come back from the triggerer
#: and have its next upload answered (scheduler, a worker slot, a new task process, the upload).
DEFAULT_RESUME_SECONDS = 15.0


def low_water_mark(rate: float | None, back_in: float) -> int:
    """How few of the import's batches may remain in Marketo's queue when the task is woken to
    submit more, so that Marketo does not run out of them before the task is back.

    ``rate`` is how many of the import's batches Marketo finishes per second (None: not measured
    yet); ``back_in`` the seconds until the task's next upload is answered if it is woken at the
    next look. Marketo imports two jobs at a time: the batches still queued ahead keep it busy
    while they number at least two, so the mark leaves two, plus those Marketo finishes before
    the task is back. It is at most nine (one slot free) and at least three."""
    if rate is None:
        return FIRST_LOW_WATER_MARK
    margin = math.ceil(rate * back_in)
    return max(MAX_IMPORTING_JOBS + 1, min(MAX_QUEUED_JOBS - 1, MAX_IMPORTING_JOBS + margin))


@dataclass
class Wait:
    """One wait in progress: what it is for, and when it is over, given what each poll finds.

    A wait for a queue slot follows one of two rules:

    - the import's own batches fill Marketo's queue (``wake_at`` None): it ends at the low-water
      mark (:func:`low_water_mark`), when few enough batches remain that the task can submit
      several parts at once and early enough that Marketo still has some of them to import when
      the task is back; or sooner, when every part left fits in the room there is (the import
      can no longer be starved: nothing is left to submit after them);
    - other integrations' jobs fill it (1016, ``wake_at`` set): it ends when one of the import's
      batches finished, when the first moved from Queued to Importing (a job ahead of it
      finished), or at ``wake_at`` (other jobs may leave unseen).

    ``poll_interval`` is how long until the next look (the mark allows for it); ``hold_until``
    (epoch seconds) is when the trigger may fire at the earliest. Every poll while the import's
    batches keep both of Marketo's import slots busy measures how fast they drain."""

    waiting_for: WaitFor
    deadline: float
    wake_at: float | None = None
    finished_before: int = 0
    poll_interval: float = 0.0
    hold_until: float | None = None
    head_before: BatchStatus | None = field(default=None, repr=False)
    seen_before: tuple[float, int, int] | None = field(default=None, repr=False)  # (time, finished, pending)

    @classmethod
    def start(
        cls,
        state: ImportState,
        waiting_for: WaitFor,
        wake_at: float | None = None,
        *,
        poll_interval: float = 0.0,
    ) -> Wait:
        return cls(
            waiting_for,
            state.deadline,
            wake_at,
            finished_before=len(state.finished),
            poll_interval=poll_interval,
        )

    def check(self, state: ImportState, head: BatchStatus | None, now: float) -> WaitEnd | None:
        """The end of the wait, or None to keep polling."""
        try:
            self._measure(state, now)
            if self.waiting_for is WaitFor.COMPLETION:
                if not state.pending_batch_ids:
                    return WaitEnd.DONE
            elif self.wake_at is None:
                if self.low_water_reached(state, now):
                    return WaitEnd.SLOT_FREE
            elif len(state.finished) > self.finished_before:
                return WaitEnd.SLOT_FREE  # one of ours finished: its slot is free
            elif (
                head is not None
                and self.head_before is not None
                and self.head_before.batch_id == head.batch_id
                and self.head_before.status == QUEUED
                and head.status == IMPORTING
            ):
                return WaitEnd.SLOT_FREE  # a job ahead of ours finished
            elif now >= self.wake_at:
                return WaitEnd.SLOT_FREE  # the queue is shared: other jobs may have left unseen
            if now >= self.deadline:
                return WaitEnd.TIMEOUT
            return None
        finally:
            self.head_before = head
            self.seen_before = (now, len(state.finished), len(state.pending_batch_ids))

    def mark(self, state: ImportState, now: float) -> int:
        """The low-water mark at ``now``: the task would be back at the next look (one poll
        interval, or the trigger's hold if longer) plus the longest resume measured lately."""
        resume = max(state.resume_seconds, default=DEFAULT_RESUME_SECONDS)
        next_look = max(self.poll_interval, (self.hold_until - now) if self.hold_until is not None else 0.0)
        return low_water_mark(state.drain_rate, next_look + resume)

    def low_water_reached(self, state: ImportState, now: float) -> bool:
        """The import's own batches fill the queue: is it time for the task to submit more?"""
        pending = len(state.pending_batch_ids)
        if pending <= self.mark(state, now):
            return True
        left = state.parts_left
        return left is not None and left <= MAX_QUEUED_JOBS - pending

    def _measure(self, state: ImportState, now: float) -> None:
        """Count the batches that finished since the last poll into the import's drain rate, when
        its batches kept both import slots busy all along: the first of them importing then, and
        at least two left now. A wait ends on a poll that saw batches finish, so the rate leans
        high, and the mark with it: towards waking the task early rather than late."""
        if self.seen_before is None or self.head_before is None or self.head_before.status != IMPORTING:
            return
        then, finished_then, pending_then = self.seen_before
        finished = len(state.finished) - finished_then
        if now > then and pending_then - finished >= MAX_IMPORTING_JOBS:
            state.note_drain(finished, now - then)

    def pause(self, poll_interval: float, now: float) -> float:
        """Seconds until the next poll: the interval, cut short by the deadline or ``wake_at``."""
        pause = poll_interval
        for limit in (self.deadline, self.wake_at if self.waiting_for is WaitFor.QUEUE_SLOT else None):
            if limit is not None:
                pause = min(pause, max(0.0, limit - now))
        return pause
