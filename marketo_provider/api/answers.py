"""Marketo's answers read, free of I/O: errors arrive in HTTP 200 bodies, so every answer is
checked (the identity service's, Marketo's JSON envelope, a batch entry, a result file's, a
describe's) and turned into a result or a named error; :class:`BatchStatus` is a status entry read."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from marketo_provider.api.codes import TRANSIENT_HTTP_STATUSES
from marketo_provider.api.connection import Token
from marketo_provider.api.errors import (
    MarketoAnswerError,
    MarketoAPIError,
    MarketoAuthError,
    MarketoError,
    MarketoFileTooLargeError,
    MarketoNotFoundError,
    MarketoTokenError,
    MarketoTransientError,
    error_for,
)
from marketo_provider.api.fields import fields_of_describe
from marketo_provider.api.limits import MAX_IMPORT_FILE_BYTES, token_renew_at
from marketo_provider.api.protocol import Answer, Call
from marketo_provider.api.redaction import server_text
from marketo_provider.api.targets import DONE_STATUSES, FAILED, ImportTarget, ObjectType

__all__ = [
    "BatchStatus",
    "check_batch_entry",
    "describe_field_names",
    "raise_for_http_status",
    "read_batch",
    "read_batch_answer",
    "read_envelope",
    "read_json_answer",
    "read_result_file_answer",
    "read_token_answer",
    "shown",
    "whole_number",
]


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
    if answer.status in TRANSIENT_HTTP_STATUSES:
        raise MarketoTransientError(str(answer.status), f"identity service answered HTTP {answer.status}")
    if answer.status != 200 or not isinstance(body, Mapping) or "access_token" not in body:
        raise MarketoError(
            f"unexpected answer from Marketo's identity service{of_conn} (HTTP {answer.status})"
        )
    purpose = "the identity call (access token)"
    access_token = body["access_token"]
    if not isinstance(access_token, str) or not access_token.strip():
        raise MarketoAnswerError(purpose, "has an access_token that is not text")
    expires_in = whole_number(body.get("expires_in") or 0)
    if expires_in is None or expires_in < 0:
        raise MarketoAnswerError(
            purpose, f"has expires_in {shown(body.get('expires_in'))}, not a number of seconds"
        )
    return Token(
        access_token=access_token,
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
    if status in TRANSIENT_HTTP_STATUSES:
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


def whole_number(value: Any) -> int | None:
    """``value`` as a whole number, or None when it is not one (a fraction, text, true/false)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def shown(value: Any, most: int = 60) -> str:
    """A value from an answer as a message may quote it: short and redacted."""
    return server_text(repr(value), most)


_ERROR_CODE = re.compile(r"[A-Za-z0-9_.-]{1,32}")


def _error_entry(entry: Any) -> bool:
    if not isinstance(entry, Mapping):
        return False
    code, message = entry.get("code"), entry.get("message", "")
    if isinstance(code, int) and not isinstance(code, bool):
        code = str(code)
    return isinstance(code, str) and bool(_ERROR_CODE.fullmatch(code)) and isinstance(message, str | None)


def read_envelope(body: Any, purpose: str = "call") -> list[dict[str, Any]]:
    """Return ``result`` of a successful answer or raise the named error of a failed one. The
    envelope must have Adobe's shape: ``requestId`` and ``success``; on success a ``result`` list
    of objects (absent means empty), on failure a list of ``errors`` each with a ``code``.
    Anything else is a :class:`MarketoAnswerError` naming the call (``purpose``)."""
    if not isinstance(body, Mapping) or not isinstance(body.get("success"), bool):
        raise MarketoAnswerError(purpose, "is not Marketo's JSON envelope (no 'success' true or false)")
    if not isinstance(body.get("requestId"), str):
        raise MarketoAnswerError(purpose, "is not Marketo's JSON envelope (no 'requestId')")
    for name in ("errors", "warnings"):
        if name in body and not isinstance(body[name], list):
            raise MarketoAnswerError(purpose, f"has '{name}' that is not a list")
    if not body["success"]:
        errors = body.get("errors")
        if not errors or not all(_error_entry(e) for e in errors):
            raise MarketoAnswerError(purpose, "says success false without a list of errors, each with a code")
        first = errors[0]
        raise error_for(str(first["code"]), first.get("message") or "")
    result = body.get("result")
    if result is None:
        return []
    if not isinstance(result, list) or not all(isinstance(e, Mapping) for e in result):
        raise MarketoAnswerError(purpose, "has a 'result' that is not a list of objects")
    return [dict(e) for e in result]


def read_json_answer(answer: Answer, call: Call) -> list[dict[str, Any]]:
    """The ``result`` of a JSON answer, or the error it carries (HTTP status or envelope)."""
    return read_envelope(_json_body(answer, call), call.purpose)


