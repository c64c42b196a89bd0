"""What this project knows about Marketo's bulk import API, with no I/O.

Object types, their paths and parameters, how a request is built, how an answer is read (errors
arrive in HTTP 200 bodies), and what to do about every error code. The hook's sync and async
transports and the sandbox all use this module, so each rule is written once.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Marketo takes import files *under* 10 MB. The sandbox answers HTTP 413 above this size, and the
# hook refuses to send more. 10,000,000 bytes is below both readings of "10 MB".
MAX_IMPORT_FILE_BYTES = 10_000_000

# Per instance: 2 jobs importing at once, 10 in the queue including those (error 1016 above).
MAX_IMPORTING_JOBS = 2
MAX_QUEUED_JOBS = 10

# 100 calls in any 20 second window (606), 10 calls at once (615).
RATE_LIMIT_CALLS = 100
RATE_LIMIT_WINDOW_SECONDS = 20.0
CONCURRENCY_LIMIT = 10

# A new token lives one hour; renew a little before it runs out so a request never carries a token
# that expires on the way.
TOKEN_LIFE_SECONDS = 3600
TOKEN_RENEW_MARGIN_SECONDS = 60

IDENTITY_TOKEN_PATH = "/identity/oauth/token"

FAILURE_REASON_COLUMN = "Import Failure Reason"
WARNING_REASON_COLUMN = "Import Warning Reason"
RESULT_FILE_CONTENT_TYPE = "text/csv;charset=UTF-8"


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


BatchStatusName = str
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


class MarketoValueError(MarketoError, ValueError):
    """The arguments or the input are wrong; nothing was sent to Marketo."""


class MarketoConnectionConfigError(MarketoValueError):
    """The Airflow connection lacks something the hook needs."""


class MarketoAuthError(MarketoError):
    """The identity service refused the client id or secret (HTTP 401)."""


class MarketoAPIError(MarketoError):
    """Marketo answered with an error code; ``code`` and ``message`` are Marketo's own."""

    def __init__(self, code: str, message: str, *, hint: str = "") -> None:
        self.code = str(code)
        self.message = message
        self.hint = hint or ERROR_HINTS.get(self.code, "")
        text = f"Marketo error {self.code}: {message}"
        if self.hint:
            text += f" ({self.hint})"
        super().__init__(text)


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


class MarketoQueueFullError(MarketoAPIError):
    """Marketo's import queue is full (1016): wait until one of the queued imports finishes."""


class MarketoFileTooLargeError(MarketoAPIError):
    """The import file is above Marketo's size limit (HTTP 413)."""


class MarketoSubmitOutcomeUnknownError(MarketoError):
    """The connection broke after an upload was sent, so whether Marketo created the import is unknown.

    The upload is not sent again, because that could import the same rows twice.
    """


class ErrorAction(str, enum.Enum):
    """What a client should do about an error."""

    REFRESH_TOKEN = "refresh_token"
    RETRY = "retry"
    WAIT_RATE_WINDOW = "wait_rate_window"
    BACK_OFF = "back_off"
    WAIT_FOR_QUEUE = "wait_for_queue"
    STOP = "stop"


# Marketo's codes (strings, as Marketo sends them) and the exception / action for each.
_TOKEN_CODES = frozenset({"601", "602"})
_TRANSIENT_CODES = frozenset({"604", "608", "611", "713", "719", "1019"})
_TRANSIENT_HTTP_STATUSES = frozenset({502, 503, 504})
# Gateway answers that can come after the request reached Marketo: retrying a read is fine, but an
# upload may already have created an import, so it is never sent again.
GATEWAY_AFTER_SEND_CODES = frozenset({"502", "504"})

