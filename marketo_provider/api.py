"""What this project knows about Marketo's bulk import API, with no I/O.

Object types, their paths and parameters (:class:`ImportSpec`: what one import sends), how a call
is made (:func:`call_flow`: token, renewal on 601/602, what may be resent), how an answer is read
(errors arrive in HTTP 200 bodies), and what to do about every error code. The hook's sync and
async transports only send what these functions describe, so each rule is written once.
"""

from __future__ import annotations

import enum
import random
import re
import threading
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

T = TypeVar("T")

# Marketo takes import files *under* 10 MB (HTTP 413 above). 10,000,000 bytes is below both
# readings of "10 MB".
MAX_IMPORT_FILE_BYTES = 10_000_000

# Per instance: 2 jobs importing at once, 10 in the queue including those (error 1016 above).
MAX_IMPORTING_JOBS = 2
MAX_QUEUED_JOBS = 10

# 100 calls in any 20 second window (606), for the whole instance. A client process keeps its own
# calls to a share of that, so the instance's other integrations keep the rest.
RATE_LIMIT_WINDOW_SECONDS = 20.0
CLIENT_CALLS_PER_WINDOW = 80

# A new token lives one hour; renew a little before it runs out so a request never carries a token
# that expires on the way.
TOKEN_LIFE_SECONDS = 3600
TOKEN_RENEW_MARGIN_SECONDS = 60

# An upload may take a while to be read on Marketo's side; never give it less than this to answer.
UPLOAD_READ_TIMEOUT_FLOOR_SECONDS = 300.0
# Connecting takes at most this long (a longer wait means the host is unreachable).
CONNECT_TIMEOUT_SECONDS = 10.0

FAILURE_REASON_COLUMN = "Import Failure Reason"
WARNING_REASON_COLUMN = "Import Warning Reason"
RESULT_KINDS = ("failures", "warnings")


class ObjectType(str, enum.Enum):
    """The three kinds of record the bulk import API loads."""

    LEADS = "leads"
    PROGRAM_MEMBERS = "program_members"
    CUSTOM_OBJECTS = "custom_objects"

    @classmethod
    def parse(cls, value: str | ObjectType) -> ObjectType:
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(repr(o.value) for o in cls)
            raise MarketoValueError(f"object_type {value!r} is not one of {choices}") from None

    @property
    def processed_count_field(self) -> str:
        """Name of the status field that counts processed rows."""
        return "numOfObjectsProcessed" if self is ObjectType.CUSTOM_OBJECTS else "numOfLeadsProcessed"

    @property
    def has_result_file_when_empty(self) -> bool:
        """Leads and program members answer an empty failures/warnings file; custom objects 404."""
        return self is not ObjectType.CUSTOM_OBJECTS


class FileFormat(str, enum.Enum):
    """Import file formats: comma, tab or semicolon separated values."""

    CSV = "csv"
    TSV = "tsv"
    SSV = "ssv"

    @classmethod
    def parse(cls, value: str | FileFormat) -> FileFormat:
        try:
            return cls(str(value.value if isinstance(value, FileFormat) else value).lower())
        except ValueError:
            raise MarketoValueError(
                f"file_format {value!r} is not one of 'csv' (comma), 'tsv' (tab) or 'ssv' (semicolon)"
            ) from None

    @property
    def delimiter(self) -> str:
        return {"csv": ",", "tsv": "\t", "ssv": ";"}[self.value]

    @property
    def content_type(self) -> str:
        return {"csv": "text/csv", "tsv": "text/tab-separated-values", "ssv": "text/plain"}[self.value]

    @property
    def delimiter_name(self) -> str:
        return {"csv": "comma", "tsv": "tab", "ssv": "semicolon"}[self.value]


QUEUED = "Queued"
IMPORTING = "Importing"
COMPLETE = "Complete"
FAILED = "Failed"
DONE_STATUSES = frozenset({COMPLETE, FAILED})


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class MarketoError(Exception):
    """Base class of every error this provider raises about Marketo."""

    #: Whether trying again (an Airflow task retry) cannot help: the input or the set-up is wrong.
    permanent = False


class MarketoValueError(MarketoError, ValueError):
    """The arguments or the input are wrong; nothing was sent to Marketo."""

    permanent = True


class MarketoConnectionConfigError(MarketoValueError):
    """The Airflow connection lacks something the hook needs, or has a value it cannot use."""


class MarketoAuthError(MarketoError):
    """The identity service refused the client id or secret (HTTP 401)."""

    permanent = True


class MarketoAPIError(MarketoError):
    """Marketo answered with an error code; ``code`` and ``message`` are Marketo's own."""

    def __init__(self, code: str, message: str, *, hint: str = "") -> None:
        self.code = str(code)
        self.message = redact(message)
        self.hint = hint or ERROR_HINTS.get(self.code, "")
        text = f"Marketo error {self.code}: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        super().__init__(text)

    @property
    def permanent(self) -> bool:  # type: ignore[override]
        if self.code.isdigit() and 500 <= int(self.code) < 600:
            return False  # a server error without Marketo's envelope: a later try may pass
        return error_action(self.code) is ErrorAction.STOP


class MarketoTransientError(MarketoAPIError):
    """A temporary failure (604, 608, 611, 713, 719, 1019, HTTP 502/503/504): retry with backoff."""


class MarketoTokenError(MarketoAPIError):
    """The access token is invalid or expired (601/602): get a new one and retry once."""


class MarketoRateLimitError(MarketoAPIError):
    """Too many calls in the 20 second window (606): wait the window out, then retry."""


class MarketoConcurrencyError(MarketoAPIError):
    """Too many calls at once (615): back off and retry."""


