"""What to do about each of Marketo's error codes (and an HTTP status that came without Marketo's
answer): get a new token, retry, wait out the rate window, wait for a queue slot, or stop."""

from __future__ import annotations

import enum

__all__ = [
    "ERROR_HINTS",
    "GATEWAY_AFTER_SEND_CODES",
    "TRANSIENT_HTTP_STATUSES",
    "ErrorAction",
    "error_action",
]


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


TRANSIENT_HTTP_STATUSES = frozenset({502, 503, 504})


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
        if code in _TRANSIENT_CODES or code in {str(s) for s in TRANSIENT_HTTP_STATUSES}:
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
    if http_status in TRANSIENT_HTTP_STATUSES:
        return ErrorAction.RETRY
    return ErrorAction.STOP
