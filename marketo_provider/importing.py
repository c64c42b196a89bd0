"""How one import runs, below the Airflow classes: which parts were submitted (the state kept across
deferrals and task retries), submitting the rest while Marketo's queue has room, and deciding when
a wait is over. The operator, the sensor and the trigger are thin layers over this module."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from marketo_provider.api import (
    IMPORTING,
    QUEUED,
    BatchStatus,
    FileFormat,
    MarketoError,
    MarketoQueueFullError,
    MarketoSubmitOutcomeUnknownError,
    ObjectType,
)
from marketo_provider.files import DEFAULT_MAX_PART_BYTES, source_parts

STATE_KEY = "marketo_bulk_import"
STATE_VERSION = 1

# Trigger event kinds.
EVENT_COMPLETE = "complete"  # every batch is done
EVENT_SLOT = "slot"  # a queue slot may have freed: submit the parts that remain
EVENT_TIMEOUT = "timeout"  # the deadline passed
EVENT_ERROR = "error"  # polling failed

MODE_COMPLETE = "complete"
MODE_SLOT = "slot"


class ImportAbortedError(MarketoError):
    """Submitting stopped on an error; the message says which parts were submitted and which were not."""


@dataclass
class SubmittedPart:
    part: int
    batch_id: int
    source_start: int
    source_end: int

    def to_json(self) -> list[int]:
        return [self.part, self.batch_id, self.source_start, self.source_end]


@dataclass
class ImportState:
    """What is known about one import; JSON-serializable, kept across deferrals and retries."""

    source: str
    deadline: float
    submitted: list[SubmittedPart] = field(default_factory=list)
    uncertain: list[list[int]] = field(default_factory=list)  # [part, source_start, source_end]
    parts_total: int | None = None  # known once every part has been cut
    header: list[str] = field(default_factory=list)  # the source's column names, to notice a changed source

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "source": self.source,
            "deadline": self.deadline,
            "submitted": [p.to_json() for p in self.submitted],
            "uncertain": self.uncertain,
            "parts_total": self.parts_total,
            "header": self.header,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ImportState:
        if data.get("version") != STATE_VERSION:
            raise MarketoError(f"unknown import state version {data.get('version')!r}")
        return cls(
            source=data["source"],
            deadline=float(data["deadline"]),
            submitted=[SubmittedPart(*p) for p in data.get("submitted", [])],
            uncertain=[list(u) for u in data.get("uncertain", [])],
            parts_total=data.get("parts_total"),
            header=list(data.get("header", [])),
        )

    @property
    def batch_ids(self) -> list[int]:
        return [p.batch_id for p in self.submitted]

    @property
    def handled_parts(self) -> set[int]:
        return {p.part for p in self.submitted} | {u[0] for u in self.uncertain}

    @property
    def resume_offset(self) -> int:
        """Where the next part starts in the source: the end of the last handled part."""
        ends = [p.source_end for p in self.submitted] + [u[2] for u in self.uncertain]
        return max(ends) if ends else 0

    @property
    def all_submitted(self) -> bool:
        return self.parts_total is not None and len(self.handled_parts) >= self.parts_total

    def accounting(self) -> str:
        """Which parts were submitted (with batch ids), which may have been, and which were not."""
        total = self.parts_total
        sent = ", ".join(f"part {p.part} -> batch {p.batch_id}" for p in self.submitted) or "none"
        text = f"submitted: {sent}"
        if self.uncertain:
            text += "; outcome unknown (not resent): " + ", ".join(
                f"part {u[0]} (source bytes {u[1]:,}-{u[2]:,})" for u in self.uncertain
            )
        if total is not None:
            missing = sorted(set(range(total)) - self.handled_parts)
            text += "; not submitted: " + (", ".join(f"part {i}" for i in missing) if missing else "none")
        else:
            text += "; the parts after these were not submitted"
        return text


@dataclass(frozen=True)
class ImportRequest:
    """What to import and where: the operator's arguments, checked."""

    source: Any
    object_type: ObjectType
    file_format: FileFormat = FileFormat.CSV
    source_conn_id: str | None = None
    lookup_field: str | None = None
    list_id: int | None = None
    partition_name: str | None = None
    program_id: int | None = None
    program_member_status: str | None = None
    custom_object_name: str | None = None
    max_part_bytes: int = DEFAULT_MAX_PART_BYTES

    def submit_kwargs(self) -> dict[str, Any]:
        return {
            "file_format": self.file_format.value,
            "lookup_field": self.lookup_field,
            "list_id": self.list_id,
            "partition_name": self.partition_name,
            "program_id": self.program_id,
            "program_member_status": self.program_member_status,
            "custom_object_name": self.custom_object_name,
        }

    def part_filename(self, index: int) -> str:
        stem = str(self.source).rstrip("/").rsplit("/", 1)[-1].rsplit(".", 1)[0] or "import"
        return f"{stem}-part{index:04d}.{self.file_format.value}"