class MarketoQuotaExceededError(MarketoAPIError):
    """The daily API quota is spent (607); retrying before it resets (midnight US Central) is useless."""

    @property
    def permanent(self) -> bool:  # type: ignore[override]
        return False  # a task retry after the reset can succeed


class MarketoQueueFullError(MarketoAPIError):
    """Marketo's import queue is full (1016): wait until one of the queued imports finishes."""


class MarketoFileTooLargeError(MarketoAPIError):
    """The import file is above Marketo's size limit (HTTP 413)."""


class MarketoNotFoundError(MarketoAPIError):
    """HTTP 404 for a path that should exist: the connection's host is not Marketo's REST endpoint."""


class MarketoSubmitOutcomeUnknownError(MarketoError):
    """The connection broke after an upload was sent, so whether Marketo created the import is unknown.

    The upload is not sent again, because that could import the same rows twice.
    """


class TransportFailure(str, enum.Enum):
    """How far a request got when no answer came back."""

    REFUSED = "refused"  # nothing listens at the host and port: nothing was sent
    HOST_UNKNOWN = "host_unknown"  # the host name does not resolve: nothing was sent
    DNS_TEMPORARY = "dns_temporary"  # name resolution failed for now: nothing was sent
    TLS = "tls"  # the TLS handshake failed (certificate, or https to a plain-HTTP port)
    CONNECT_TIMEOUT = "connect_timeout"  # no connection in time: nothing was sent
    TIMEOUT = "timeout"  # sent, no answer in time
    BROKEN = "broken"  # the connection broke after (part of) the request was sent

    @property
    def sent(self) -> bool:
        """Whether Marketo may have received (and acted on) the request."""
        return self in (TransportFailure.TIMEOUT, TransportFailure.BROKEN)

    @property
    def permanent(self) -> bool:
        """Failures no retry fixes: a wrong host, port, scheme or certificate."""
        return self in (TransportFailure.REFUSED, TransportFailure.HOST_UNKNOWN, TransportFailure.TLS)


_TRANSPORT_HINTS = {
    TransportFailure.REFUSED: "the connection was refused: check the host and port of the Airflow connection",
    TransportFailure.HOST_UNKNOWN: "the host name does not resolve: check the host of the Airflow connection",
    TransportFailure.DNS_TEMPORARY: "the host name could not be resolved for now",
    TransportFailure.TLS: (
        "the TLS handshake failed; if the server speaks plain HTTP write http:// in the connection's host, "
        "and for a private certificate authority set the extra 'verify' to its CA bundle"
    ),
    TransportFailure.CONNECT_TIMEOUT: "no connection within the connect timeout",
    TransportFailure.TIMEOUT: "no answer within the connection's timeout",
    TransportFailure.BROKEN: "the connection broke before an answer came",
}


class MarketoTransportError(MarketoError):
    """No answer came from Marketo: ``failure`` says how far the request got. The message names the
    call and the host, never a URL with its query (the identity call's query holds the secret)."""

    def __init__(self, failure: TransportFailure, purpose: str, host: str, detail: str = "") -> None:
        self.failure = failure
        self.purpose = purpose
        self.host = host
        text = f"{purpose} at {host} failed: {_TRANSPORT_HINTS[failure]}"
        if detail:
            text += f" ({redact(detail)})"
        super().__init__(text)

    @property
    def permanent(self) -> bool:  # type: ignore[override]
        return self.failure.permanent


class ErrorAction(str, enum.Enum):
    """What a client should do about an error."""

    REFRESH_TOKEN = "refresh_token"
    RETRY = "retry"
    WAIT_RATE_WINDOW = "wait_rate_window"
    BACK_OFF = "back_off"
    WAIT_FOR_QUEUE = "wait_for_queue"
    WAIT_FOR_RESET = "wait_for_reset"
    STOP = "stop"


# Marketo's codes (strings, as Marketo sends them) and the action for each.
_TOKEN_CODES = frozenset({"601", "602"})
_TRANSIENT_CODES = frozenset({"604", "608", "611", "713", "719", "1019"})
_TRANSIENT_HTTP_STATUSES = frozenset({502, 503, 504})
# Gateway answers that can come after the request reached Marketo: retrying a read is fine, but an
# upload may already have created an import, so it is never sent again.
GATEWAY_AFTER_SEND_CODES = frozenset({"502", "504"})

ERROR_HINTS: dict[str, str] = {
    "601": "the access token is invalid; a new one is requested automatically",
    "602": "the access token expired; a new one is requested automatically",
    "603": "the API user's role lacks a permission needed for bulk import (Admin > Users & Roles)",
    "606": "more than 100 calls in 20 seconds; calls are spread out and retried",
    "607": "the daily API quota is used up; it resets at midnight US Central time",
    "610": "check the program id, custom object name or batch id",
    "615": "more than 10 calls at once from this instance's integrations; retried with backoff",
    "1003": "Marketo rejected the data or a parameter; check the values named in the message",
    "1006": "a column or lookup field is not a Marketo field; compare with the describe call",
    "1008": "the partition named in partition_name does not exist",
    "1011": "lookup_field must be a field Marketo can look leads up by (e.g. email, id)",
    "1016": "Marketo's import queue (10 jobs per instance) is full; wait for a slot",
}


