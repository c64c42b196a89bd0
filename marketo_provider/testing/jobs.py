"""Import jobs and Marketo's import queue: FIFO, 2 importing and 10 queued per instance (1016 above).

One function, :meth:`ImportQueue.next_event`, says what the queue does next and when; moving the
queue on (:meth:`ImportQueue.advance`) and telling how long until it moves
(:meth:`ImportQueue.next_event_in`) both read it, so the two cannot disagree.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from marketo_provider.testing.config import SandboxConfig
from marketo_provider.testing.errors import SandboxError
from marketo_provider.testing.spec import (
    COMPLETE,
    FAILED,
    IMPORTING,
    QUEUED,
    FileFormat,
    ImportTarget,
    ObjectType,
)


@dataclass
class Job:
    """One import job (a batch): what was uploaded and where it is in its life."""

    batch_id: int
    target: ImportTarget
    file_format: FileFormat
    params: dict[str, str]
    content: bytes
    filename: str
    created_at: float
    size: int = 0  # bytes uploaded; kept once the content is freed
    status: str = QUEUED
    started_at: float | None = None
    finished_at: float | None = None
    fail_message: str | None = None
    hold: bool = False
    released_at: float = 0.0  # a held job starts no sooner than its release
    pending: bool = False  # finished importing, rows not yet checked
    processed: int | None = None
    failed: int | None = None
    warned: int | None = None
    failures_file: bytes = b""
    warnings_file: bytes = b""

    def entry(self) -> dict[str, Any]:
        """The job as the status call shows it; counts only once it is done (as real answers do)."""
        kind = self.target.object_type
        out: dict[str, Any] = {"batchId": self.batch_id}
        if kind is ObjectType.CUSTOM_OBJECTS:
            out["operation"] = "import"
        else:
            out["importId"] = str(self.batch_id)
        out["status"] = self.status
        if kind is ObjectType.CUSTOM_OBJECTS:
            out["objectApiName"] = self.target.custom_object_name
        if self.status in (COMPLETE, FAILED):
            out[kind.processed_count_field] = self.processed or 0
            out["numOfRowsFailed"] = self.failed or 0
            out["numOfRowsWithWarning"] = self.warned or 0
            if kind is ObjectType.CUSTOM_OBJECTS and self.started_at is not None:
                seconds = (self.finished_at or self.started_at) - self.started_at
                out["importTime"] = f"{max(seconds, 0.0):.1f} seconds"
            out["message"] = self.fail_message if self.status == FAILED else self._message()
        return out

    def create_entry(self) -> dict[str, Any]:
        """The job as the create call answers it (no counts yet)."""
        keep = ("batchId", "importId", "operation", "status", "objectApiName")
        return {k: v for k, v in self.entry().items() if k in keep}

    def _message(self) -> str:
        imported = self.processed or 0
        text = ("Import completed with errors" if self.failed else "Import succeeded") + (
            f", {imported} records imported ({imported} members)"
        )
        if self.failed:
            text += f", {self.failed} failed"
        if self.warned:
            text += f", {self.warned} warning{'s' if self.warned != 1 else ''}."
        return text


@dataclass(frozen=True)
class QueueEvent:
    """The next thing the queue does on its own: a job starts importing, or finishes."""

    at: float
    action: Literal["start", "finish"]
    job: Job


class ImportQueue:
    """The instance's import jobs and its FIFO queue.

    Not thread-safe on its own: :class:`MarketoBackend` serialises calls.
    """

    def __init__(self, config: SandboxConfig, batch_ids: Iterator[int] | None = None) -> None:
        self.config = config
        self.jobs: dict[int, Job] = {}
        self.fifo: list[int] = []  # batch ids of Queued and Importing jobs, oldest first
        self.last_event = 0.0
        self.fail_next: deque[str] = deque()
        self.hold_next = 0
        self.batch_ids = itertools.count(1001) if batch_ids is None else batch_ids

    def create(
        self,
        target: ImportTarget,
        file_format: FileFormat,
        params: dict[str, str],
        content: bytes,
        filename: str,
        now: float,
    ) -> Job:
        """Queue a new job, or refuse with 1016 when the queue is full."""
        self.advance(now)
        if len(self.fifo) >= self.config.max_queued:
            raise SandboxError("1016")
        job = Job(
            batch_id=next(self.batch_ids),
            target=target,
            file_format=file_format,
            params=dict(params),
            content=content,
            filename=filename,
            created_at=now,
            size=len(content),
        )
        if self.fail_next:
            job.fail_message = self.fail_next.popleft()
        if self.hold_next:
            self.hold_next -= 1
            job.hold = True
        self.jobs[job.batch_id] = job
        self.fifo.append(job.batch_id)
        return job

    def get(self, batch_id: int) -> Job:
        job = self.jobs.get(int(batch_id))
        if job is None:
            raise SandboxError("1003", f"Batch id {batch_id} not found")
        return job

    # ---- the schedule -----------------------------------------------------------------------

    def next_event(self) -> QueueEvent | None:
        """The queue's next event, whenever it falls; None when nothing will happen on its own.

        A job that is not held finishes ``import_seconds`` after it started; the head of the
        waiting line starts when a slot is free, no sooner than ``queued_seconds`` after it was
        created, never before the event that freed the slot nor before its release if it was held. A finish comes before a start at
        the same time (the start may need the slot it frees).
        """
        importing = [self.jobs[b] for b in self.fifo if self.jobs[b].status == IMPORTING]
        finish = None
        for job in importing:
            if job.hold or job.started_at is None:
                continue
            at = job.started_at + self.config.import_seconds
            if finish is None or at < finish.at:
                finish = QueueEvent(at, "finish", job)
        head = next((self.jobs[b] for b in self.fifo if self.jobs[b].status == QUEUED), None)
        start = None
        if head is not None and not head.hold and len(importing) < self.config.max_importing:
            at = max(head.created_at + self.config.queued_seconds, self.last_event, head.released_at)
            start = QueueEvent(at, "start", head)
        if finish is None or (start is not None and start.at < finish.at):
            return start
        return finish

    def advance(self, now: float) -> list[QueueEvent]:
        """Apply every event up to ``now``, in order; returns them."""
        applied = []
        while (event := self.next_event()) is not None and event.at <= now:
            self.last_event = event.at
            job = event.job
            if event.action == "start":
                job.status, job.started_at = IMPORTING, event.at
            else:
                # The job leaves the queue; it stays Importing until its rows are checked, which the
                # backend does outside its state lock.
                job.finished_at = event.at
                job.pending = True
                self.fifo.remove(job.batch_id)
            applied.append(event)
        return applied

    def next_event_in(self, now: float) -> float | None:
        """Seconds until the queue next changes on its own, or None when nothing will."""
        self.advance(now)
        event = self.next_event()
        return None if event is None else max(0.0, event.at - now)

    # ---- driving by hand ----------------------------------------------------------------------

    def release(self, now: float, batch_id: int | None = None) -> None:
        """Let held jobs (one, or all) move on from ``now``."""
        for job in self.jobs.values():
            if job.hold and (batch_id is None or job.batch_id == batch_id):
                job.hold, job.released_at = False, now


__all__ = ["ImportQueue", "Job", "QueueEvent"]
