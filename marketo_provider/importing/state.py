"""What is known about an import: :class:`ImportState`, JSON that travels across deferrals (the
trigger's arguments) and task retries (the task state store). Its JSON form is kept readable by
later releases, so an import deferred or recorded under an earlier release resumes after an
upgrade."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from marketo_provider.api import BatchStatus, ImportTarget, MarketoError
from marketo_provider.api.targets import IMPORTING

STATE_KEY = "marketo_bulk_import"
STATE_VERSION = 2

# How many of the latest resume latencies are kept (the longest of them is the one relied on).
RESUME_SAMPLES_KEPT = 5
# The weight an earlier measurement of the drain keeps when a new one is added: recent polls count most.
DRAIN_DECAY = 0.9


@dataclass(frozen=True)
class PartRange:
    """A part and its logical source bytes: a part being uploaded, or one whose upload outcome is
    unknown, or one sent again. JSON: ``[part, source_start, source_end, first_ordinal,
    end_ordinal, inner_end]`` (the last three, from the ledger, absent in what 0.3 wrote)."""

    part: int
    source_start: int
    source_end: int
    first_ordinal: int | None = None
    end_ordinal: int | None = None
    inner_end: int | None = None

    def to_json(self) -> list[int | None]:
        return [
            self.part,
            self.source_start,
            self.source_end,
            self.first_ordinal,
            self.end_ordinal,
            self.inner_end,
        ]

    @classmethod
    def from_json(cls, data: Sequence[int | None]) -> PartRange:
        part, start, end = (int(v or 0) for v in data[:3])
        more = [None if v is None else int(v) for v in data[3:6]]
        return cls(part, start, end, *more)

    @property
    def described(self) -> str:
        return f"part {self.part} (source bytes {self.source_start:,}-{self.source_end:,})"


@dataclass
class SubmittedPart:
    """A part Marketo accepted, and the batch it became.
    JSON: ``[part, batch_id, start, end, origin]`` (0.2 wrote no origin)."""

    part: int
    batch_id: int
    source_start: int
    source_end: int
    origin: str = ""  # the files and bytes the part came from
    # The ordinals of its records in the ledger, and where it ends in the source's records.
    first_ordinal: int | None = None
    end_ordinal: int | None = None
    inner_end: int | None = None

    def to_json(self) -> list[int | str | None]:
        return [
            self.part,
            self.batch_id,
            self.source_start,
            self.source_end,
            self.origin,
            self.first_ordinal,
            self.end_ordinal,
            self.inner_end,
        ]

    @property
    def ordinals(self) -> tuple[int, int] | None:
        if self.first_ordinal is None or self.end_ordinal is None:
            return None
        return (self.first_ordinal, self.end_ordinal)


@dataclass
class ImportState:
    """What is known about one import; JSON-serializable, kept across deferrals and retries."""

    name: str  # how messages name the import's source
    object_type: str
    custom_object_name: str | None
    deadline: float
    started_at: float = field(default_factory=time.time)
    submitted: list[SubmittedPart] = field(default_factory=list)
    # Uploads whose outcome is unknown: never resent by default.
    uncertain: list[PartRange] = field(default_factory=list)
    # The part being uploaded, recorded before it is sent: a task that dies mid-upload leaves it here.
    in_flight: PartRange | None = None
    # Parts sent again after an unknown outcome (may be imported twice).
    resent: list[PartRange] = field(default_factory=list)
    parts_total: int | None = None  # known once every part has been cut
    header: list[str] = field(default_factory=list)  # the source's column names, to notice a changed source
    finished: dict[int, dict[str, Any]] = field(default_factory=dict)  # batch id -> final status, read once
    api_calls: int = 0
    queue_full_refusals: int = 0  # 1016 answers in a row: the wait before trying again grows
    # What the rows were checked against (RowRules JSON), what the checks found (CheckReport JSON),
    # and which records are kept out of what is sent ("invalid", "earlier_repeats").
    row_rules: dict[str, Any] | None = None
    row_checks: dict[str, Any] | None = None
    kept_out: list[str] = field(default_factory=list)
    rows_kept_out: int = 0
    # The row policy (RowPolicy JSON), the ledger (where it is, what it was built from) and its
    # counts: what became of every row of the source.
    policy: dict[str, Any] | None = None
    ledger: dict[str, Any] | None = None
    rows: dict[str, Any] | None = None
    # changed_rows_only: the state the import compares with (its generation, whether every row is
    # sent and why), the counts, and who holds the state's lock.
    change: dict[str, Any] | None = None
    parts_planned: int | None = None  # the parts pre-flight counted (None for a query: known as it is cut)
    # How fast Marketo works through the import's batches while they keep both of its import slots
    # busy: batches seen to finish over the seconds watched (sums in which older polls fade).
    drain_batches: float = 0.0
    drain_seconds: float = 0.0
    drain_seen: int = 0  # batches counted into the drain, all told
    # Seconds from a wait's end (the trigger's event) to Marketo's answer to the next upload: the
    # latest few, measured.
    resume_seconds: list[float] = field(default_factory=list)
    woken_at: float | None = None  # when the last wait for a slot ended, until the next upload's answer
    resumes: int = 0  # times the task came back from the triggerer
    # batch id -> when it was "submitted" (Marketo's answer to the upload) and first seen
    # "importing" and "done" by a poll (epoch seconds): the parts' timeline in the UI.
    part_times: dict[int, dict[str, float]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "name": self.name,
            "object_type": self.object_type,
            "custom_object_name": self.custom_object_name,
            "deadline": self.deadline,
            "started_at": self.started_at,
            "submitted": [p.to_json() for p in self.submitted],
            "uncertain": [u.to_json() for u in self.uncertain],
            "in_flight": self.in_flight.to_json() if self.in_flight is not None else None,
            "resent": [r.to_json() for r in self.resent],
            "parts_total": self.parts_total,
            "header": self.header,
            "finished": {str(k): v for k, v in self.finished.items()},
            "api_calls": self.api_calls,
            "queue_full_refusals": self.queue_full_refusals,
            "row_rules": self.row_rules,
            "row_checks": self.row_checks,
            "kept_out": self.kept_out,
            "rows_kept_out": self.rows_kept_out,
            "policy": self.policy,
            "ledger": self.ledger,
            "rows": self.rows,
            "change": self.change,
            "parts_planned": self.parts_planned,
            "drain_batches": self.drain_batches,
            "drain_seconds": self.drain_seconds,
            "drain_seen": self.drain_seen,
            "resume_seconds": self.resume_seconds,
            "woken_at": self.woken_at,
            "resumes": self.resumes,
            "part_times": {str(k): v for k, v in self.part_times.items()},
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
            uncertain=[PartRange.from_json(u) for u in data.get("uncertain", [])],
            in_flight=PartRange.from_json(data["in_flight"]) if data.get("in_flight") else None,
            resent=[PartRange.from_json(r) for r in data.get("resent", [])],
            parts_total=data.get("parts_total"),
            header=list(data.get("header", [])),
            finished={int(k): dict(v) for k, v in (data.get("finished") or {}).items()},
            api_calls=int(data.get("api_calls") or 0),
            queue_full_refusals=int(data.get("queue_full_refusals") or 0),
            row_rules=data.get("row_rules"),
            row_checks=data.get("row_checks"),
            kept_out=list(data.get("kept_out") or []),
            rows_kept_out=int(data.get("rows_kept_out") or 0),
            policy=data.get("policy"),
            ledger=data.get("ledger"),
            rows=data.get("rows"),
            change=data.get("change"),
            # Absent from what 0.2 wrote.
            parts_planned=_int_or_none(data.get("parts_planned")),
            drain_batches=float(data.get("drain_batches") or 0.0),
            drain_seconds=float(data.get("drain_seconds") or 0.0),
            drain_seen=int(data.get("drain_seen") or 0),
            resume_seconds=[float(v) for v in data.get("resume_seconds") or []],
            woken_at=float(data["woken_at"]) if data.get("woken_at") is not None else None,
            resumes=int(data.get("resumes") or 0),
            part_times={int(k): dict(v) for k, v in (data.get("part_times") or {}).items()},
        )

    @classmethod
    def for_batches(
        cls, target: ImportTarget, batch_ids: Sequence[int], deadline: float, source: str | None = None
    ) -> ImportState:
        """The state of batches submitted elsewhere (the sensor's): parts numbered in the order
        given; named by the ``source`` they came from, when known, and their ids."""
        ids = f"batches {', '.join(str(b) for b in batch_ids)}"
        return cls(
            name=f"{source} ({ids})" if source else ids,
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
        return {p.part for p in self.submitted} | {u.part for u in self.uncertain}

    @property
    def last_part(self) -> SubmittedPart | PartRange | None:
        """The handled part that ends last (where the next part starts)."""
        handled: list[SubmittedPart | PartRange] = [*self.submitted, *self.uncertain]
        return max(handled, key=lambda p: p.source_end) if handled else None

    @property
    def resume_offset(self) -> int:
        """Where the next part starts in the source: the end of the last handled part."""
        ends = [p.source_end for p in self.submitted] + [u.source_end for u in self.uncertain]
        return max(ends) if ends else 0

    @property
    def all_submitted(self) -> bool:
        return self.parts_total is not None and len(self.handled_parts) >= self.parts_total

    @property
    def done(self) -> bool:
        return self.all_submitted and not self.pending_batch_ids

    @property
    def parts_left(self) -> int | None:
        """Parts not yet submitted, when their number is known (cut to the end, or counted by
        pre-flight)."""
        total = self.parts_total if self.parts_total is not None else self.parts_planned
        return None if total is None else max(0, total - len(self.handled_parts))

    # ---- how fast the queue drains, how long a resume takes ---------------------------------

    def note_drain(self, finished: int, seconds: float) -> None:
        """Record ``finished`` of the import's batches seen to finish in ``seconds`` while its
        batches kept both of Marketo's import slots busy."""
        self.drain_batches = self.drain_batches * DRAIN_DECAY + finished
        self.drain_seconds = self.drain_seconds * DRAIN_DECAY + seconds
        self.drain_seen += finished

    @property
    def drain_rate(self) -> float | None:
        """Batches per second Marketo finishes of this import with its slots busy; None until four
        finishes have been seen (two jobs import at once: fewer say little of how long one takes)."""
        if self.drain_seen < 4 or self.drain_seconds <= 0:
            return None
        return self.drain_batches / self.drain_seconds

    def note_resumed(self, now: float) -> float | None:
        """Marketo answered the first upload after a wait for a slot: how long the way back took
        (None when no wait for a slot came before)."""
        if self.woken_at is None:
            return None
        seconds = max(0.0, now - self.woken_at)
        self.resume_seconds = [*self.resume_seconds, seconds][-RESUME_SAMPLES_KEPT:]
        self.woken_at = None
        return seconds

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
                + ", ".join(u.described for u in self.uncertain)
            )
        if self.resent:
            text += "; sent again after an unknown outcome (may be imported twice): " + ", ".join(
                r.described for r in self.resent
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
        text += f"; {self.resumes} resume{'' if self.resumes == 1 else 's'}"
        remaining = (total - done) if total is not None else None
        elapsed = now - self.started_at
        if done and remaining and elapsed > 0:
            left = remaining * elapsed / done
            text += f"; ~{_duration(left)} left at the current pace"
        return text


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