def error_action(code: str | None, http_status: int | None = None) -> ErrorAction:
    """What to do about a Marketo error code or an HTTP status without a Marketo answer."""
    if code is not None:
        code = str(code)
        if code in _TOKEN_CODES:
            return ErrorAction.REFRESH_TOKEN
        if code in _TRANSIENT_CODES or code in {str(s) for s in _TRANSIENT_HTTP_STATUSES}:
            return ErrorAction.RETRY
        if code == "606":
            return ErrorAction.WAIT_RATE_WINDOW
        if code == "615":
            return ErrorAction.BACK_OFF
        if code == "1016":
            return ErrorAction.WAIT_FOR_QUEUE
        if code == "607":
            return ErrorAction.WAIT_FOR_RESET
        return ErrorAction.STOP
    if http_status in _TRANSIENT_HTTP_STATUSES:
        return ErrorAction.RETRY
    return ErrorAction.STOP


_EXCEPTION_BY_ACTION: dict[ErrorAction, type[MarketoAPIError]] = {
    ErrorAction.REFRESH_TOKEN: MarketoTokenError,
    ErrorAction.RETRY: MarketoTransientError,
    ErrorAction.WAIT_RATE_WINDOW: MarketoRateLimitError,
    ErrorAction.BACK_OFF: MarketoConcurrencyError,
    ErrorAction.WAIT_FOR_QUEUE: MarketoQueueFullError,
    ErrorAction.WAIT_FOR_RESET: MarketoQuotaExceededError,
}


def error_for(code: str, message: str) -> MarketoAPIError:
    """The named exception for a Marketo error code."""
    code = str(code)
    return _EXCEPTION_BY_ACTION.get(error_action(code), MarketoAPIError)(code, message)


def is_retryable(exc: BaseException) -> bool:
    """Whether a call that raised ``exc`` may be made again after a pause (uploads that may have
    been received never get here: :func:`call_flow` turns them into an unknown outcome)."""
    if isinstance(exc, MarketoTransportError):
        return not exc.permanent
    return isinstance(exc, MarketoTransientError | MarketoRateLimitError | MarketoConcurrencyError)


def queue_full_wait_seconds(poll_interval: float, refusals: int) -> float:
    """How long to wait before trying again after ``refusals`` 1016 answers in a row: other
    integrations' jobs fill the queue, so every try is a call they pay for too. The wait doubles
    up to eight poll intervals, with jitter so that several imports do not try in step."""
    return poll_interval * min(2 ** max(refusals - 1, 0), 8) * random.uniform(1.0, 1.5)


class CallPacer:
    """Keeps one process's calls to an instance under ``calls`` per ``window`` seconds, so its
    imports never run into 606 on their own. ``reserve`` returns how long to wait before sending;
    waiting is the caller's (a thread sleeps, a coroutine awaits)."""

    def __init__(
        self, calls: int = CLIENT_CALLS_PER_WINDOW, window: float = RATE_LIMIT_WINDOW_SECONDS
    ) -> None:
        from collections import deque

        self.calls = calls
        # A little longer than Marketo's window: calls sent exactly a window apart can arrive closer.
        self.window = window * 1.05
        self._times: deque[float] = deque()  # send times, reserved ones included, in order
        self._lock = threading.Lock()

    def reserve(self, now: float) -> float:
        with self._lock:
            times = self._times
            while times and times[0] <= now - self.window:
                times.popleft()
            at = now if len(times) < self.calls else times[-self.calls] + self.window
            at = max(at, times[-1] if times else now)
            times.append(at)
            return at - now


