"""``MarketoBackend``: one sandboxed Marketo instance, composed of its rooms.

Nothing here speaks HTTP; ``app.py`` turns requests into calls on the backend, so the rules can be
tested directly and driven by hand (a manual clock, held or failed jobs). Each room keeps one
concern: ``identity`` (tokens), ``limits`` (606/615/607), ``faults`` (fault injection and the
call record), ``jobs`` (jobs and the FIFO queue), ``rows`` (row checks and result files),
``leads`` (what imports leave behind) and ``catalog`` (fields, custom objects, describe). The
backend holds the lock that makes them safe to call from the server's threads and tests at once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any

from marketo_provider.testing import spec
from marketo_provider.testing.catalog import PROGRAM_MEMBER_STATUSES, Catalog, CustomObjectType
from marketo_provider.testing.clock import Clock
from marketo_provider.testing.config import SandboxConfig
from marketo_provider.testing.errors import SandboxError
from marketo_provider.testing.faults import CallLog, CallRecord, Fault
from marketo_provider.testing.identity import Identity
from marketo_provider.testing.jobs import ImportQueue, Job
from marketo_provider.testing.leads import ImportedRow, LeadStore
from marketo_provider.testing.limits import CallLimits
from marketo_provider.testing.parameters import check_query
from marketo_provider.testing.rows import (
    FileUnreadable,
    JobRowRules,
    Outcome,
    check_rows,
    failures_file,
    warnings_file,
)
from marketo_provider.testing.schema import SchemaSource, load_schema
from marketo_provider.testing.spec import COMPLETE, FAILED, FileFormat, ImportTarget, ObjectType


class MarketoBackend:
    """The state of one sandboxed Marketo instance.

    Thread-safe: the HTTP server calls it from its event loop and worker threads while tests drive
    it from theirs.
    """

    def __init__(
        self,
        config: SandboxConfig | None = None,
        clock: Clock | None = None,
        schema: SchemaSource | None = None,
    ) -> None:
        self.config = config or SandboxConfig()
        self.clock = clock or Clock()
        self.identity = Identity(self.config, self.clock)
        self.limits = CallLimits(self.config, self.clock)
        self.log = CallLog()
        self.queue = ImportQueue(self.config)
        self.catalog = Catalog(None if schema is None else load_schema(schema))
        self.store = LeadStore(self.catalog.lead_field_names)
        self._lock = threading.RLock()
        self._settle_lock = threading.Lock()

    # ---- views of the rooms' state (tests read these) ---------------------------------------

    @property
    def jobs(self) -> dict[int, Job]:
        return self.queue.jobs

    @property
    def calls(self) -> list[CallRecord]:
        return self.log.calls

    @property
    def faults(self) -> list[Fault]:
        return self.log.faults

    @property
    def custom_objects(self) -> dict[str, CustomObjectType]:
        return self.catalog.custom_objects

    @property
    def leads(self) -> dict[int, dict[str, str]]:
        return self.store.leads

    @property
    def static_lists(self) -> dict[int, set[int]]:
        return self.store.static_lists

    @property
    def program_members(self) -> dict[int, dict[int, str]]:
        return self.store.program_members

    @property
    def imported(self) -> dict[str, list[ImportedRow]]:
        return self.store.imported

    @property
    def _current_token(self) -> str | None:
        return self.identity.current_token

    # ---- identity -----------------------------------------------------------------------------

    def issue_token(
        self, client_id: str | None, client_secret: str | None, grant_type: str | None
    ) -> dict[str, Any]:
        with self._lock:
            return self.identity.issue_token(client_id, client_secret, grant_type)

    def check_token(self, token: str | None) -> None:
        with self._lock:
            self.identity.check_token(token)

    def expire_tokens(self) -> None:
        """Make every issued token expire now (the next call gets 602)."""
        with self._lock:
            self.identity.expire_tokens()

    # ---- limits -------------------------------------------------------------------------------

    def enter_call(self) -> None:
        """Count a REST call against the concurrency, rate and daily limits."""
        with self._lock:
            self.limits.enter()

    def exit_call(self) -> None:
        with self._lock:
            self.limits.exit()

    # ---- faults and the call record -----------------------------------------------------------

    def inject_fault(self, path: str, *, count: int = 1, **kwargs: Any) -> Fault:
        """Make the next ``count`` calls whose path matches ``path`` (a glob) misbehave.

        Keyword arguments: ``code`` (a Marketo error code, answered in the envelope), ``message``,
        ``http_status`` (a bare HTTP status), ``delay`` (seconds before answering),
        ``answer_delay`` (do the work at once, then hold the answer that long: a client that gives
        up or dies meanwhile never learns that Marketo acted),
        ``drop_connection`` (close the connection without an answer), ``after_processing``
        (with ``drop_connection``: do the work first, then drop), ``method``, ``skip`` (let that
        many matching calls through first).
        """
        with self._lock:
            return self.log.inject(Fault(path=path, count=count, **kwargs))

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            return self.log.take(method, path)

    def record(
        self,
        method: str,
        path: str,
        query: Iterable[tuple[str, str]] | dict[str, str],
        body_keys: Iterable[str],
        bearer: bool,
    ) -> CallRecord:
        pairs = list(query.items()) if isinstance(query, dict) else list(query)
        with self._lock:
            return self.log.record(method, path, pairs, body_keys, bearer, self.clock.now())

    def calls_to(self, pattern: str, method: str | None = None) -> list[CallRecord]:
        with self._lock:
            return self.log.calls_to(pattern, method)

    # ---- the import queue ---------------------------------------------------------------------

    def fail_next_job(self, message: str = "Failed to import: internal error") -> None:
        """Make the next created job end ``Failed`` with ``message``."""
        with self._lock:
            self.queue.fail_next.append(message)

    def fail_job(self, batch_id: int, message: str = "Failed to import: internal error") -> None:
        """Make a queued or importing job end ``Failed`` with ``message`` when it finishes."""
        with self._lock:
            self.queue.get(batch_id).fail_message = message

    def hold_next_jobs(self, count: int = 1) -> None:
        """Keep the next ``count`` created jobs in the queue until ``release`` is called."""
        with self._lock:
            self.queue.hold_next += count

    def release(self, batch_id: int | None = None) -> None:
        """Let held jobs (one, or all) move on."""
        with self._lock:
            self.queue.advance(self.clock.now())  # what happened before the release stands
            self.queue.release(self.clock.now(), batch_id)

    def create_import(
        self, target: ImportTarget, params: dict[str, str], content: bytes, filename: str
    ) -> Job:
        """Queue an import of ``content`` with the create call's query parameters ``params``."""
        with self._lock:
            checked = check_query(params.items(), spec.CREATE_PARAMETERS[target.object_type])
            file_format = self._check_create(target, checked)
            return self.queue.create(target, file_format, checked, content, filename, self.clock.now())

    def _check_create(self, target: ImportTarget, params: dict[str, str]) -> FileFormat:
        """What the parameters mean in this instance: a format, a lookup field, a partition, a
        program member status and a custom object that exist."""
        file_format = FileFormat.parse(params["format"])
        if file_format is None:
            raise SandboxError("1003", f"Invalid format '{params['format']}', must be one of csv, tsv, ssv")
        kind = target.object_type
        if kind is ObjectType.LEADS:
            lookup = params.get("lookupField")
            if lookup is not None:
                self.catalog.check_lookup_field(lookup)
            partition = params.get("partitionName")
            if partition is not None and partition not in self.config.partitions:
                raise SandboxError("1008", f"Partition '{partition}' does not exist")
        elif kind is ObjectType.PROGRAM_MEMBERS:
            status = params["programMemberStatus"]
            if status not in PROGRAM_MEMBER_STATUSES:
                raise SandboxError("1003", f"Invalid program member status '{status}'")
        else:
            self.catalog.custom_object(target.custom_object_name)
        return file_format

    def advance(self) -> None:
        """Move jobs along the queue up to the clock's now, event by event, in FIFO order."""
        with self._lock:
            self.queue.advance(self.clock.now())

    def next_event_in(self) -> float | None:
        """Seconds until the queue next changes on its own, or None when nothing will."""
        with self._lock:
            return self.queue.next_event_in(self.clock.now())

    def run_until_idle(self, max_steps: int = 10_000) -> None:
        """Advance the clock until every job that is not held has finished."""
        for _ in range(max_steps):
            wait = self.next_event_in()
            if wait is None:
                self.settle()
                return
            self.clock.advance(wait)
            self.advance()
        raise RuntimeError("the sandbox's queue did not settle")

    def job_for(self, object_type: str, batch_id: int, custom_object_name: str | None = None) -> Job:
        """A job by batch id, as seen through one object type's endpoints."""
        kind = ObjectType.parse(object_type)
        self.catch_up()
        with self._lock:
            job = self.queue.get(batch_id)
            if job.target.object_type is not kind or job.target.custom_object_name != custom_object_name:
                raise SandboxError("1003", f"Batch id {batch_id} not found")
            return job

    def status(
        self, object_type: str, batch_id: int, custom_object_name: str | None = None
    ) -> dict[str, Any]:
        return self.job_for(object_type, batch_id, custom_object_name).entry()

    def result_file(
        self, object_type: str, batch_id: int, kind: str, custom_object_name: str | None = None
    ) -> bytes | None:
        """A finished job's failures or warnings file; None when there is none."""
        job = self.job_for(object_type, batch_id, custom_object_name)
        if job.status != COMPLETE:
            return None
        data = job.failures_file if kind == "failures" else job.warnings_file
        return data or None

    def iter_jobs(self) -> Iterator[Job]:
        self.catch_up()
        with self._lock:
            return iter(list(self.queue.jobs.values()))

    # ---- finishing jobs: row checks -----------------------------------------------------------

    def catch_up(self) -> None:
        """Move the queue to the clock's now and check the rows of every job that finished."""
        self.advance()
        self.settle()

    def settle(self) -> None:
        """Check the rows of jobs that have finished importing and publish their outcome.

        The checking (decoding, parsing, validating) runs without the state lock, so other calls
        are answered meanwhile; storing the rows takes it briefly. One settle runs at a time, in
        batch order, so rows land in the order Marketo would import them.
        """
        with self._settle_lock:
            with self._lock:
                pending = sorted((j for j in self.queue.jobs.values() if j.pending), key=lambda j: j.batch_id)
            for job in pending:
                outcome = self._evaluate(job)
                with self._lock:
                    self._apply(job, outcome)

    def _evaluate(self, job: Job) -> Outcome:
        if job.fail_message:
            return Outcome(fail_message=job.fail_message)
        try:
            return self._check_rows(job)
        except FileUnreadable as exc:
            return Outcome(fail_message=str(exc))

    def _check_rows(self, job: Job) -> Outcome:
        return check_rows(job.content, job.file_format.delimiter, self._row_rules(job))

    def _row_rules(self, job: Job) -> JobRowRules:
        target = job.target
        kind, name = target.object_type, target.custom_object_name
        return JobRowRules(
            object_type=kind,
            fields=self.catalog.fields(kind, name),
            required=spec.required_fields(
                kind, job.params.get("lookupField"), self.catalog.dedupe_fields(kind, name)
            ),
            lead_exists=self.store.exists,
        )

    def _apply(self, job: Job, outcome: Outcome) -> None:
        job.pending = False
        job.content = b""  # not needed once its rows are read: a long-running sandbox stays small
        if outcome.fail_message is not None:
            job.status, job.fail_message = FAILED, outcome.fail_message
            job.processed = job.failed = job.warned = 0
            return
        kind = job.target.object_type
        lookup = None  # the field a lead is found by: leads' lookup field, program members' email
        if kind is not ObjectType.CUSTOM_OBJECTS:
            (lookup,) = spec.required_fields(kind, job.params.get("lookupField"))
        self.store.store(job.target, job.batch_id, outcome.rows, lookup, job.params)
        delimiter = job.file_format.delimiter
        job.processed, job.failed, job.warned = (
            len(outcome.rows),
            len(outcome.failures),
            len(outcome.warnings),
        )
        job.failures_file = failures_file(outcome, delimiter)
        job.warnings_file = warnings_file(outcome, delimiter)
        job.status = COMPLETE

    def imported_rows(self, object_type: str, custom_object_name: str | None = None) -> list[dict[str, str]]:
        """Every row imported so far for an object (leads, program members, one custom object)."""
        key = ImportTarget(ObjectType.parse(object_type), custom_object_name=custom_object_name).key
        self.catch_up()
        with self._lock:
            return self.store.rows(key)

    def imported_page(
        self, target: ImportTarget, offset: int, limit: int, batch_id: int | None = None
    ) -> tuple[int, list[ImportedRow]]:
        """``(total, rows)``: the rows imported for ``target`` (program members: of its program, or
        of every program when it names none; of one batch when ``batch_id`` is given), from
        ``offset``, at most ``limit``."""
        self.catch_up()
        with self._lock:
            return self.store.page(target.key, offset, limit, target.program_id, batch_id)

    # ---- starting over ------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget what imports and calls left: jobs (and any held, or set to fail), imported rows,
        leads, static lists, program members, the call record, injected faults and the call counts
        of the rate and daily limits. The settings, the fields and issued tokens stay, and batch
        ids keep counting up (Marketo never reuses one)."""
        with self._settle_lock, self._lock:
            self.queue = ImportQueue(self.config, batch_ids=self.queue.batch_ids)
            self.store = LeadStore(self.catalog.lead_field_names)
            self.log = CallLog()
            self.limits.reset()

    # ---- custom objects and describe ----------------------------------------------------------

    def register_custom_object(self, obj: CustomObjectType) -> None:
        with self._lock:
            self.catalog.register(obj)

    def describe(self, object_type: str, custom_object_name: str | None = None) -> dict[str, Any]:
        with self._lock:
            return self.catalog.describe(ObjectType.parse(object_type), custom_object_name)


__all__ = ["MarketoBackend"]