def submit_parts(
    hook: Any,
    request: ImportRequest,
    state: ImportState,
    *,
    save: Callable[[ImportState], None],
    log: Any,
) -> bool:
    """Submit every part not yet handled, in order, while Marketo accepts them.

    Returns True when every part has been handled, False when Marketo's queue is full (1016) and
    the rest must wait for a slot. ``save`` is called after each accepted part, so a task that dies
    mid-way knows on retry which parts Marketo already has. A part whose upload outcome is unknown
    is recorded and never resent. Any other error raises :class:`ImportAbortedError` naming which
    parts were submitted and which were not.
    """
    handled = state.handled_parts
    if handled != set(range(len(handled))):  # parts are handled strictly in order
        raise ImportAbortedError(f"the import state is inconsistent: {state.accounting()}")
    resume_at = (len(handled), state.resume_offset) if handled else None
    with source_parts(
        request.source,
        file_format=request.file_format,
        source_conn_id=request.source_conn_id,
        max_part_bytes=request.max_part_bytes,
        resume_at=resume_at,
        expected_header=state.header or None,
    ) as parts:
        count = len(handled)
        for part in parts:
            count = part.index + 1
            try:
                entry = hook.submit_import(
                    request.object_type,
                    part.reader(),
                    filename=request.part_filename(part.index),
                    **request.submit_kwargs(),
                )
            except MarketoQueueFullError:
                log.info(
                    "Marketo's import queue is full (1016); part %d and later wait for a slot", part.index
                )
                return False
            except MarketoSubmitOutcomeUnknownError as exc:
                log.error("Part %d: %s", part.index, exc)
                state.uncertain.append([part.index, part.source_start, part.source_end])
                save(state)
                continue
            except MarketoError as exc:
                raise ImportAbortedError(
                    f"submitting part {part.index} failed: {exc}. {state.accounting()}"
                ) from exc
            state.submitted.append(
                SubmittedPart(part.index, int(entry["batchId"]), part.source_start, part.source_end)
            )
            save(state)
            log.info(
                "Part %d (%s bytes) accepted as batch %s", part.index, f"{part.size:,}", entry["batchId"]
            )
        state.parts_total = count
        save(state)
    return True


def should_wake(
    mode: str,
    previous: Mapping[int, str] | None,
    statuses: Sequence[BatchStatus],
    *,
    now: float,
    wake_at: float | None,
) -> str | None:
    """The event a wait should end with now, or None to keep polling (the deadline aside).

    Every batch done: ``complete``. Waiting for a queue slot: ``slot`` when one of our batches
    finished or left the queue for importing (a job ahead of it finished), or when ``wake_at``
    passed (the queue is shared, so other integrations' jobs may free slots unseen).
    """
    if all(s.done for s in statuses) and (statuses or mode != MODE_SLOT):
        return EVENT_COMPLETE  # (nothing to wait for counts as done, except when waiting for a slot)
    if mode != MODE_SLOT:
        return None
    if not statuses:
        return EVENT_SLOT if wake_at is None or now >= wake_at else None
    if previous is not None:
        for s in statuses:
            before = previous.get(s.batch_id)
            if s.done and before not in (None, s.status):
                return EVENT_SLOT
            if before == QUEUED and s.status == IMPORTING:
                return EVENT_SLOT
    if wake_at is not None and now >= wake_at:
        return EVENT_SLOT
    return None


def wait_sync(
    hook: Any,
    object_type: ObjectType,
    batch_ids: Sequence[int],
    *,
    custom_object_name: str | None,
    mode: str,
    poll_interval: float,
    deadline: float,
    wake_at: float | None,
    log: Any,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[str, list[BatchStatus]]:
    """The worker-side twin of the trigger: poll until ``should_wake`` or the deadline."""
    previous: dict[int, str] | None = None
    while True:
        statuses = [
            hook.get_batch_status(object_type, b, custom_object_name=custom_object_name) for b in batch_ids
        ]
        log_statuses(log, statuses)
        now = time.time()
        event = should_wake(mode, previous, statuses, now=now, wake_at=wake_at)
        if event is not None:
            return event, statuses
        if now >= deadline:
            return EVENT_TIMEOUT, statuses
        previous = {s.batch_id: s.status for s in statuses}
        sleep(max(0.0, min(poll_interval, deadline - now)))


def log_statuses(log: Any, statuses: Sequence[BatchStatus]) -> None:
    for s in statuses:
        counts = ""
        if s.rows_processed is not None:
            counts = f", {s.rows_processed} processed, {s.rows_failed or 0} failed, {s.rows_with_warning or 0} warned"
        log.info("Batch %s: %s%s", s.batch_id, s.status, counts)


def status_to_json(status: BatchStatus) -> dict[str, Any]:
    return dict(status.raw) or {"batchId": status.batch_id, "status": status.status}


def parse_batch_ids(value: Any) -> list[int]:
    """Batch ids as given to the sensor: a list, the operator's summary, or text rendered from a
    template (``"[3404, 3405]"`` or ``"3404,3405"``)."""
    import json

    if isinstance(value, Mapping) and "batch_ids" in value:
        value = value["batch_ids"]
    if isinstance(value, str):
        text = value.strip()
        try:
            value = json.loads(text) if text.startswith("[") else [v for v in text.split(",") if v.strip()]
        except ValueError:
            raise MarketoError(f"batch_ids {text!r} is not a list of batch ids") from None
    if isinstance(value, int):
        value = [value]
    try:
        ids = [int(v) for v in value]
    except (TypeError, ValueError):
        raise MarketoError(f"batch_ids must be a list of whole numbers, not {value!r}") from None
    if not ids:
        raise MarketoError("batch_ids is empty: there is nothing to wait for")
    return ids