def _json_body(answer: Answer, call: Call) -> Any:
    raise_for_http_status(answer.status, call.path)
    body = answer.json()
    if body is None:
        raise MarketoAnswerError(call.purpose, f"(HTTP {answer.status}) is not JSON")
    return body


def read_batch(answer: Answer, call: Call, batch_id: int | None = None) -> dict[str, Any]:
    """The one batch entry of a create or status answer (about ``batch_id`` when given), or the
    error it carries."""
    return read_batch_answer(_json_body(answer, call), call.purpose, batch_id)


def read_batch_answer(body: Any, purpose: str = "call", batch_id: int | None = None) -> dict[str, Any]:
    """The one batch entry of a create or status answer, checked (:func:`check_batch_entry`)."""
    result = read_envelope(body, purpose)
    if len(result) != 1:
        raise MarketoAnswerError(
            purpose, "has no batch in its result" if not result else f"has {len(result)} batches, not one"
        )
    return check_batch_entry(result[0], purpose, batch_id)


def check_batch_entry(entry: Mapping[str, Any], purpose: str, batch_id: int | None = None) -> dict[str, Any]:
    """A batch entry as Adobe documents it, or a :class:`MarketoAnswerError` naming the call: a
    whole ``batchId`` above 0 (the one asked about, when given), a ``status`` text, every count
    (``numOf...``) a whole number of 0 or more. The returned entry's ``message`` is redacted and
    cut to :data:`~marketo_provider.api.limits.MAX_SERVER_MESSAGE_CHARS`."""
    if "batchId" not in entry:
        raise MarketoAnswerError(purpose, "has no batchId in its result")
    found = whole_number(entry["batchId"])
    if found is None or found < 1:
        raise MarketoAnswerError(
            purpose, f"has batchId {shown(entry['batchId'])}, not a whole number above 0"
        )
    if batch_id is not None and found != batch_id:
        raise MarketoAnswerError(purpose, f"is about batch {found}, not batch {batch_id}")
    status = entry.get("status")
    if not isinstance(status, str) or not 0 < len(status) <= 40:
        raise MarketoAnswerError(purpose, f"has status {shown(status)}, not a batch status")
    checked = dict(entry)
    checked["batchId"] = found
    for name, value in entry.items():
        if str(name).startswith("numOf") and value is not None:
            count = whole_number(value)
            if count is None or count < 0:
                raise MarketoAnswerError(
                    purpose, f"has {name} {shown(value)}, not a count (a whole number, 0 or more)"
                )
            checked[name] = count
    message = entry.get("message")
    if message is not None:
        checked["message"] = server_text(message)
    return checked


def read_result_file_answer(answer: Answer, target: ImportTarget, call: Call) -> bool:
    """Whether a failures/warnings answer carries a file (False: none, as custom objects answer
    404 when a batch has no such file); raises for errors."""
    if answer.status == 404 and not target.object_type.has_result_file_when_empty:
        return False
    if "json" in str(answer.headers.get("content-type", "")).lower():
        read_envelope(answer.json(), call.purpose)  # an error in Marketo's envelope
    raise_for_http_status(answer.status, call.path)
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
        """Read a status entry, checked first (:func:`check_batch_entry`)."""
        entry = check_batch_entry(entry, f"status of batch {shown(entry.get('batchId'), 20)}")

        def count(name: str) -> int | None:
            value = entry.get(name)
            return int(value) if value is not None else None

        return cls(
            batch_id=int(entry["batchId"]),
            status=str(entry["status"]),
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


def describe_field_names(result: list[dict[str, Any]], purpose: str = "describe call") -> dict[str, Any]:
    """Read a describe answer: known field names, their types (:class:`~marketo_provider.api.fields.Field`)
    and, where the object has them, dedupe fields."""
    if not result:
        raise MarketoAnswerError(purpose, "has no result")
    entry = result[0]
    fields, dedupe = entry.get("fields", []), entry.get("dedupeFields", [])
    if not isinstance(fields, list) or not all(isinstance(f, Mapping) for f in fields):
        raise MarketoAnswerError(purpose, "has 'fields' that are not a list of objects")
    if not isinstance(dedupe, list) or not all(isinstance(name, str) for name in dedupe):
        raise MarketoAnswerError(purpose, "has 'dedupeFields' that are not a list of names")
    names = [f["name"] for f in fields if "name" in f]
    if not all(isinstance(name, str) for name in names):
        raise MarketoAnswerError(purpose, "has a field whose name is not text")
    return {"fields": names, "dedupe_fields": list(dedupe), "types": fields_of_describe(result)}
