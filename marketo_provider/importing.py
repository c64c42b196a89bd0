"""How one import runs, below the Airflow classes.

:class:`BulkImport` owns an import from the first check to the published results: it checks every
argument, the source and the results location before anything is sent; submits parts while
Marketo's queue has room; waits (in-process here, or in the triggerer through the same rules); and
concludes. :class:`ImportState` is what is known about the import (which parts became which
batches, each batch's final status, the calls made), JSON that travels across deferrals and task
retries. The operator, the sensor and the trigger only map this to Airflow.

Polling uses what Marketo guarantees: one instance imports its jobs in FIFO order, at most two at
a time, and a finished batch never changes. So a poll asks about the earliest unfinished batches
only, reads each batch's final status once and keeps it: the calls an import makes grow with its
parts, not with parts x polls.
"""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from marketo_provider.api import (
    IMPORTING,
    MAX_QUEUED_JOBS,
    QUEUED,
    BatchStatus,
    FileFormat,
    ImportSpec,
    ImportTarget,
    MarketoError,
    MarketoQueueFullError,
    MarketoSubmitOutcomeUnknownError,
    MarketoValueError,
    ObjectType,
    positive_seconds,
    queue_full_wait_seconds,
)
from marketo_provider.files import preflight, source_parts
from marketo_provider.results import ResultsLocation, conclude, summarize
from marketo_provider.sources import QuerySource, Source

STATE_KEY = "marketo_bulk_import"
STATE_VERSION = 2
DEFAULT_POLL_INTERVAL_SECONDS = 30.0
DEFAULT_IMPORT_TIMEOUT_SECONDS = 24 * 3600.0


class Wait(str, enum.Enum):
    """What a wait is for."""

    COMPLETION = "completion"  # every batch done
    QUEUE_SLOT = "queue_slot"  # room in Marketo's import queue for the parts that remain


class WaitEnd(str, enum.Enum):
    """How a wait ended (the trigger's event kinds)."""

    DONE = "done"  # every batch is done
    SLOT_FREE = "slot_free"  # a queue slot may have freed: submit the parts that remain
    TIMEOUT = "timeout"  # the import's deadline passed
    ERROR = "error"  # polling failed