def retry_wait_seconds(
    exc: BaseException | None,
    attempt: int,
    *,
    base: float = 1.0,
    cap: float = 60.0,
    rate_window: float = RATE_LIMIT_WINDOW_SECONDS,
) -> float:
    """How long to wait before attempt ``attempt + 1`` (attempt counts from 1) after ``exc``.

    606 waits out the 20 second window; everything else backs off exponentially with jitter
    (half fixed, half random, so retries of many workers spread out but never bunch at zero).
    """
    if isinstance(exc, MarketoRateLimitError):
        return rate_window * (1 + random.uniform(0, 0.1))
    ceiling = min(cap, base * 2 ** (attempt - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


_REDACTIONS = (
    (re.compile(r"(?i)(bearer\s+)[^\s\"',;]+"), r"\1***"),
    (
        re.compile(
            r"(?i)((?:access_token|client_secret|client_id|password|secret)[\"']?\s*[=:]\s*[\"']?)[^\s\"'&,;]+"
        ),
        r"\1***",
    ),
    (re.compile(r"(?i)(authorization[\"']?\s*[=:]\s*[\"']?)[^\"'\n]+"), r"\1***"),
)


def redact(text: str, *secrets: str | None) -> str:
    """Text from a server or a library with anything that looks like a token or a secret replaced:
    bearer tokens, ``access_token=``/``client_secret=`` values, Authorization headers, and the
    given ``secrets`` wherever they stand."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


# --------------------------------------------------------------------------------------------
# What an import sends
# --------------------------------------------------------------------------------------------


def _quote(segment: str) -> str:
    return quote(segment, safe="")


# Path templates, in the spec's own words.
PATH_TEMPLATES: dict[tuple[ObjectType, str], str] = {
    (ObjectType.LEADS, "create"): "/bulk/v1/leads.json",
    (ObjectType.LEADS, "status"): "/bulk/v1/leads/batch/{batchId}.json",
    (ObjectType.LEADS, "failures"): "/bulk/v1/leads/batch/{batchId}/failures.json",
    (ObjectType.LEADS, "warnings"): "/bulk/v1/leads/batch/{batchId}/warnings.json",
    (ObjectType.LEADS, "describe"): "/rest/v1/leads/describe2.json",
    (ObjectType.PROGRAM_MEMBERS, "create"): "/bulk/v1/program/{programId}/members/import.json",
    (ObjectType.PROGRAM_MEMBERS, "status"): "/bulk/v1/program/members/import/{batchId}/status.json",
    (ObjectType.PROGRAM_MEMBERS, "failures"): "/bulk/v1/program/members/import/{batchId}/failures.json",
    (ObjectType.PROGRAM_MEMBERS, "warnings"): "/bulk/v1/program/members/import/{batchId}/warnings.json",
    (ObjectType.PROGRAM_MEMBERS, "describe"): "/rest/v1/programs/members/describe.json",
    (ObjectType.CUSTOM_OBJECTS, "create"): "/bulk/v1/customobjects/{apiName}/import.json",
    (ObjectType.CUSTOM_OBJECTS, "status"): "/bulk/v1/customobjects/{apiName}/import/{batchId}/status.json",
    (
        ObjectType.CUSTOM_OBJECTS,
        "failures",
    ): "/bulk/v1/customobjects/{apiName}/import/{batchId}/failures.json",
    (
        ObjectType.CUSTOM_OBJECTS,
        "warnings",
    ): "/bulk/v1/customobjects/{apiName}/import/{batchId}/warnings.json",
    (ObjectType.CUSTOM_OBJECTS, "describe"): "/rest/v1/customobjects/{customObjectName}/describe.json",
}
TOKEN_PATH = "/oauth/token"  # under the identity base URL


@dataclass(frozen=True)
class ImportTarget:
    """Where batches live: the object type and what names it (program id, custom object name).

    Status and result file paths need only the object type (and a custom object's name); creating
    a program member import also needs the program (:class:`ImportSpec` checks that).
    """

    object_type: ObjectType
    program_id: int | None = None
    custom_object_name: str | None = None

    def __post_init__(self) -> None:
        kind = self.object_type
        if kind is ObjectType.CUSTOM_OBJECTS and not self.custom_object_name:
            raise MarketoValueError(
                "custom_object_name (the object's API name, e.g. 'car_c') is required for custom object imports"
            )
        if kind is not ObjectType.PROGRAM_MEMBERS and self.program_id is not None:
            raise MarketoValueError(f"program_id only applies to program member imports, not {kind.value}")
        if kind is not ObjectType.CUSTOM_OBJECTS and self.custom_object_name:
            raise MarketoValueError(
                f"custom_object_name only applies to custom object imports, not {kind.value}"
            )

    @classmethod
    def of(
        cls,
        object_type: str | ObjectType,
        *,
        program_id: int | str | None = None,
        custom_object_name: str | None = None,
    ) -> ImportTarget:
        return cls(
            ObjectType.parse(object_type),
            program_id=_positive_int("program_id", program_id),
            custom_object_name=custom_object_name or None,
        )

    @property
    def create_path(self) -> str:
        if self.object_type is ObjectType.PROGRAM_MEMBERS and self.program_id is None:
            raise MarketoValueError("program_id is required for program member imports")
        template = PATH_TEMPLATES[(self.object_type, "create")]
        return template.format(programId=self.program_id, apiName=_quote(self.custom_object_name or ""))

    def batch_path(self, batch_id: int, kind: str) -> str:
        """The path of a batch's ``status``, ``failures`` or ``warnings``."""
        if kind not in ("status", *RESULT_KINDS):
            raise MarketoValueError(f"kind must be 'status', 'failures' or 'warnings', not {kind!r}")
        template = PATH_TEMPLATES[(self.object_type, kind)]
        return template.format(batchId=int(batch_id), apiName=_quote(self.custom_object_name or ""))

    def result_file_path(self, batch_id: int, kind: str) -> str:
        """The path of a batch's ``failures`` or ``warnings`` file."""
        if kind not in RESULT_KINDS:
            raise MarketoValueError(f"result file kind must be 'failures' or 'warnings', not {kind!r}")
        return self.batch_path(batch_id, kind)

    @property
    def describe_path(self) -> str:
        template = PATH_TEMPLATES[(self.object_type, "describe")]
        return template.format(customObjectName=_quote(self.custom_object_name or ""))

    @property
    def label(self) -> str:
        """Short human name, e.g. ``leads`` or ``custom object car_c``."""
        if self.object_type is ObjectType.PROGRAM_MEMBERS:
            return f"program members of program {self.program_id}" if self.program_id else "program members"
        if self.object_type is ObjectType.CUSTOM_OBJECTS:
            return f"custom object {self.custom_object_name}"
        return "leads"


def batch_path(
    object_type: str | ObjectType, batch_id: int, kind: str, custom_object_name: str | None = None
) -> str:
    """The path of a batch's ``status``, ``failures`` or ``warnings``."""
    return ImportTarget.of(object_type, custom_object_name=custom_object_name).batch_path(batch_id, kind)


def result_file_path(
    object_type: str | ObjectType, batch_id: int, kind: str, custom_object_name: str | None = None
) -> str:
    """The path of a batch's ``failures`` or ``warnings`` file."""
    return ImportTarget.of(object_type, custom_object_name=custom_object_name).result_file_path(
        batch_id, kind
    )


def describe_path(object_type: ObjectType, custom_object_name: str | None = None) -> str:
    return ImportTarget.of(object_type, custom_object_name=custom_object_name).describe_path


DEFAULT_LOOKUP_FIELD = "email"


@dataclass(frozen=True)
class ImportSpec:
    """What one import sends to Marketo besides the file: the target, the file format, and the
    options of lead and program member imports. Build it with :meth:`of`, which checks every value
    once; it knows its create path and its query string (where the spec puts the parameters)."""

    target: ImportTarget
    file_format: FileFormat = FileFormat.CSV
    lookup_field: str | None = None
    list_id: int | None = None
    partition_name: str | None = None
    program_member_status: str | None = None

    def __post_init__(self) -> None:
        kind = self.target.object_type
        lead_only = {
            "lookup_field": self.lookup_field,
            "list_id": self.list_id,
            "partition_name": self.partition_name,
        }
        given = [name for name, value in lead_only.items() if value not in (None, "")]
        if kind is not ObjectType.LEADS and given:
            raise MarketoValueError(f"{', '.join(given)} only apply to lead imports, not {kind.value}")
        if kind is ObjectType.PROGRAM_MEMBERS:
            if self.target.program_id is None:
                raise MarketoValueError("program_id is required for program member imports")
            if not self.program_member_status:
                raise MarketoValueError(
                    "program_member_status is required for program member imports (e.g. 'On List'); "
                    "it must be a status of the program's channel"
                )
        elif self.program_member_status:
            raise MarketoValueError(
                f"program_member_status only applies to program member imports, not {kind.value}"
            )

    @classmethod
    def of(
        cls,
        object_type: str | ObjectType,
        *,
        file_format: str | FileFormat = FileFormat.CSV,
        lookup_field: str | None = None,
        list_id: int | str | None = None,
        partition_name: str | None = None,
        program_id: int | str | None = None,
        program_member_status: str | None = None,
        custom_object_name: str | None = None,
    ) -> ImportSpec:
        """The spec from arguments as users give them (strings a template rendered included)."""
        return cls(
            target=ImportTarget.of(object_type, program_id=program_id, custom_object_name=custom_object_name),
            file_format=FileFormat.parse(file_format),
            lookup_field=_text(lookup_field),
            list_id=_positive_int("list_id", list_id),
            partition_name=_text(partition_name),
            program_member_status=_text(program_member_status),
        )

    @property
    def object_type(self) -> ObjectType:
        return self.target.object_type

    @property
    def create_path(self) -> str:
        return self.target.create_path

    @property
    def query(self) -> dict[str, str]:
        """The create call's query string."""
        params = {"format": self.file_format.value}
        if self.lookup_field:
            params["lookupField"] = self.lookup_field
        if self.list_id is not None:
            params["listId"] = str(self.list_id)
        if self.partition_name:
            params["partitionName"] = self.partition_name
        if self.program_member_status:
            params["programMemberStatus"] = self.program_member_status
        return params

    def required_columns(self, dedupe_fields: Iterable[str] = ()) -> tuple[str, ...]:
        return required_columns(self.object_type, lookup_field=self.lookup_field, dedupe_fields=dedupe_fields)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def positive_seconds(name: str, value: float | str) -> float:
    """A positive number of seconds, from a number or the text a template rendered."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise MarketoValueError(f"{name} must be a number of seconds, not {value!r}") from None
    if not seconds > 0 or seconds == float("inf"):
        raise MarketoValueError(f"{name} must be a positive number of seconds, not {value!r}")
    return seconds


def _positive_int(name: str, value: int | str | None) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise MarketoValueError(f"{name} must be a whole number, not {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise MarketoValueError(f"{name} must be a whole number, not {value!r}") from None
    if number <= 0:
        raise MarketoValueError(f"{name} must be a positive number, not {value!r}")
    return number


def required_columns(
    object_type: str | ObjectType, *, lookup_field: str | None = None, dedupe_fields: Iterable[str] = ()
) -> tuple[str, ...]:
    """The columns every row of an import must fill: leads their lookup field (default ``email``),
    program members ``email``, custom objects their dedupe fields (from the describe call)."""
    kind = ObjectType.parse(object_type)
    if kind is ObjectType.PROGRAM_MEMBERS:
        return ("email",)
    if kind is ObjectType.LEADS:
        return (lookup_field or DEFAULT_LOOKUP_FIELD,)
    return tuple(dedupe_fields)


# --------------------------------------------------------------------------------------------
# Calls: what to send and how to read the answer, for both transports
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """The file of a create call: sent as the multipart part ``file`` with a filename."""

    filename: str
    size: int
    content_type: str
    open: Callable[[], Any]  # a fresh stream of the file's bytes (called again for each attempt)


@dataclass(frozen=True)
class Call:
    """One HTTP request, described; a transport sends it and hands back an :class:`Answer`."""

    method: str
    url: str
    purpose: str  # names the call in messages, e.g. "status of batch 3404"
    params: Mapping[str, str] | None = field(default=None, repr=False)  # the identity call's hold the secret
    token: str | None = field(default=None, repr=False)
    upload: Upload | None = None
    stream: bool = False
    read_timeout: float | None = None  # None: the connection's timeout

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc

    @property
    def path(self) -> str:
        return urlsplit(self.url).path


@dataclass
class Answer:
    """What came back: the status, the headers, and the body (``text``), or with a streamed call
    the transport's ``chunks`` iterator instead."""

    status: int
    headers: Mapping[str, str]
    text: str = ""
    chunks: Any = None

    def json(self) -> Any:
        import json

        try:
            return json.loads(self.text)
        except ValueError:
            return None


@dataclass(frozen=True)
class NeedToken:
    """A flow's request for an access token; ``stale`` is one Marketo just refused (601/602)."""

    stale: str | None = field(default=None, repr=False)


Flow = Generator["Call | NeedToken", Any, T]


def call_flow(call: Call, read: Callable[[Answer], T], *, resend_safe: bool = True) -> Flow[T]:
    """How one REST call is made, free of I/O; the hook's sync and async transports drive it.

    It asks for a token (:class:`NeedToken`), sends the call with it, and reads the answer. A token
    Marketo refuses (601/602) is renewed once and the call sent again. A call that must not be
    resent (an upload) and that may have reached Marketo (the connection broke after sending, or a
    gateway answered 502/504) ends in :class:`MarketoSubmitOutcomeUnknownError`. Every other
    failure is raised for the caller's retry policy (:func:`is_retryable`).
    """
    token = yield NeedToken()
    for renewed in (False, True):
        try:
            answer = yield replace(call, token=token)
            return read(answer)
        except MarketoTransportError as exc:
            if not resend_safe and exc.failure.sent:
                raise _outcome_unknown(call, exc) from None
            raise
        except MarketoTransientError as exc:
            if not resend_safe and exc.code in GATEWAY_AFTER_SEND_CODES:
                raise _outcome_unknown(call, exc) from None
            raise
        except MarketoTokenError:
            if renewed:
                raise
            token = yield NeedToken(stale=token)
    raise AssertionError("unreachable")  # pragma: no cover


def _outcome_unknown(call: Call, exc: Exception) -> MarketoSubmitOutcomeUnknownError:
    return MarketoSubmitOutcomeUnknownError(
        f"the {call.purpose} was sent but no answer came back ({exc}). Marketo may or may not have "
        "created an import for it; it was not sent again to avoid importing the same rows twice."
    )


def token_call(settings: ConnectionSettings) -> Call:
    """The identity call: ``client_id``, ``client_secret`` and ``grant_type`` in the query string,
    as Adobe documents it. The URL then holds the secret: it is never logged or put in a message."""
    return Call(
        "GET",
        settings.token_url,
        "the identity call (access token)",
        params={
            "grant_type": "client_credentials",
            "client_id": settings.client_id,
            "client_secret": settings.client_secret,
        },
    )


def read_token_answer(answer: Answer, now: float, conn_id: str = "") -> Token:
    """Read the identity service's answer; raise ``MarketoAuthError`` on refused credentials."""
    body = answer.json()
    of_conn = f" of Airflow connection {conn_id!r}" if conn_id else ""
    if answer.status in (400, 401) or (isinstance(body, Mapping) and body.get("error")):
        code = str(body.get("error") or "") if isinstance(body, Mapping) else ""
        code = code if re.fullmatch(r"[a-z_]{1,40}", code) else ""
        raise MarketoAuthError(
            f"Marketo's identity service refused the client id / client secret{of_conn}"
            + (f" ({code})" if code else f" (HTTP {answer.status})")
            + ". Check the connection's Client ID and Client Secret (Admin > LaunchPoint > View Details)."
        )
    not_found = answer.status == 404 or (
        isinstance(body, Mapping)
        and body.get("success") is False
        and any(str(e.get("code")) == "610" for e in body.get("errors") or [] if isinstance(e, Mapping))
    )
    if not_found:
        raise MarketoNotFoundError(
            str(answer.status if answer.status == 404 else "610"),
            "the identity service is not at this URL",
            hint="check the connection's host (the REST API endpoint) and its extra 'identity_url'",
        )
    if answer.status in _TRANSIENT_HTTP_STATUSES:
        raise MarketoTransientError(str(answer.status), f"identity service answered HTTP {answer.status}")
    if answer.status != 200 or not isinstance(body, Mapping) or "access_token" not in body:
        raise MarketoError(
            f"unexpected answer from Marketo's identity service{of_conn} (HTTP {answer.status})"
        )
    expires_in = int(body.get("expires_in") or 0)
    return Token(
        access_token=str(body["access_token"]),
        expires_at=now + expires_in,
        renew_at=token_renew_at(now, expires_in),
    )


def raise_for_http_status(status: int, path: str = "") -> None:
    """Raise for HTTP-level failures that carry no Marketo envelope. Messages name the path,
    never the body (a server or proxy may echo the request, token included)."""
    if status == 413:
        raise MarketoFileTooLargeError(
            "413",
            "Request Entity Too Large",
            hint=f"Marketo takes import files under {MAX_IMPORT_FILE_BYTES:,} bytes",
        )
    if status in _TRANSIENT_HTTP_STATUSES:
        raise MarketoTransientError(str(status), f"HTTP {status} from Marketo")
    if status == 401:
        raise MarketoTokenError("601", "HTTP 401 Unauthorized")
    if status == 404:
        raise MarketoNotFoundError(
            "404",
            f"HTTP 404 from Marketo for {path or 'the path'}",
            hint="check the connection's host: it must be the REST API endpoint, e.g. https://123-ABC-456.mktorest.com",
        )
    if status >= 400:
        raise MarketoAPIError(str(status), f"HTTP {status} from Marketo for {path or 'the path'}")


def read_envelope(body: Any) -> list[dict[str, Any]]:
    """Return ``result`` of a successful answer or raise the named error of a failed one."""
    if not isinstance(body, Mapping) or "success" not in body:
        raise MarketoError("Marketo answered with something other than its JSON envelope")
    if not body["success"]:
        errors = body.get("errors") or [{"code": "unknown", "message": "no error given"}]
        first = errors[0]
        raise error_for(str(first.get("code")), str(first.get("message", ""))[:300])
    result = body.get("result")
    return list(result) if result else []


def read_json_answer(answer: Answer, path: str = "") -> list[dict[str, Any]]:
    """The ``result`` of a JSON answer, or the error it carries (HTTP status or envelope)."""
    raise_for_http_status(answer.status, path)
    body = answer.json()
    if body is None:
        raise MarketoError(f"Marketo answered HTTP {answer.status} for {path} with something other than JSON")
    return read_envelope(body)


def read_batch(answer: Answer, path: str = "") -> dict[str, Any]:
    """The one batch entry of a create or status answer, or the error it carries."""
    raise_for_http_status(answer.status, path)
    body = answer.json()
    if body is None:
        raise MarketoError(f"Marketo answered HTTP {answer.status} for {path} with something other than JSON")
    return read_batch_answer(body)


def read_batch_answer(body: Any) -> dict[str, Any]:
    """The one batch entry of a create or status answer."""
    result = read_envelope(body)
    if not result or "batchId" not in result[0]:
        raise MarketoError("Marketo's answer has no batch in its result")
    return dict(result[0])


def read_result_file_answer(answer: Answer, target: ImportTarget, path: str) -> bool:
    """Whether a failures/warnings answer carries a file (False: none, as custom objects answer
    404 when a batch has no such file); raises for errors."""
    if answer.status == 404 and not target.object_type.has_result_file_when_empty:
        return False
    if "json" in str(answer.headers.get("content-type", "")).lower():
        read_envelope(answer.json())  # an error in Marketo's envelope
    raise_for_http_status(answer.status, path)
    return True


@dataclass(frozen=True)
class BatchStatus:
    """A batch's status, read so that counts absent before completion read as ``None``."""

    batch_id: int
    status: str
    rows_processed: int | None = None
    rows_failed: int | None = None
    rows_with_warning: int | None = None
    message: str | None = None

    @property
    def done(self) -> bool:
        return self.status in DONE_STATUSES

    @property
    def failed(self) -> bool:
        return self.status == FAILED

    def has_rows(self, kind: str) -> bool:
        """Whether Marketo has a ``failures``/``warnings`` file with rows for this batch. A failed
        batch has none; a count Marketo did not send is taken as "maybe"."""
        if self.failed:
            return False
        count = self.rows_failed if kind == "failures" else self.rows_with_warning
        return count is None or count > 0

    @classmethod
    def from_entry(cls, object_type: ObjectType, entry: Mapping[str, Any]) -> BatchStatus:
        def count(name: str) -> int | None:
            value = entry.get(name)
            return int(value) if value is not None else None

        return cls(
            batch_id=int(entry["batchId"]),
            status=str(entry.get("status", "")),
            rows_processed=count(object_type.processed_count_field),
            rows_failed=count("numOfRowsFailed"),
            rows_with_warning=count("numOfRowsWithWarning"),
            message=entry.get("message"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "status": self.status,
            "rows_processed": self.rows_processed,
            "rows_failed": self.rows_failed,
            "rows_with_warning": self.rows_with_warning,
            "message": self.message,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BatchStatus:
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})  # type: ignore[arg-type]

    def summary(self, part: int | None = None) -> dict[str, Any]:
        """The entry of ``batches`` in the operator's summary."""
        return {
            "batch_id": self.batch_id,
            "part": part,
            "status": self.status,
            "rows_processed": self.rows_processed or 0,
            "rows_failed": self.rows_failed or 0,
            "rows_with_warning": self.rows_with_warning or 0,
            "message": self.message,
        }


def describe_field_names(result: list[dict[str, Any]]) -> dict[str, Any]:
    """Read a describe answer: known field names and, where the object has them, dedupe fields."""
    if not result:
        raise MarketoError("Marketo's describe answer has no result")
    entry = result[0]
    fields = [str(f["name"]) for f in entry.get("fields", []) if "name" in f]
    dedupe = [str(name) for name in entry.get("dedupeFields", [])]
    return {"fields": fields, "dedupe_fields": dedupe}


# --------------------------------------------------------------------------------------------
# Connections and tokens
# --------------------------------------------------------------------------------------------

DEFAULT_HTTP_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class ConnectionSettings:
    """What a client needs from an Airflow connection of type ``marketo``."""

    conn_id: str
    rest_url: str
    identity_url: str
    client_id: str
    client_secret: str = field(repr=False)
    timeout: float = DEFAULT_HTTP_TIMEOUT_SECONDS
    verify: bool | str = True

    @property
    def token_url(self) -> str:
        return self.identity_url + TOKEN_PATH

    @property
    def cache_key(self) -> tuple[str, str]:
        return (self.identity_url, self.client_id)

    @property
    def instance_host(self) -> str:
        """The instance's host name, e.g. ``123-abc-456.mktorest.com``."""
        return urlsplit(self.rest_url).netloc.lower()

    @property
    def connect_timeout(self) -> float:
        return min(self.timeout, CONNECT_TIMEOUT_SECONDS)

    def url(self, path: str) -> str:
        return self.rest_url + path


def _base_url(value: str, *, strip_suffixes: tuple[str, ...]) -> str:
    url = value.strip().rstrip("/")
    if "://" not in url:
        url = "https://" + url
    for suffix in strip_suffixes:
        if url.lower().endswith(suffix):
            url = url[: -len(suffix)].rstrip("/")
    return url


def connection_settings(
    conn_id: str,
    *,
    host: str | None,
    login: str | None,
    password: str | None,
    extra: Mapping[str, Any] | None = None,
) -> ConnectionSettings:
    """Read a ``marketo`` connection; a missing or unusable piece is an error naming the
    connection and the field."""
    missing = [
        f"{name} ({what})"
        for name, value, what in (
            ("host", host, "the REST API endpoint, e.g. https://123-ABC-456.mktorest.com"),
            ("login", login, "the Client ID"),
            ("password", password, "the Client Secret"),
        )
        if not (value and str(value).strip())
    ]
    if missing:
        raise MarketoConnectionConfigError(
            f"Airflow connection {conn_id!r} has no {', no '.join(missing)}. "
            "Marketo shows these under Admin > Web Services and Admin > LaunchPoint > View Details."
        )
    extra = dict(extra or {})
    rest_url = _base_url(str(host), strip_suffixes=("/rest",))
    scheme = urlsplit(rest_url).scheme.lower()
    if scheme not in ("http", "https"):
        raise MarketoConnectionConfigError(
            f"Airflow connection {conn_id!r}: host {host!r} must be an https:// (or http://) URL"
        )
    identity = extra.get("identity_url")
    identity_url = (
        _base_url(str(identity), strip_suffixes=(TOKEN_PATH,)) if identity else rest_url + "/identity"
    )
    timeout = extra.get("timeout")
    try:
        timeout_value = float(timeout) if timeout not in (None, "") else DEFAULT_HTTP_TIMEOUT_SECONDS
    except (TypeError, ValueError):
        raise MarketoConnectionConfigError(
            f"Airflow connection {conn_id!r}: extra 'timeout' must be a number of seconds, not {timeout!r}"
        ) from None
    if not timeout_value > 0:
        raise MarketoConnectionConfigError(
            f"Airflow connection {conn_id!r}: extra 'timeout' must be positive"
        )
    return ConnectionSettings(
        conn_id=conn_id,
        rest_url=rest_url,
        identity_url=identity_url,
        client_id=str(login).strip(),
        client_secret=str(password).strip(),
        timeout=timeout_value,
        verify=read_verify(conn_id, extra.get("verify")),
    )


def read_verify(conn_id: str, value: Any) -> bool | str:
    """The extra ``verify``: true, false, or the path of a CA bundle (a file or a folder of
    certificates). Anything else is an error naming the extra."""
    if value is None or value == "" or value is True:
        return True
    if value is False:
        return False
    text = str(value).strip()
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    if "/" not in text and "\\" not in text and "." not in text:
        raise MarketoConnectionConfigError(
            f"Airflow connection {conn_id!r}: extra 'verify' is {value!r}; it must be true, false or the "
            "path of a CA bundle"
        )
    return text  # a CA bundle path; the hook checks that it exists


def token_renew_at(now: float, expires_in: float) -> float:
    """When to ask for a new token. Marketo hands back the same token until it expires, so near
    the end of its life renewal is tried at halving intervals instead of on every request."""
    return now + expires_in - min(TOKEN_RENEW_MARGIN_SECONDS, expires_in / 2)


@dataclass(frozen=True)
class Token:
    """An access token and when to stop using it (``renew_at``, a little before it expires)."""

    access_token: str = field(repr=False)
    expires_at: float
    renew_at: float

    def fresh_at(self, now: float) -> bool:
        return now < self.renew_at


class TokenCache:
    """Access tokens by (identity URL, client id), shared by every hook of a process, so a worker
    or a triggerer asks for one token per token lifetime, not one per task or call."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str], Token] = {}
        self._lock = threading.Lock()

    def fresh(self, key: tuple[str, str], now: float) -> str | None:
        with self._lock:
            token = self._tokens.get(key)
        return token.access_token if token is not None and token.fresh_at(now) else None

    def store(self, key: tuple[str, str], token: Token) -> None:
        with self._lock:
            self._tokens[key] = token

    def forget(self, key: tuple[str, str], access_token: str) -> None:
        """Drop ``access_token`` (Marketo refused it), unless another caller already replaced it."""
        with self._lock:
            cached = self._tokens.get(key)
            if cached is not None and cached.access_token == access_token:
                del self._tokens[key]

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


# --------------------------------------------------------------------------------------------
# Import files: Marketo's rules for the header line and the columns
# --------------------------------------------------------------------------------------------


def header_name_problems(names: Iterable[str], file_format: str | FileFormat) -> list[str]:
    """What is wrong with an import file's header names, as phrases that follow "the header of
    <source>" and say what to fix; empty when Marketo can read the header."""
    fmt = FileFormat.parse(file_format)
    names = list(names)
    problems: list[str] = []
    if len(names) == 1:
        for other in FileFormat:
            if other is not fmt and other.delimiter in names[0]:
                problems.append(
                    f"has one column when read as {fmt.value} ({fmt.delimiter_name}-separated) but looks "
                    f"{other.delimiter_name}-separated: {names[0][:80]!r}; set file_format='{other.value}'"
                )
                break
    empty = [str(i + 1) for i, n in enumerate(names) if not n.strip()]
    if empty:
        problems.append(f"has empty column names (column {', '.join(empty)}); name every column")
    padded = [n for n in names if n != n.strip()]
    if padded:
        listed = ", ".join(repr(n) for n in padded)
        problems.append(
            f"has column names with leading or trailing spaces: {listed}; "
            "Marketo fails every row of such a file (missing.dedupe.fields). Remove the spaces."
        )
    seen: set[str] = set()
    duplicates = sorted({n for n in names if n in seen or seen.add(n)})  # type: ignore[func-returns-value]
    if duplicates:
        problems.append(f"names these columns more than once: {', '.join(duplicates)}")
    return problems


def check_header_names(names: Iterable[str], file_format: str | FileFormat, source: str = "source") -> None:
    """Raise :class:`MarketoValueError` for the first of :func:`header_name_problems`."""
    problems = header_name_problems(names, file_format)
    if problems:
        raise MarketoValueError(f"the header of {source} {problems[0]}")


def why_required(object_type: str | ObjectType) -> str:
    """Why an import of this kind needs its :func:`required_columns`, for messages."""
    return {
        ObjectType.PROGRAM_MEMBERS: "which program member imports need to find each lead",
        ObjectType.LEADS: "the lookup field leads are matched on",
        ObjectType.CUSTOM_OBJECTS: "the custom object's dedupe field",
    }[ObjectType.parse(object_type)]


def importable_field_objects(object_type: str | ObjectType) -> tuple[ObjectType, ...]:
    """The objects whose describe calls list the columns an import of this kind may name: program
    member imports may also name lead fields (they create or update the lead)."""
    kind = ObjectType.parse(object_type)
    if kind is ObjectType.PROGRAM_MEMBERS:
        return (ObjectType.PROGRAM_MEMBERS, ObjectType.LEADS)
    return (kind,)
