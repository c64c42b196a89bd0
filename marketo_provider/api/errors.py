"""The errors this provider raises about Marketo, which of them a retry can fix, what to do about
each of Marketo's codes, and redaction of anything from a server before it is shown."""

from __future__ import annotations

import enum
import random
import re
import threading
from collections import deque
from collections.abc import Iterable, Iterator

from marketo_provider.api.limits import MAX_SERVER_MESSAGE_CHARS, RATE_LIMIT_WINDOW_SECONDS


class MarketoError(Exception):
    """Base class of every error this provider raises about Marketo. Its message never shows a
    secret this process holds (:func:`remember_secret`) nor the credentials of a URI."""

    #: Whether trying again (an Airflow task retry) cannot help: the input or the set-up is wrong.
    permanent = False

    def __init__(self, *args: object) -> None:
        super().__init__(*(hide_secrets(a) if isinstance(a, str) else a for a in args))


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
        self.message = server_text(message)
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


class MarketoAnswerError(MarketoAPIError):
    """Marketo's answer to a call is not what Adobe documents (not its envelope, a count that is not
    a whole number of 0 or more, another batch than the one asked about) or is larger than the call
    reads. ``purpose`` names the call."""

    def __init__(self, purpose: str, problem: str) -> None:
        self.purpose = purpose
        self.code = "answer"
        self.message = problem
        self.hint = ""
        call = purpose if purpose.startswith("the ") else f"the {purpose}"
        MarketoError.__init__(self, f"Marketo's answer to {call} {problem}")


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
    DEADLINE = "deadline"  # sent; the import's deadline passed before the whole answer came
    DEADLINE_PASSED = "deadline_passed"  # the import's deadline had passed: nothing was sent

    @property
    def sent(self) -> bool:
        """Whether Marketo may have received (and acted on) the request."""
        return self in (TransportFailure.TIMEOUT, TransportFailure.BROKEN, TransportFailure.DEADLINE)

    @property
    def permanent(self) -> bool:
        """Failures no retry fixes: a wrong host, port, scheme or certificate."""
        return self in (TransportFailure.REFUSED, TransportFailure.HOST_UNKNOWN, TransportFailure.TLS)

    @property
    def retryable(self) -> bool:
        """Whether the hook may send the call again after a pause (never once the deadline passed)."""
        return not self.permanent and self not in (
            TransportFailure.DEADLINE,
            TransportFailure.DEADLINE_PASSED,
        )


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
    TransportFailure.DEADLINE: "the import's deadline (its timeout) passed before the whole answer came",
    TransportFailure.DEADLINE_PASSED: "the import's deadline (its timeout) had passed; the call was not sent",
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
        return exc.failure.retryable
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


# The user information of a URI (``s3://KEY:SECRET@bucket/``): everything between ``//`` and ``@``
# within the authority.
_URI_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#@\s'\"]+@")


class _Secrets:
    """The literal secrets this process holds (client secrets, access tokens), newest first, so
    any text shown or stored can be cleaned of them. Bounded: a long-lived triggerer renews tokens
    every hour; the oldest are forgotten first."""

    MOST = 256
    SHORTEST = 6  # shorter values would blank out ordinary words

    def __init__(self) -> None:
        self._values: deque[str] = deque(maxlen=self.MOST)
        self._lock = threading.Lock()

    def add(self, value: str | None) -> None:
        if not value or len(value) < self.SHORTEST:
            return
        with self._lock:
            if value in self._values:
                return
            self._values.appendleft(value)

    def all(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._values)


_SECRETS = _Secrets()


def remember_secret(value: str | None) -> None:
    """Have every later :func:`redact` and :func:`hide_secrets` (every message of this provider's
    errors, the log filter, server text stored in results) replace ``value`` wherever it stands."""
    _SECRETS.add(value)


def known_secrets() -> tuple[str, ...]:
    """The literal secrets this process holds, longest first (so a secret inside another is never
    left half-shown)."""
    return tuple(sorted(_SECRETS.all(), key=len, reverse=True))


def uri_credentials(uri: str) -> tuple[str, ...]:
    """The user name and password written in a URI (``s3://KEY:SECRET@bucket/``), if any."""
    match = _URI_CREDENTIALS.search(uri) if "://" in uri else None
    if match is None:
        return ()
    userinfo = match.group(0)[len(match.group(1)) : -1]
    return tuple(piece for piece in userinfo.split(":", 1) if piece)


def mask_uri_credentials(text: str) -> str:
    """``text`` with the credentials of every URI in it masked: ``s3://***@bucket/x/``."""
    return _URI_CREDENTIALS.sub(r"\1***@", text) if "://" in text else text


def hide_secrets(text: str, *secrets: str | None) -> str:
    """``text`` (ours, e.g. an error message naming a location) without URI credentials or the
    literal secrets this process holds."""
    text = mask_uri_credentials(text)
    for secret in (*secrets, *known_secrets()):
        if secret and secret in text:
            text = text.replace(secret, "***")
    return text


def redact(text: str, *secrets: str | None) -> str:
    """Text from a server or a library with anything that looks like a token or a secret replaced:
    bearer tokens, ``access_token=``/``client_secret=`` values, Authorization headers, URI
    credentials, the given ``secrets`` and every secret this process holds, wherever they stand."""
    text = hide_secrets(text, *secrets)
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


def server_text(text: object, most: int = MAX_SERVER_MESSAGE_CHARS) -> str:
    """Text from a server as it may be shown or stored: redacted first (a cut never leaves half a
    secret), then cut to ``most`` characters."""
    clean = redact(str(text))
    return clean if len(clean) <= most else clean[: most - 1] + "…"


def without_secrets(chunks: Iterable[bytes], secrets: Iterable[str] | None = None) -> Iterator[bytes]:
    """A stream of bytes (a result file as it arrives) with every literal secret this process holds
    (or the given ``secrets``) replaced by ``***``, also where one spans two chunks."""
    found = [s.encode() for s in (known_secrets() if secrets is None else secrets) if s]
    if not found:
        yield from chunks
        return
    keep = max(len(s) for s in found) - 1  # the most of a secret that can hide at a chunk's end
    tail = b""
    for chunk in chunks:
        data = tail + chunk if tail else chunk
        for secret in found:
            if secret in data:
                data = data.replace(secret, b"***")
        cut = max(0, len(data) - keep)
        if cut:
            yield data[:cut]
        tail = data[cut:]
    if tail:
        yield tail