class ImportAbortedError(MarketoError):
    """The import stopped on an error; the message says which parts were submitted and which not."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class ImportFailedError(MarketoError):
    """The import ran but must not look like success (a batch failed, too many rows failed, parts
    may be missing, the results could not be written); the summary is in XCom all the same."""

    def __init__(self, problems: Sequence[str], *, permanent: bool) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)
        self.permanent = permanent


# --------------------------------------------------------------------------------------------
# What is known about an import
# --------------------------------------------------------------------------------------------


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

    name: str  # how messages name the import's source
    object_type: str
    custom_object_name: str | None
    deadline: float
    started_at: float = field(default_factory=time.time)
    submitted: list[SubmittedPart] = field(default_factory=list)
    # [part, source_start, source_end] of uploads whose outcome is unknown: never resent by default.
    uncertain: list[list[int]] = field(default_factory=list)
    # The part being uploaded, recorded before it is sent: a task that dies mid-upload leaves it here.
    in_flight: list[int] | None = None
    # [part, source_start, source_end] of parts sent again after an unknown outcome (may be doubled).
    resent: list[list[int]] = field(default_factory=list)
    parts_total: int | None = None  # known once every part has been cut
    header: list[str] = field(default_factory=list)  # the source's column names, to notice a changed source
    finished: dict[int, dict[str, Any]] = field(default_factory=dict)  # batch id -> final status, read once
    api_calls: int = 0
    queue_full_refusals: int = 0  # 1016 answers in a row: the wait before trying again grows

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "name": self.name,
            "object_type": self.object_type,
            "custom_object_name": self.custom_object_name,
            "deadline": self.deadline,
            "started_at": self.started_at,
            "submitted": [p.to_json() for p in self.submitted],
            "uncertain": self.uncertain,
            "in_flight": self.in_flight,
            "resent": self.resent,
            "parts_total": self.parts_total,
            "header": self.header,
            "finished": {str(k): v for k, v in self.finished.items()},
            "api_calls": self.api_calls,
            "queue_full_refusals": self.queue_full_refusals,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str) -> ImportState:
        if isinstance(data, str):  # a template may hand the state over as text
            data = json.loads(data)
        assert isinstance(data, Mapping)
        if data.get("version") != STATE_VERSION:
            raise MarketoError(f"unknown import state version {data.get('version')!r}")
        return cls(
            name=data["name"],
            object_type=data["object_type"],
            custom_object_name=data.get("custom_object_name"),
            deadline=float(data["deadline"]),
            started_at=float(data.get("started_at") or time.time()),
            submitted=[SubmittedPart(*p) for p in data.get("submitted", [])],
            uncertain=[list(u) for u in data.get("uncertain", [])],
            in_flight=list(data["in_flight"]) if data.get("in_flight") else None,
            resent=[list(r) for r in data.get("resent", [])],
            parts_total=data.get("parts_total"),
            header=list(data.get("header", [])),
            finished={int(k): dict(v) for k, v in (data.get("finished") or {}).items()},
            api_calls=int(data.get("api_calls") or 0),
            queue_full_refusals=int(data.get("queue_full_refusals") or 0),
        )

    @classmethod
    def for_batches(cls, target: ImportTarget, batch_ids: Sequence[int], deadline: float) -> ImportState:
        """The state of batches submitted elsewhere (the sensor's): parts numbered in the order given."""
        return cls(
            name=f"batches {', '.join(str(b) for b in batch_ids)}",
            object_type=target.object_type.value,
            custom_object_name=target.custom_object_name,
            deadline=deadline,
            submitted=[SubmittedPart(i, int(b), 0, 0) for i, b in enumerate(batch_ids)],
            parts_total=len(batch_ids),
        )

    @property
    def target(self) -> ImportTarget:
        return ImportTarget.of(self.object_type, custom_object_name=self.custom_object_name)

    @property
    def batch_ids(self) -> list[int]:
        return [p.batch_id for p in self.submitted]

    @property
    def pending_batch_ids(self) -> list[int]:
        """Batches not known to be done, in submission order."""
        return [p.batch_id for p in self.submitted if p.batch_id not in self.finished]

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

    @property
    def done(self) -> bool:
        return self.all_submitted and not self.pending_batch_ids

    def statuses(self) -> list[tuple[int, BatchStatus]]:
        """(part, final status) of every finished batch, in part order."""
        return [
            (p.part, BatchStatus.from_json(self.finished[p.batch_id]))
            for p in self.submitted
            if p.batch_id in self.finished
        ]

    def accounting(self) -> str:
        """Which parts were submitted (with batch ids), which may have been, and which were not."""
        total = self.parts_total
        sent = ", ".join(f"part {p.part} -> batch {p.batch_id}" for p in self.submitted) or "none"
        text = f"submitted: {sent}"
        if self.uncertain:
            text += (
                "; outcome unknown (not resent, may be missing or, if resent by hand, doubled): "
                + ", ".join(f"part {u[0]} (source bytes {u[1]:,}-{u[2]:,})" for u in self.uncertain)
            )
        if self.resent:
            text += "; sent again after an unknown outcome (may be imported twice): " + ", ".join(
                f"part {r[0]} (source bytes {r[1]:,}-{r[2]:,})" for r in self.resent
            )
        if total is not None:
            missing = sorted(set(range(total)) - self.handled_parts)
            text += "; not submitted: " + (", ".join(f"part {i}" for i in missing) if missing else "none")
        else:
            text += "; the parts after these were not submitted"
        return text

    def progress(self, head: BatchStatus | None = None, now: float | None = None) -> str:
        """One line on how far the import is, for the log."""
        now = time.time() if now is None else now
        done = len(self.finished)
        in_queue = len(self.pending_batch_ids)
        total = self.parts_total
        handled = len(self.handled_parts)
        to_submit = (total - handled) if total is not None else None
        parts = f"{done} of {total if total is not None else f'{handled}+'} parts done ({in_queue} in Marketo's queue"
        if head is not None and head.status == IMPORTING:
            parts = parts.replace("in Marketo's queue", "in Marketo's queue, the first importing")
        parts += f", {to_submit} to submit)" if to_submit is not None else ", more to cut and submit)"
        rows = sum(s.rows_processed or 0 for _, s in self.statuses())
        failed = sum(s.rows_failed or 0 for _, s in self.statuses())
        text = f"import of {self.name}: {parts}; {rows:,} rows processed, {failed:,} failed"
        remaining = (total - done) if total is not None else None
        elapsed = now - self.started_at
        if done and remaining and elapsed > 0:
            left = remaining * elapsed / done
            text += f"; ~{_duration(left)} left at the current pace"
        return text


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# --------------------------------------------------------------------------------------------
# Waiting: which batches to ask about, and when a wait is over (both transports use these)
# --------------------------------------------------------------------------------------------


def poll_round(state: ImportState) -> Generator[int, BatchStatus, BatchStatus | None]:
    """One poll: yields the batch ids to ask about, one at a time, and takes their statuses.

    It asks about the earliest unfinished batch; when that one is done (its final status is kept
    in ``state`` and never asked again) it goes on to the next, and stops at the first that is not
    done. Returns that batch's status (None when every batch is done)."""
    for batch_id in state.pending_batch_ids:
        status = yield batch_id
        if not status.done:
            return status
        state.finished[batch_id] = status.to_json()
    return None


@dataclass
class Waiter:
    """When a wait is over, given what each poll found."""

    mode: Wait
    deadline: float
    wake_at: float | None = None
    finished_before: int = 0
    head_before: BatchStatus | None = None

    @classmethod
    def start(cls, state: ImportState, mode: Wait, wake_at: float | None) -> Waiter:
        return cls(mode, state.deadline, wake_at, finished_before=len(state.finished))

    def check(self, state: ImportState, head: BatchStatus | None, now: float) -> WaitEnd | None:
        """The end of the wait, or None to keep polling."""
        try:
            if self.mode is Wait.COMPLETION:
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
        for limit in (self.deadline, self.wake_at if self.mode is Wait.QUEUE_SLOT else None):
            if limit is not None:
                pause = min(pause, max(0.0, limit - now))
        return pause


# --------------------------------------------------------------------------------------------
# One import
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportOptions:
    """How an import runs, every value checked once before anything is sent."""

    poll_interval: float = DEFAULT_POLL_INTERVAL_SECONDS
    timeout: float = DEFAULT_IMPORT_TIMEOUT_SECONDS
    results: ResultsLocation = field(default_factory=ResultsLocation)
    max_failed_rows: int | None = None
    check_columns: bool = True
    wait_for_completion: bool = True
    resend_uncertain_parts: bool = False

    @classmethod
    def of(
        cls,
        *,
        poll_interval: float | str = DEFAULT_POLL_INTERVAL_SECONDS,
        timeout: float | str = DEFAULT_IMPORT_TIMEOUT_SECONDS,
        results_path: str | None = None,
        results_conn_id: str | None = None,
        source: Any = None,
        source_conn_id: str | None = None,
        max_failed_rows: int | str | None = None,
        check_columns: bool = True,
        wait_for_completion: bool = True,
        resend_uncertain_parts: bool = False,
    ) -> ImportOptions:
        failed: int | None = None
        if max_failed_rows not in (None, ""):
            try:
                failed = int(max_failed_rows)
            except (TypeError, ValueError):
                raise MarketoValueError(
                    f"max_failed_rows must be a whole number, not {max_failed_rows!r}"
                ) from None
            if failed < 0:
                raise MarketoValueError(f"max_failed_rows must be 0 or more, not {max_failed_rows!r}")
        return cls(
            poll_interval=positive_seconds("poll_interval", poll_interval),
            timeout=positive_seconds("timeout", timeout),
            results=ResultsLocation.of(
                results_path, results_conn_id, source=source, source_conn_id=source_conn_id
            ),
            max_failed_rows=failed,
            check_columns=bool(check_columns),
            wait_for_completion=bool(wait_for_completion),
            resend_uncertain_parts=bool(resend_uncertain_parts),
        )


@dataclass(frozen=True)
class WaitStep:
    """The import cannot go on until ``mode`` is reached; ``wake_at`` bounds a slot wait."""

    mode: Wait
    wake_at: float | None = None


class BulkImport:
    """One import, from the first check to the published results.

    :param hook: a :class:`~marketo_provider.hooks.marketo.MarketoHook`.
    :param target: where the batches live (for a sensor: only this and ``options`` are needed).
    :param spec: what the import sends (None for a sensor, which only waits).
    :param source: where the rows come from (None for a sensor).
    :param save: called with the state after every change that must survive the task (the task
        state store on Airflow 3.3+).
    """

    def __init__(
        self,
        hook: Any,
        target: ImportTarget,
        options: ImportOptions,
        *,
        spec: ImportSpec | None = None,
        source: Source | QuerySource | None = None,
        file_format: FileFormat = FileFormat.CSV,
        log: Any,
        save: Callable[[ImportState], None] | None = None,
    ) -> None:
        self.hook = hook
        self.target = target
        self.options = options
        self.spec = spec
        self.source = source
        self.file_format = spec.file_format if spec is not None else file_format
        if source is not None and source.file_format is not self.file_format:
            raise MarketoValueError(
                f"the source is {source.file_format.value} but the import is {self.file_format.value}; "
                "give the same file_format to both"
            )
        self.log = log
        self._save = save or (lambda state: None)
        self._calls_seen = 0

    # ---- bookkeeping -------------------------------------------------------------------------

    def save(self, state: ImportState) -> None:
        self._count_calls(state)
        self._save(state)

    def _count_calls(self, state: ImportState) -> None:
        made = self.hook.api_calls - self._calls_seen
        self._calls_seen = self.hook.api_calls
        state.api_calls += made

    # ---- start ------------------------------------------------------------------------------

    def plan(self) -> dict[str, Any]:
        """Every check :meth:`begin` makes (the source, the columns against Marketo's describe call,
        the results location), and what the import would send, without importing anything."""
        checked = self._check()
        return {
            "validate_only": True,
            "object_type": self.target.object_type.value,
            "target": self.target.label,
            "source": checked.name,
            "columns": list(checked.header.names),
            "parts": checked.parts,
            "bytes": checked.body_bytes,
            "records": checked.records,
            "query": self.spec.query if self.spec is not None else {},
            "api_calls": self.hook.api_calls,
        }

    def _check(self) -> Any:
        if self.spec is None or self.source is None:
            raise MarketoValueError("an import needs what to import (spec) and a source")
        self.options.results.check_writable()
        return preflight(
            self.source,
            object_type=self.spec.object_type,
            lookup_field=self.spec.lookup_field,
            custom_object_name=self.target.custom_object_name,
            describe=self.hook.describe,
            check_columns=self.options.check_columns,
        )

    def begin(self, saved: Mapping[str, Any] | None) -> ImportState | None:
        """Check everything and start the import, or resume the one an earlier try began.

        Returns None when the source holds no records (nothing to import, no import call made).
        Every check happens here, before the first upload: the source (header, columns against
        Marketo's describe call, quoting, UTF-8, record sizes) and the results location."""
        if saved:
            state = ImportState.from_json(saved)
            self.log.info("Resuming the import begun by an earlier try: %s", state.accounting())
            return state
        checked = self._check()
        if checked.empty:
            self.log.info(
                "%s has a header and no records: nothing to import, no import call made", checked.name
            )
            return None
        if checked.parts is None:
            self.log.info("%s passed the checks; its rows are read once, as they are imported", checked.name)
        else:
            self.log.info(
                "%s passed the checks: %s records in %s bytes, to upload in %d part(s)",
                checked.name,
                f"{checked.records:,}",
                f"{checked.body_bytes:,}",
                checked.parts,
            )
        state = ImportState(
            name=checked.name,
            object_type=self.target.object_type.value,
            custom_object_name=self.target.custom_object_name,
            deadline=time.time() + self.options.timeout,
            header=list(checked.header.names),
        )
        self.save(state)
        return state

    def empty_summary(self) -> dict[str, Any]:
        summary = summarize(self.target.object_type, [])
        summary["api_calls"] = self.hook.api_calls
        return summary

    # ---- submit -----------------------------------------------------------------------------

    def advance(self, state: ImportState) -> WaitStep | None:
        """Submit what can be submitted now. Returns what to wait for next, or None when the import
        is ready to conclude (every part handled and, when waiting for completion, every batch done)."""
        if state.all_submitted:
            if not self.options.wait_for_completion or not state.pending_batch_ids:
                return None
            return WaitStep(Wait.COMPLETION)
        if time.time() >= state.deadline:
            self.raise_timeout(state)
        blocked_by_others = self._submit(state)
        if state.all_submitted:
            self.log.info("Every part is handled: %s", state.accounting())
            return self.advance(state)
        # The queue is full. When our own batches fill it, only their finishing frees a slot; when
        # other integrations' jobs do (1016), look again after a while.
        wake_at = None
        if blocked_by_others:
            wake_at = time.time() + queue_full_wait_seconds(
                self.options.poll_interval, state.queue_full_refusals
            )
        return WaitStep(Wait.QUEUE_SLOT, wake_at)

    def _submit(self, state: ImportState) -> bool:
        """Submit parts in order while the queue has room. Returns True when Marketo answered 1016
        (other jobs fill the queue), False when every part is handled or ours fill the queue."""
        assert self.spec is not None and self.source is not None
        self._settle_in_flight(state)
        handled = state.handled_parts
        if handled != set(range(len(handled))):  # parts are handled strictly in order
            raise ImportAbortedError(f"the import state is inconsistent: {state.accounting()}")
        if len(state.pending_batch_ids) >= MAX_QUEUED_JOBS:
            return False
        resume_at = (len(handled), state.resume_offset) if handled else None
        with source_parts(self.source, resume_at=resume_at, expected_header=state.header or None) as parts:
            count = len(handled)
            for part in parts:
                if len(state.pending_batch_ids) >= MAX_QUEUED_JOBS:
                    self.log.info(
                        "Marketo's queue holds 10 of this import's batches; part %d waits", part.index
                    )
                    return False
                count = part.index + 1
                try:
                    self._submit_part(state, part)
                except MarketoQueueFullError:
                    return True
            state.parts_total = count
            self.save(state)
        return False

    def _submit_part(self, state: ImportState, part: Any) -> None:
        """Upload one part, recorded as in flight first, and record what came of it: accepted (its
        batch id), or an unknown outcome (not sent again unless ``resend_uncertain_parts``). Raises
        :class:`MarketoQueueFullError` (recorded too) when Marketo's queue is full."""
        assert self.spec is not None and self.source is not None
        while True:
            state.in_flight = [part.index, part.source_start, part.source_end]
            self.save(state)
            try:
                entry = self.hook.submit(
                    self.spec, part.reader(), filename=part_filename(self.source, part.index)
                )
            except MarketoQueueFullError:
                state.in_flight = None
                state.queue_full_refusals += 1
                self.save(state)
                self.log.info(
                    "Marketo's import queue is full (1016); part %d and later wait for a slot", part.index
                )
                raise
            except MarketoSubmitOutcomeUnknownError as exc:
                self.log.error("Part %d: %s", part.index, exc)
                uncertain, state.in_flight = state.in_flight, None
                if self.options.resend_uncertain_parts and uncertain not in state.resent:
                    state.resent.append(uncertain)
                    self.save(state)
                    self.log.warning(
                        "Part %d is sent again (resend_uncertain_parts=True): if Marketo had it, its rows are "
                        "imported twice",
                        part.index,
                    )
                    continue
                state.uncertain.append(uncertain)
                self.save(state)
                return
            except MarketoError as exc:
                state.in_flight = None
                self.save(state)
                raise ImportAbortedError(
                    f"submitting part {part.index} failed: {exc}. {state.accounting()}",
                    permanent=exc.permanent,
                ) from exc
            batch_id = int(entry["batchId"])
            state.submitted.append(SubmittedPart(part.index, batch_id, part.source_start, part.source_end))
            state.in_flight = None
            state.queue_full_refusals = 0
            self.save(state)
            self.log.info("Part %d (%s bytes) accepted as batch %s", part.index, f"{part.size:,}", batch_id)
            return

    def _settle_in_flight(self, state: ImportState) -> None:
        """A part recorded as being uploaded when an earlier try died: Marketo may have it."""
        if state.in_flight is None:
            return
        part, start, end = state.in_flight
        state.in_flight = None
        if self.options.resend_uncertain_parts:
            state.resent.append([part, start, end])
            self.log.warning(
                "Part %d (source bytes %s-%s) was being uploaded when an earlier try stopped; it is sent "
                "again (resend_uncertain_parts=True): if Marketo had accepted it, its rows are imported twice",
                part,
                f"{start:,}",
                f"{end:,}",
            )
        else:
            self.log.error(
                "Part %d (source bytes %s-%s) was being uploaded when an earlier try stopped; Marketo may or may "
                "not have it. It is not sent again (resend_uncertain_parts=False) and the import will fail "
                "naming it once the other parts are done",
                part,
                f"{start:,}",
                f"{end:,}",
            )
            state.uncertain.append([part, start, end])
        self.save(state)

    # ---- wait -------------------------------------------------------------------------------

    def wait(
        self, state: ImportState, step: WaitStep, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        """Wait on the worker until ``step`` is reached (the trigger does the same in the triggerer)."""
        waiter = Waiter.start(state, step.mode, step.wake_at)
        while True:
            sleep(waiter.pause(self.options.poll_interval, time.time()))
            head = self.poll(state)
            end = waiter.check(state, head, time.time())
            if end is WaitEnd.TIMEOUT:
                self.raise_timeout(state)
            if end is not None:
                return

    def poll(self, state: ImportState) -> BatchStatus | None:
        """One poll round over the hook (sync); logs the import's progress."""
        rounds = poll_round(state)
        head: BatchStatus | None = None
        try:
            batch_id = next(rounds)
            while True:
                batch_id = rounds.send(self.hook.batch_status(self.target, batch_id))
        except StopIteration as stop:
            head = stop.value
        self.save(state)
        self.log.info("%s", state.progress(head))
        return head

    def apply(self, event: Mapping[str, Any]) -> ImportState:
        """The state a trigger's event hands back; raises for a timeout or a polling error."""
        state = ImportState.from_json(event["import_state"])
        self._calls_seen = self.hook.api_calls
        kind = WaitEnd(event["event"])
        if kind is WaitEnd.ERROR:
            raise ImportAbortedError(f"{event.get('message')}. {state.accounting()}")
        if kind is WaitEnd.TIMEOUT:
            self.raise_timeout(state)
        self._save(state)
        return state

    def raise_timeout(self, state: ImportState) -> None:
        running = state.pending_batch_ids
        raise ImportAbortedError(
            f"the import did not finish within timeout={self.options.timeout:g} s; batches still running in "
            f"Marketo (Marketo cannot cancel an import): {running}. {state.accounting()}"
        )

    # ---- conclude ---------------------------------------------------------------------------

    def queued_summary(self, state: ImportState) -> dict[str, Any]:
        """The summary right after submission (``wait_for_completion=False``), for a sensor."""
        queued = [(p.part, BatchStatus(batch_id=p.batch_id, status=QUEUED)) for p in state.submitted]
        summary = summarize(self.target.object_type, queued)
        summary["api_calls"] = state.api_calls
        if state.uncertain:
            raise ImportFailedError(
                [f"some parts may not have been imported: {state.accounting()}"], permanent=True
            )
        return summary

    def conclude(self, state: ImportState, push_xcom: Callable[[str, Any], None]) -> dict[str, Any]:
        """Publish the merged results and return the summary. The summary reaches XCom whatever
        else fails: when the import must fail, it is pushed before :class:`ImportFailedError`."""
        summary, problems, permanent = conclude(
            self.hook,
            state.statuses(),
            target=self.target,
            file_format=self.file_format,
            results=self.options.results,
            max_failed_rows=self.options.max_failed_rows,
            push_xcom=push_xcom,
            log=self.log,
        )
        self._count_calls(state)
        summary["api_calls"] = state.api_calls
        summary["parts_outcome_unknown"] = [u[0] for u in state.uncertain]
        summary["parts_sent_twice"] = [r[0] for r in state.resent]
        if state.resent:
            self.log.warning("Parts that may have been imported twice: %s", state.accounting())
        if state.uncertain:
            problems.append(f"some parts may not have been imported: {state.accounting()}")
        self.log.info(
            "Import of %s done: %d batches, %d rows processed, %d failed, %d with warnings, %d API calls",
            state.name,
            len(summary["batches"]),
            summary["rows_processed"],
            summary["rows_failed"],
            summary["rows_with_warning"],
            summary["api_calls"],
        )
        if problems:
            push_xcom("return_value", summary)
            raise ImportFailedError(problems, permanent=permanent)
        return summary


def part_filename(source: Source | QuerySource, index: int) -> str:
    """The file name a part is uploaded as: the source's name (no folder, pattern or compression
    suffix) and the part's number, e.g. ``leads-part0003.csv``."""
    import re

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


def parse_batch_ids(value: Any) -> list[int]:
    """Batch ids as given to the sensor: a list, the operator's summary, or text rendered from a
    template (``"[3404, 3405]"`` or ``"3404,3405"``)."""
    if isinstance(value, Mapping) and "batch_ids" in value:
        value = value["batch_ids"]
    if isinstance(value, str):
        text = value.strip()
        try:
            value = json.loads(text) if text.startswith("[") else [v for v in text.split(",") if v.strip()]
        except ValueError:
            raise MarketoValueError(f"batch_ids {text!r} is not a list of batch ids") from None
    if isinstance(value, int):
        value = [value]
    try:
        ids = [int(v) for v in value]
    except (TypeError, ValueError):
        raise MarketoValueError(f"batch_ids must be a list of whole numbers, not {value!r}") from None
    if not ids:
        raise MarketoValueError("batch_ids is empty: there is nothing to wait for")
    return ids


__all__ = [
    "BulkImport",
    "ImportAbortedError",
    "ImportFailedError",
    "ImportOptions",
    "ImportState",
    "ObjectType",
    "SubmittedPart",
    "Wait",
    "WaitEnd",
    "WaitStep",
    "Waiter",
    "parse_batch_ids",
    "poll_round",
]