ERROR_MESSAGES: dict[str, str] = {
    "600": "Access token not specified",
    "601": "Access token invalid",
    "602": "Access token expired",
    "603": "Access denied",
    "604": "Request time-out",
    "605": "HTTP Method not supported",
    "606": "Max rate limit '100' exceeded with in '20' secs",
    "607": "Daily quota reached",
    "608": "API Temporarily Unavailable",
    "609": "Invalid JSON",
    "610": "Requested resource not found",
    "611": "System error",
    "612": "Invalid Content Type",
    "613": "Invalid Multipart Request",
    "615": "Concurrent access limit reached",
    "616": "Invalid subscription type",
    "701": "Cannot be blank",
    "702": "No data found for a given search scenario",
    "709": "Business rule violation",
    "710": "Parent folder not found",
    "711": "Incompatible folder type",
    "713": "Transient Error",
    "719": "Lock wait timeout exception",
    "1003": "Invalid data",
    "1006": "Field not found",
    "1008": "Partition does not exist",
    "1009": "Partition not specified",
    "1010": "Partition update not allowed",
    "1011": "Field cannot be used as lookup field",
    "1016": "Too many imports",
    "1019": "Import in progress",
}

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
        if code in _TRANSIENT_CODES:
            return ErrorAction.RETRY
        if code == "606":
            return ErrorAction.WAIT_RATE_WINDOW
        if code == "615":
            return ErrorAction.BACK_OFF
        if code == "1016":
            return ErrorAction.WAIT_FOR_QUEUE
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
}


def error_for(code: str, message: str) -> MarketoAPIError:
    """The named exception for a Marketo error code."""
    code = str(code)
    if code == "607":
        return MarketoQuotaExceededError(code, message)
    cls = _EXCEPTION_BY_ACTION.get(error_action(code), MarketoAPIError)
    return cls(code, message)


def is_retryable(exc: BaseException) -> bool:
    """Whether a request that raised ``exc`` may be sent again after a pause."""
    return isinstance(exc, MarketoTransientError | MarketoRateLimitError | MarketoConcurrencyError)


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


