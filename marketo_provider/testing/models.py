"""The sandbox's state and rules: tokens, limits, the import queue, row checks and result files.

Nothing here speaks HTTP; ``app.py`` turns requests into calls on :class:`MarketoBackend`, so the
rules can be tested directly and driven by hand (a manual clock, held or failed jobs).
"""

from __future__ import annotations

import csv
import fnmatch
import io
import itertools
import math
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from marketo_provider import api
from marketo_provider.api import (
    COMPLETE,
    FAILED,
    IMPORTING,
    QUEUED,
    FileFormat,
    ImportTarget,
    MarketoAPIError,
    ObjectType,
)
from marketo_provider.testing.catalog import (
    CAR_OBJECT,
    LEAD_FIELDS,
    LEAD_LOOKUP_FIELDS,
    LEAD_SEARCHABLE_FIELDS,
    PROGRAM_MEMBER_DEDUPE_FIELDS,
    PROGRAM_MEMBER_FIELDS,
    PROGRAM_MEMBER_STATUSES,
    CustomObjectType,
    FieldSpec,
    fields_for,
    value_error,
    value_warning,
)


class SandboxError(MarketoAPIError):
    """An error the sandbox answers in Marketo's envelope (HTTP 200, ``success: false``)."""

    def __init__(self, code: str, message: str | None = None) -> None:
        super().__init__(code, message or api.ERROR_MESSAGES.get(code, "Error"), hint="-")


class HTTPError(Exception):
    """An answer outside Marketo's envelope: a plain HTTP status (401 identity, 413, 404 file)."""

    def __init__(self, status: int, body: dict[str, Any] | str = "") -> None:
        super().__init__(status)
        self.status = status
        self.body = body


class Clock:
    """The sandbox's time. Real time by default; ``manual=True`` stands still until advanced.

    ``advance`` works in both modes, so a test can skip ahead without sleeping.
    """

    def __init__(self, manual: bool = False) -> None:
        self.manual = manual
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._offset if self.manual else time.monotonic() + self._offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += seconds


@dataclass
class Fault:
    """A fault the next ``count`` matching calls answer with instead of (or after) the real answer."""

    path: str
    count: int = 1
    code: str | None = None
    message: str | None = None
    http_status: int | None = None
    delay: float = 0.0
    drop_connection: bool = False
    after_processing: bool = False
    method: str | None = None
    skip: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return path == self.path or fnmatch.fnmatchcase(path, self.path)


@dataclass
class CallRecord:
    """One call the sandbox received, with every secret removed."""

    method: str
    path: str
    query: dict[str, str]
    secrets_in_url: list[str]
    secrets_in_body: list[str]
    bearer: bool
    at: float
    status: int = 200
    error_code: str | None = None
    batch_id: int | None = None
    upload_bytes: int | None = None
    content_type: str | None = None
    fault: str | None = None


@dataclass
class ImportedRow:
    batch_id: int
    row: dict[str, str]


@dataclass
class Job:
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
    pending: bool = False  # finished importing, rows not yet checked
    processed: int | None = None
    failed: int | None = None
    warned: int | None = None
    failures_file: bytes = b""
    warnings_file: bytes = b""

    def entry(self) -> dict[str, Any]:
        """The job as the status call shows it."""
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
        return {
            k: v
            for k, v in self.entry().items()
            if k in ("batchId", "importId", "operation", "status", "objectApiName")
        }

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


@dataclass
class SandboxConfig:
    """The sandbox's knobs. Defaults follow Marketo's documented limits."""

    client_id: str = "sandbox-client-id"
    client_secret: str = "sandbox-client-secret"
    token_life: float = api.TOKEN_LIFE_SECONDS
    queued_seconds: float = 0.2
    import_seconds: float = 0.5
    max_importing: int = api.MAX_IMPORTING_JOBS
    max_queued: int = api.MAX_QUEUED_JOBS
    max_file_bytes: int = api.MAX_IMPORT_FILE_BYTES
    rate_limit: bool = True
    rate_limit_calls: int = api.RATE_LIMIT_CALLS
    rate_limit_window: float = api.RATE_LIMIT_WINDOW_SECONDS
    concurrency_limit: bool = True
    max_concurrent: int = api.CONCURRENCY_LIMIT
    daily_quota: int | None = None
    partitions: tuple[str, ...] = ("Default",)
    scope: str = "apiuser@sandbox.marketo"


