"""The errors this provider raises about Marketo, which of them a retry can fix, what to do about
each of Marketo's codes, and redaction of anything from a server before it is shown."""

from __future__ import annotations

import enum
import random
import re

from marketo_provider.api.limits import RATE_LIMIT_WINDOW_SECONDS


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
