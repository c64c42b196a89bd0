"""Waiting on an import's batches: which batches a poll asks about, and when a wait is over. The
worker's wait, the sensor's pokes and the trigger share these rules.

Polling uses what Marketo guarantees: one instance imports its jobs in FIFO order, at most two at
a time, and a finished batch never changes. So a poll asks about the earliest unfinished batches
only, reads each batch's final status once and keeps it: the calls an import makes grow with its
parts, not with parts x polls.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

from marketo_provider.api import IMPORTING, QUEUED, BatchStatus, ImportTarget
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
        if not status.done:
            return status
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


@dataclass
class Wait:
    """One wait in progress: what it is for, and when it is over, given what each poll finds.

    ``wake_at`` (epoch seconds) ends a wait for a queue slot even when nothing was seen to free one
    (the queue is shared: other integrations' jobs may leave unseen)."""

    waiting_for: WaitFor
    deadline: float
    wake_at: float | None = None
    finished_before: int = 0
    head_before: BatchStatus | None = field(default=None, repr=False)

    @classmethod
    def start(cls, state: ImportState, waiting_for: WaitFor, wake_at: float | None = None) -> Wait:
        return cls(waiting_for, state.deadline, wake_at, finished_before=len(state.finished))

    def check(self, state: ImportState, head: BatchStatus | None, now: float) -> WaitEnd | None:
        """The end of the wait, or None to keep polling."""
        try:
            if self.waiting_for is WaitFor.COMPLETION:
                if not state.pending_batch_ids:
                    return WaitEnd.DONE
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
            elif self.wake_at is not None and now >= self.wake_at:
                return WaitEnd.SLOT_FREE  # the queue is shared: other jobs may have left unseen
            if now >= self.deadline:
                return WaitEnd.TIMEOUT
            return None
        finally:
            self.head_before = head

    def pause(self, poll_interval: float, now: float) -> float:
        """Seconds until the next poll: the interval, cut short by the deadline or ``wake_at``."""
        pause = poll_interval
        for limit in (self.deadline, self.wake_at if self.waiting_for is WaitFor.QUEUE_SLOT else None):
            if limit is not None:
                pause = min(pause, max(0.0, limit - now))
        return pause