_SENSITIVE = ("access_token", "client_secret")


class MarketoBackend:
    """The state of one sandboxed Marketo instance.

    Thread-safe: the HTTP server calls it from its event loop while tests drive it from theirs.
    """

    def __init__(self, config: SandboxConfig | None = None, clock: Clock | None = None) -> None:
        self.config = config or SandboxConfig()
        self.clock = clock or Clock()
        self._lock = threading.RLock()
        self._settle_lock = threading.Lock()
        self._tokens: dict[str, float] = {}
        self._current_token: str | None = None
        self._batch_ids = itertools.count(1001)
        self.jobs: dict[int, Job] = {}
        self._queue: list[int] = []  # batch ids, FIFO, of Queued and Importing jobs
        self._last_event = 0.0
        self._fail_next: deque[str] = deque()
        self._hold_next = 0
        self.faults: list[Fault] = []
        self.calls: list[CallRecord] = []
        self._call_times: deque[float] = deque()
        self._calls_today = 0
        self._in_flight = 0
        self.custom_objects: dict[str, CustomObjectType] = {CAR_OBJECT.api_name: CAR_OBJECT}
        self.imported: dict[str, list[ImportedRow]] = {}
        self.leads: dict[int, dict[str, str]] = {}
        self._lead_index: dict[str, dict[str, int]] = {}  # field -> value -> lead id
        self._lead_ids = itertools.count(1)
        self.static_lists: dict[int, set[int]] = {}
        self.program_members: dict[int, dict[int, str]] = {}

    # ---- tokens ---------------------------------------------------------------------------

    def issue_token(
        self, client_id: str | None, client_secret: str | None, grant_type: str | None
    ) -> dict[str, Any]:
        if grant_type != "client_credentials":
            raise HTTPError(
                400,
                {"error": "invalid_request", "error_description": "grant_type must be client_credentials"},
            )
        if not (
            client_id
            and client_secret
            and secrets.compare_digest(client_id, self.config.client_id)
            and secrets.compare_digest(client_secret, self.config.client_secret)
        ):
            raise HTTPError(401, {"error": "invalid_client", "error_description": "Bad client credentials"})
        with self._lock:
            now = self.clock.now()
            token = self._current_token
            if token is None or self._tokens.get(token, 0.0) <= now:
                token = f"{uuid.uuid4()}:ab"
                self._tokens[token] = now + self.config.token_life
                self._current_token = token
            remaining = max(0, math.floor(self._tokens[token] - now))
        return {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": remaining,
            "scope": self.config.scope,
        }

    def check_token(self, token: str | None) -> None:
        if not token:
            raise SandboxError("601", "Access token invalid")
        with self._lock:
            expires = self._tokens.get(token)
            if expires is None:
                raise SandboxError("601", "Access token invalid")
            if expires <= self.clock.now():
                raise SandboxError("602", "Access token expired")

    def expire_tokens(self) -> None:
        """Make every issued token expire now (the next call gets 602)."""
        with self._lock:
            now = self.clock.now()
            for token in self._tokens:
                self._tokens[token] = now

    # ---- limits -----------------------------------------------------------------------------

    def enter_call(self) -> None:
        """Count a REST call against the concurrency, rate and daily limits."""
        with self._lock:
            if self.config.concurrency_limit and self._in_flight >= self.config.max_concurrent:
                raise SandboxError("615")
            now = self.clock.now()
            window = self._call_times
            while window and window[0] <= now - self.config.rate_limit_window:
                window.popleft()
            if self.config.rate_limit and len(window) >= self.config.rate_limit_calls:
                raise SandboxError(
                    "606",
                    f"Max rate limit '{self.config.rate_limit_calls}' exceeded with in "
                    f"'{self.config.rate_limit_window:g}' secs",
                )
            if self.config.daily_quota is not None and self._calls_today >= self.config.daily_quota:
                raise SandboxError("607", "Daily quota reached")
            window.append(now)
            self._calls_today += 1
            self._in_flight += 1

    def exit_call(self) -> None:
        with self._lock:
            self._in_flight -= 1

    # ---- faults and records ---------------------------------------------------------------

    def inject_fault(self, path: str, *, count: int = 1, **kwargs: Any) -> Fault:
        """Make the next ``count`` calls whose path matches ``path`` (a glob) misbehave.

        Keyword arguments: ``code`` (a Marketo error code, answered in the envelope), ``message``,
        ``http_status`` (a bare HTTP status), ``delay`` (seconds before answering),
        ``drop_connection`` (close the connection without an answer), ``after_processing``
        (with ``drop_connection``: do the work first, then drop), ``method``, ``skip`` (let that
        many matching calls through first).
        """
        fault = Fault(path=path, count=count, **kwargs)
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self.faults.append(fault)
        return fault

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.count > 0 and fault.matches(method, path):
                    if fault.skip > 0:
                        fault.skip -= 1
                        continue
                    fault.count -= 1
                    if fault.count == 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def record(
        self, method: str, path: str, query: dict[str, str], form_keys: set[str], bearer: bool
    ) -> CallRecord:
        safe_query = {k: ("***" if k in _SENSITIVE else v) for k, v in query.items()}
        rec = CallRecord(
            method=method,
            path=path,
            query=safe_query,
            secrets_in_url=sorted(k for k in query if k in _SENSITIVE),
            secrets_in_body=sorted(k for k in form_keys if k in _SENSITIVE),
            bearer=bearer,
            at=self.clock.now(),
        )
        with self._lock:
            self.calls.append(rec)
        return rec

    def calls_to(self, pattern: str, method: str | None = None) -> list[CallRecord]:
        with self._lock:
            return [
                c
                for c in self.calls
                if fnmatch.fnmatchcase(c.path, pattern) and (method is None or c.method == method.upper())
            ]

    # ---- the import queue -----------------------------------------------------------------

    def fail_next_job(self, message: str = "Failed to import: internal error") -> None:
        """Make the next created job end ``Failed`` with ``message``."""
        with self._lock:
            self._fail_next.append(message)

    def fail_job(self, batch_id: int, message: str = "Failed to import: internal error") -> None:
        """Make a queued or importing job end ``Failed`` with ``message`` when it finishes."""
        with self._lock:
            self._job(batch_id).fail_message = message

    def hold_next_jobs(self, count: int = 1) -> None:
        """Keep the next ``count`` created jobs in the queue until ``release`` is called."""
        with self._lock:
            self._hold_next += count

    def release(self, batch_id: int | None = None) -> None:
        """Let held jobs (one, or all) move on."""
        with self._lock:
            for job in self.jobs.values():
                if batch_id is None or job.batch_id == batch_id:
                    job.hold = False

    def create_import(
        self,
        target: ImportTarget,
        params: dict[str, str],
        content: bytes,
        filename: str,
    ) -> Job:
        with self._lock:
            self._validate_create(target, params)
            self.advance()
            if len(self._queue) >= self.config.max_queued:
                raise SandboxError("1016", "Too many imports")
            job = Job(
                batch_id=next(self._batch_ids),
                target=target,
                file_format=FileFormat.parse(params["format"]),
                params=dict(params),
                content=content,
                filename=filename,
                created_at=self.clock.now(),
                size=len(content),
            )
            if self._fail_next:
                job.fail_message = self._fail_next.popleft()
            if self._hold_next:
                self._hold_next -= 1
                job.hold = True
            self.jobs[job.batch_id] = job
            self._queue.append(job.batch_id)
            return job

    def _validate_create(self, target: ImportTarget, params: dict[str, str]) -> None:
        fmt = params.get("format")
        if not fmt:
            raise SandboxError("1003", "format is required")
        if fmt.lower() not in {f.value for f in FileFormat}:
            raise SandboxError("1003", f"Invalid format '{fmt}', must be one of csv, tsv, ssv")
        if target.object_type is ObjectType.LEADS:
            lookup = params.get("lookupField")
            if lookup is not None and lookup not in {f.name for f in LEAD_FIELDS}:
                raise SandboxError("1006", f"Lookup field '{lookup}' not found")
            if lookup is not None and lookup not in LEAD_LOOKUP_FIELDS:
                raise SandboxError("1011", f"Field '{lookup}' cannot be used as lookup field")
            if "listId" in params and not params["listId"].isdigit():
                raise SandboxError("1003", f"Invalid listId '{params['listId']}'")
            partition = params.get("partitionName")
            if partition is not None and partition not in self.config.partitions:
                raise SandboxError("1008", f"Partition '{partition}' does not exist")
        elif target.object_type is ObjectType.PROGRAM_MEMBERS:
            status = params.get("programMemberStatus")
            if not status:
                raise SandboxError("1003", "programMemberStatus is required")
            if status not in PROGRAM_MEMBER_STATUSES:
                raise SandboxError("1003", f"Invalid program member status '{status}'")
        elif target.custom_object_name not in self.custom_objects:
            raise SandboxError("1003", f"Custom object '{target.custom_object_name}' not found")

    def advance(self) -> None:
        """Move jobs along the queue up to the clock's now, event by event, in FIFO order."""
        with self._lock:
            now = self.clock.now()
            while True:
                importing = [self.jobs[b] for b in self._queue if self.jobs[b].status == IMPORTING]
                waiting = [self.jobs[b] for b in self._queue if self.jobs[b].status == QUEUED]
                finish_at, finishing = math.inf, None
                for job in importing:
                    if not job.hold and job.started_at is not None:
                        at = job.started_at + self.config.import_seconds
                        if at < finish_at:
                            finish_at, finishing = at, job
                start_at = math.inf
                head = waiting[0] if waiting else None
                if head is not None and not head.hold and len(importing) < self.config.max_importing:
                    start_at = max(head.created_at + self.config.queued_seconds, self._last_event)
                at = min(finish_at, start_at)
                if at > now:
                    return
                self._last_event = at
                if finishing is not None and finish_at <= start_at:
                    self._finish(finishing, at)
                elif head is not None:
                    head.status = IMPORTING
                    head.started_at = at

    def next_event_in(self) -> float | None:
        """Seconds until the queue next changes on its own, or None when nothing will."""
        with self._lock:
            self.advance()
            now = self.clock.now()
            times = []
            importing = [self.jobs[b] for b in self._queue if self.jobs[b].status == IMPORTING]
            for job in importing:
                if not job.hold and job.started_at is not None:
                    times.append(job.started_at + self.config.import_seconds)
            waiting = [self.jobs[b] for b in self._queue if self.jobs[b].status == QUEUED]
            if waiting and not waiting[0].hold and len(importing) < self.config.max_importing:
                times.append(max(waiting[0].created_at + self.config.queued_seconds, self._last_event))
            return max(0.0, min(times) - now) if times else None

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

    def _job(self, batch_id: int) -> Job:
        job = self.jobs.get(int(batch_id))
        if job is None:
            raise SandboxError("1003", f"Batch id {batch_id} not found")
        return job

    def job_for(self, object_type: ObjectType, batch_id: int, custom_object_name: str | None = None) -> Job:
        """A job by batch id, as seen through one object type's endpoints."""
        self.catch_up()
        with self._lock:
            job = self._job(batch_id)
            if (
                job.target.object_type is not object_type
                or job.target.custom_object_name != custom_object_name
            ):
                raise SandboxError("1003", f"Batch id {batch_id} not found")
            return job

    def status(
        self, object_type: ObjectType, batch_id: int, custom_object_name: str | None = None
    ) -> dict[str, Any]:
        return self.job_for(object_type, batch_id, custom_object_name).entry()

    def result_file(
        self, object_type: ObjectType, batch_id: int, kind: str, custom_object_name: str | None = None
    ) -> bytes | None:
        """A finished job's failures or warnings file; None when there is none."""
        job = self.job_for(object_type, batch_id, custom_object_name)
        if job.status != COMPLETE:
            return None
        data = job.failures_file if kind == "failures" else job.warnings_file
        return data or None

    # ---- row checks -------------------------------------------------------------------------

    def _finish(self, job: Job, at: float) -> None:
        """The job leaves the queue; its rows are checked by :meth:`settle`, outside the state lock."""
        job.finished_at = at
        self._queue.remove(job.batch_id)
        job.pending = True

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
                pending = sorted((j for j in self.jobs.values() if j.pending), key=lambda j: j.batch_id)
            for job in pending:
                outcome = self._evaluate(job)
                with self._lock:
                    self._apply(job, outcome)

    def _evaluate(self, job: Job) -> _Outcome:
        if job.fail_message:
            return _Outcome(fail_message=job.fail_message)
        try:
            return self._check_rows(job)
        except _FileUnreadable as exc:
            return _Outcome(fail_message=str(exc))

    def _apply(self, job: Job, outcome: _Outcome) -> None:
        job.pending = False
        job.content = b""  # not needed once its rows are read: a long-running sandbox stays small
        if outcome.fail_message is not None:
            job.status, job.fail_message = FAILED, outcome.fail_message
            job.processed = job.failed = job.warned = 0
            return
        self._store(job, outcome.rows)
        delim = job.file_format.delimiter
        job.processed, job.failed, job.warned = (
            len(outcome.rows),
            len(outcome.failures),
            len(outcome.warnings),
        )
        if outcome.failures:
            job.failures_file = _write_result(
                outcome.header, api.FAILURE_REASON_COLUMN, outcome.failures, delim
            )
        if outcome.warnings:
            job.warnings_file = _write_result(
                outcome.header, api.WARNING_REASON_COLUMN, outcome.warnings, delim
            )
        job.status = COMPLETE

    def _check_rows(self, job: Job) -> _Outcome:
        delim = job.file_format.delimiter
        try:
            text = job.content.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise _FileUnreadable(f"Failed to import: file is not UTF-8 (byte {exc.start})") from None
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim, strict=True)
        try:
            rows = list(reader)
        except csv.Error as exc:
            raise _FileUnreadable(f"Failed to import: malformed file ({exc})") from None
        if not rows:
            raise _FileUnreadable("Failed to import: file is empty")
        header = rows[0]
        target = job.target
        custom = self.custom_objects.get(target.custom_object_name or "")
        known = fields_for(target.object_type, custom)
        unknown = [name for name in header if name not in known]
        needed = self._required_fields(job, custom)
        outcome = _Outcome(header=header)
        for values in rows[1:]:
            if values == []:
                continue
            reason, warning, row = self._check_row(header, values, known, unknown, needed, target)
            if reason:
                outcome.failures.append([*values, reason])
                continue
            outcome.rows.append(row)
            if warning:
                outcome.warnings.append([*values, warning])
        return outcome

    @staticmethod
    def _required_fields(job: Job, custom: CustomObjectType | None = None) -> tuple[str, ...]:
        return api.required_columns(
            job.target.object_type,
            lookup_field=job.params.get("lookupField"),
            dedupe_fields=custom.dedupe_fields if custom else (),
        )

    def _check_row(
        self,
        header: list[str],
        values: list[str],
        known: dict[str, FieldSpec],
        unknown: list[str],
        needed: tuple[str, ...],
        target: ImportTarget,
    ) -> tuple[str | None, str | None, dict[str, str]]:
        if len(values) != len(header):
            return f"Invalid row: {len(values)} values for {len(header)} columns", None, {}
        row = dict(zip(header, values, strict=True))
        kind = target.object_type
        if any(not row.get(name) for name in needed):
            if kind is ObjectType.CUSTOM_OBJECTS:
                return "missing.dedupe.fields", None, row
            label = "Lookup field" if kind is ObjectType.LEADS else "Field"
            return f"{label} '{needed[0]}' is required and has no value", None, row
        if unknown:
            return f"Field not found: {', '.join(unknown)}", None, row
        for name, value in row.items():
            reason = value_error(known[name], value)
            if reason:
                return reason, None, row
        if kind is ObjectType.LEADS and needed[0] == "id" and int(row["id"]) not in self.leads:
            return f"Lead not found for id {row['id']}", None, row
        warning = next((w for name, value in row.items() if (w := value_warning(known[name], value))), None)
        return None, warning, row

    def _store(self, job: Job, rows: list[dict[str, str]]) -> None:
        target = job.target
        key = object_key(target.object_type, target.custom_object_name)
        self.imported.setdefault(key, []).extend(ImportedRow(job.batch_id, row) for row in rows)
        if target.object_type is ObjectType.CUSTOM_OBJECTS:
            return
        (lookup,) = self._required_fields(job)  # leads: the lookup field; program members: email
        for row in rows:
            lead_id = self._upsert_lead(lookup, row)
            if target.object_type is ObjectType.LEADS and "listId" in job.params:
                self.static_lists.setdefault(int(job.params["listId"]), set()).add(lead_id)
            if target.object_type is ObjectType.PROGRAM_MEMBERS and target.program_id is not None:
                self.program_members.setdefault(target.program_id, {})[lead_id] = job.params[
                    "programMemberStatus"
                ]

    def _upsert_lead(self, lookup: str, row: dict[str, str]) -> int:
        lead_fields = {f.name for f in LEAD_FIELDS}
        values = {k: v for k, v in row.items() if k in lead_fields and k != "id"}
        if lookup == "id":
            lead_id = int(row["id"])
        else:
            index = self._lead_index.get(lookup)
            if index is None:  # first lookup on this field: index the leads once
                index = {lead[lookup]: i for i, lead in self.leads.items() if lead.get(lookup)}
                self._lead_index[lookup] = index
            lead_id = index.get(row[lookup], 0)
            if not lead_id:
                lead_id = next(self._lead_ids)
                self.leads[lead_id] = {}
        lead = self.leads[lead_id]
        for field_name, index in self._lead_index.items():
            old, new = lead.get(field_name), values.get(field_name)
            if new is not None and new != old:
                if old:
                    index.pop(old, None)
                if new:
                    index[new] = lead_id
        lead.update(values)
        return lead_id

    def imported_rows(
        self, object_type: str | ObjectType, custom_object_name: str | None = None
    ) -> list[dict[str, str]]:
        """Every row imported so far for an object (leads, program members, one custom object)."""
        key = object_key(ObjectType.parse(object_type), custom_object_name)
        self.catch_up()
        with self._lock:
            return [r.row for r in self.imported.get(key, [])]

    def iter_jobs(self) -> Iterator[Job]:
        self.catch_up()
        with self._lock:
            return iter(list(self.jobs.values()))

    # ---- custom objects and describe -------------------------------------------------------

    def register_custom_object(self, obj: CustomObjectType) -> None:
        with self._lock:
            self.custom_objects[obj.api_name] = obj

    def describe(self, target_type: ObjectType, custom_object_name: str | None = None) -> dict[str, Any]:
        stamp = "2024-01-15T10:00:00Z"
        if target_type is ObjectType.LEADS:
            return {
                "name": "API Lead",
                "searchableFields": [list(f) for f in LEAD_SEARCHABLE_FIELDS],
                "fields": [f.describe() for f in LEAD_FIELDS],
            }
        if target_type is ObjectType.PROGRAM_MEMBERS:
            return {
                "name": "API Program Member",
                "description": "API Program Member Map",
                "createdAt": stamp,
                "updatedAt": stamp,
                "dedupeFields": list(PROGRAM_MEMBER_DEDUPE_FIELDS),
                "searchableFields": [list(PROGRAM_MEMBER_DEDUPE_FIELDS), ["leadId"]],
                "fields": [f.describe() for f in PROGRAM_MEMBER_FIELDS],
            }
        obj = self.custom_objects.get(custom_object_name or "")
        if obj is None:
            raise SandboxError("1003", f"Custom object '{custom_object_name}' not found")
        return {
            "apiName": obj.api_name,
            "displayName": obj.display_name,
            "pluralName": obj.plural_name or obj.display_name + "s",
            "description": obj.description,
            "createdAt": stamp,
            "updatedAt": stamp,
            "idField": obj.id_field,
            "dedupeFields": list(obj.dedupe_fields),
            "searchableFields": [list(obj.dedupe_fields), [obj.id_field]],
            "relationships": [dict(r) for r in obj.relationships],
            "fields": [f.describe() for f in obj.fields],
            "state": "approved",
            "status": "approved",
            "version": "approved",
        }


class _FileUnreadable(Exception):
    pass


@dataclass
class _Outcome:
    """What checking a job's rows found."""

    fail_message: str | None = None
    header: list[str] = field(default_factory=list)
    rows: list[dict[str, str]] = field(default_factory=list)
    failures: list[list[str]] = field(default_factory=list)
    warnings: list[list[str]] = field(default_factory=list)


def object_key(object_type: ObjectType, custom_object_name: str | None = None) -> str:
    if object_type is ObjectType.CUSTOM_OBJECTS:
        return f"custom_objects/{custom_object_name}"
    return object_type.value


def _write_result(header: list[str], reason_column: str, rows: list[list[str]], delimiter: str) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow([*header, reason_column])
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


__all__ = [
    "CallRecord",
    "Clock",
    "Fault",
    "HTTPError",
    "Job",
    "MarketoBackend",
    "SandboxConfig",
    "SandboxError",
]