# --------------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportTarget:
    """Where an import goes: the object type and what names it (program id, custom object name)."""

    object_type: ObjectType
    program_id: int | None = None
    custom_object_name: str | None = None

    def __post_init__(self) -> None:
        if self.object_type is ObjectType.PROGRAM_MEMBERS and self.program_id is None:
            raise MarketoValueError("program_id is required for program member imports")
        if self.object_type is ObjectType.CUSTOM_OBJECTS and not self.custom_object_name:
            raise MarketoValueError(
                "custom_object_name (the object's API name, e.g. 'car_c') is required for custom object imports"
            )
        if self.object_type is not ObjectType.PROGRAM_MEMBERS and self.program_id is not None:
            raise MarketoValueError(
                f"program_id only applies to program member imports, not {self.object_type.value}"
            )
        if self.object_type is not ObjectType.CUSTOM_OBJECTS and self.custom_object_name:
            raise MarketoValueError(
                f"custom_object_name only applies to custom object imports, not {self.object_type.value}"
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
        return create_import_path(self.object_type, self.program_id, self.custom_object_name)

    @property
    def label(self) -> str:
        """Short human name, e.g. ``leads`` or ``custom object car_c``."""
        if self.object_type is ObjectType.PROGRAM_MEMBERS:
            return f"program members of program {self.program_id}"
        if self.object_type is ObjectType.CUSTOM_OBJECTS:
            return f"custom object {self.custom_object_name}"
        return "leads"


# Path templates, in the spec's own words; the sandbox routes on the same strings.
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


def _quote(segment: str) -> str:
    from urllib.parse import quote

    return quote(segment, safe="")


def create_import_path(
    object_type: ObjectType, program_id: int | None = None, custom_object_name: str | None = None
) -> str:
    template = PATH_TEMPLATES[(object_type, "create")]
    return template.format(programId=program_id, apiName=_quote(custom_object_name or ""))


def batch_path(
    object_type: str | ObjectType, batch_id: int, kind: str, custom_object_name: str | None = None
) -> str:
    """The path of a batch's ``status``, ``failures`` or ``warnings`` (program members' do not
    name the program; custom objects' name the object)."""
    object_type = ObjectType.parse(object_type)
    if kind not in ("status", "failures", "warnings"):
        raise MarketoValueError(f"kind must be 'status', 'failures' or 'warnings', not {kind!r}")
    if object_type is ObjectType.CUSTOM_OBJECTS and not custom_object_name:
        raise MarketoValueError("custom_object_name is required for custom object batches")
    template = PATH_TEMPLATES[(object_type, kind)]
    return template.format(batchId=int(batch_id), apiName=_quote(custom_object_name or ""))


def result_file_path(
    object_type: str | ObjectType, batch_id: int, kind: str, custom_object_name: str | None = None
) -> str:
    """The path of a batch's ``failures`` or ``warnings`` file."""
    if kind not in ("failures", "warnings"):
        raise MarketoValueError(f"result file kind must be 'failures' or 'warnings', not {kind!r}")
    return batch_path(object_type, batch_id, kind, custom_object_name)


def describe_path(object_type: ObjectType, custom_object_name: str | None = None) -> str:
    return PATH_TEMPLATES[(object_type, "describe")].format(customObjectName=_quote(custom_object_name or ""))


def positive_seconds(name: str, value: float | str) -> float:
    """A positive number of seconds, from a number or the text a template rendered."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise MarketoValueError(f"{name} must be a number of seconds, not {value!r}") from None
    if seconds <= 0:
        raise MarketoValueError(f"{name} must be positive, not {value!r}")
    return seconds


def _positive_int(name: str, value: int | str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise MarketoValueError(f"{name} must be a whole number, not {value!r}") from None
    if number <= 0:
        raise MarketoValueError(f"{name} must be a positive number, not {value!r}")
    return number


def import_query_params(
    target: ImportTarget,
    *,
    file_format: str | FileFormat = FileFormat.CSV,
    lookup_field: str | None = None,
    list_id: int | str | None = None,
    partition_name: str | None = None,
    program_member_status: str | None = None,
) -> dict[str, str]:
    """The query string of a create-import call, checked against what the object type accepts."""
    params: dict[str, str] = {"format": FileFormat.parse(file_format).value}
    kind = target.object_type
    lead_only = {"lookup_field": lookup_field, "list_id": list_id, "partition_name": partition_name}
    if kind is not ObjectType.LEADS:
        given = [name for name, value in lead_only.items() if value not in (None, "")]
        if given:
            raise MarketoValueError(f"{', '.join(given)} only apply to lead imports, not {kind.value}")
    if kind is not ObjectType.PROGRAM_MEMBERS and program_member_status:
        raise MarketoValueError(
            f"program_member_status only applies to program member imports, not {kind.value}"
        )
    if kind is ObjectType.LEADS:
        if lookup_field:
            params["lookupField"] = str(lookup_field)
        checked_list_id = _positive_int("list_id", list_id)
        if checked_list_id is not None:
            params["listId"] = str(checked_list_id)
        if partition_name:
            params["partitionName"] = str(partition_name)
    elif kind is ObjectType.PROGRAM_MEMBERS:
        if not program_member_status:
            raise MarketoValueError(
                "program_member_status is required for program member imports (e.g. 'On List'); "
                "it must be a status of the program's channel"
            )
        params["programMemberStatus"] = str(program_member_status)
    return params


DEFAULT_LOOKUP_FIELD = "email"


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


def token_form(client_id: str, client_secret: str) -> dict[str, str]:
    """The identity call's parameters, sent as a form body (POST) so they never appear in a URL,
    where proxies and access logs would keep them."""
    return {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret}


def bearer_header(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --------------------------------------------------------------------------------------------
# Answers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    """An access token and when to stop using it (``renew_at``, a little before it expires)."""

    access_token: str = field(repr=False)
    expires_at: float
    renew_at: float

    def fresh_at(self, now: float) -> bool:
        return now < self.renew_at


def read_token_answer(http_status: int, body: Any, now: float, conn_id: str = "") -> Token:
    """Read the identity service's answer; raise ``MarketoAuthError`` on refused credentials."""
    if http_status == 401 or (isinstance(body, Mapping) and body.get("error")):
        description = ""
        if isinstance(body, Mapping):
            description = str(body.get("error_description") or body.get("error") or "")
        of_conn = f" of Airflow connection {conn_id!r}" if conn_id else ""
        raise MarketoAuthError(
            f"Marketo's identity service refused the client id / client secret{of_conn}"
            + (f" ({description})" if description else "")
            + ". Check the connection's Client ID and Client Secret (Admin > LaunchPoint > View Details)."
        )
    if http_status in _TRANSIENT_HTTP_STATUSES:
        raise MarketoTransientError(str(http_status), f"identity service answered HTTP {http_status}")
    if http_status != 200 or not isinstance(body, Mapping) or "access_token" not in body:
        raise MarketoError(f"unexpected answer from Marketo's identity service (HTTP {http_status})")
    expires_in = int(body.get("expires_in") or 0)
    return Token(
        access_token=str(body["access_token"]),
        expires_at=now + expires_in,
        renew_at=token_renew_at(now, expires_in),
    )


def raise_for_http_status(http_status: int, body_text: str = "") -> None:
    """Raise for HTTP-level failures that carry no Marketo envelope."""
    if http_status == 413:
        raise MarketoFileTooLargeError(
            "413",
            "Request Entity Too Large",
            hint=f"Marketo takes import files under {MAX_IMPORT_FILE_BYTES:,} bytes",
        )
    if http_status in _TRANSIENT_HTTP_STATUSES:
        raise MarketoTransientError(str(http_status), f"HTTP {http_status} from Marketo")
    if http_status == 401:
        raise MarketoTokenError("601", "HTTP 401 Unauthorized")
    if http_status >= 400:
        snippet = body_text[:200].strip()
        raise MarketoAPIError(
            str(http_status), f"HTTP {http_status} from Marketo" + (f": {snippet}" if snippet else "")
        )


def read_envelope(body: Any) -> list[dict[str, Any]]:
    """Return ``result`` of a successful answer or raise the named error of a failed one."""
    if not isinstance(body, Mapping) or "success" not in body:
        raise MarketoError("Marketo answered with something other than its JSON envelope")
    if not body["success"]:
        errors = body.get("errors") or [{"code": "unknown", "message": "no error given"}]
        first = errors[0]
        raise error_for(str(first.get("code")), str(first.get("message", "")))
    result = body.get("result")
    return list(result) if result else []


def read_batch_answer(body: Any) -> dict[str, Any]:
    """The one batch entry of a create or status answer."""
    result = read_envelope(body)
    if not result or "batchId" not in result[0]:
        raise MarketoError("Marketo's answer has no batch in its result")
    return dict(result[0])


@dataclass(frozen=True)
class BatchStatus:
    """A batch's status, read so that counts absent before completion read as ``None``."""

    batch_id: int
    status: str
    rows_processed: int | None = None
    rows_failed: int | None = None
    rows_with_warning: int | None = None
    message: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def done(self) -> bool:
        return self.status in DONE_STATUSES

    @property
    def failed(self) -> bool:
        return self.status == FAILED

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
            raw=dict(entry),
        )

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


def describe_field_names(object_type: ObjectType, result: list[dict[str, Any]]) -> dict[str, Any]:
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

DEFAULT_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class ConnectionSettings:
    """What a client needs from an Airflow connection of type ``marketo``."""

    conn_id: str
    rest_url: str
    identity_url: str
    client_id: str
    client_secret: str = field(repr=False)
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    verify: bool | str = True

    @property
    def token_url(self) -> str:
        return self.identity_url + "/oauth/token"

    @property
    def cache_key(self) -> tuple[str, str]:
        return (self.identity_url, self.client_id)

    @property
    def instance_host(self) -> str:
        """The instance's host name, e.g. ``123-abc-456.mktorest.com``."""
        from urllib.parse import urlsplit

        return urlsplit(self.rest_url).netloc.lower()


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
    """Read a ``marketo`` connection; a missing piece is an error naming the connection and field."""
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
    identity = extra.get("identity_url")
    identity_url = (
        _base_url(str(identity), strip_suffixes=("/oauth/token",)) if identity else rest_url + "/identity"
    )
    timeout = extra.get("timeout")
    try:
        timeout_value = float(timeout) if timeout not in (None, "") else DEFAULT_TIMEOUT_SECONDS
    except (TypeError, ValueError):
        raise MarketoConnectionConfigError(
            f"Airflow connection {conn_id!r}: extra 'timeout' must be a number of seconds, not {timeout!r}"
        ) from None
    if timeout_value <= 0:
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
        verify=_verify(conn_id, extra.get("verify")),
    )


def _verify(conn_id: str, value: Any) -> bool | str:
    if value is None or value == "" or value is True:
        return True
    if value is False:
        return False
    text = str(value).strip()
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    return text  # a CA bundle path


def token_renew_at(now: float, expires_in: float) -> float:
    """When to ask for a new token. Marketo hands back the same token until it expires, so near
    the end of its life renewal is tried at halving intervals instead of on every request."""
    return now + expires_in - min(TOKEN_RENEW_MARGIN_SECONDS, expires_in / 2)


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
