"""The errors this provider raises about Marketo, each saying whether a retry can help
(``permanent``), and the named error for each of Marketo's codes. A message never shows a secret
(:mod:`marketo_provider.api.redaction`)."""

from __future__ import annotations

import enum
from typing import Any

from marketo_provider.api.codes import ERROR_HINTS, ErrorAction, error_action
from marketo_provider.api.redaction import hide_secrets, redact, server_text

__all__ = [
    "MarketoAPIError",
    "MarketoAnswerError",
    "MarketoAuthError",
    "MarketoConcurrencyError",
    "MarketoConnectionConfigError",
    "MarketoError",
    "MarketoFileTooLargeError",
    "MarketoNotFoundError",
    "MarketoQueueFullError",
    "MarketoQuotaExceededError",
    "MarketoRateLimitError",
    "MarketoSubmitOutcomeUnknownError",
    "MarketoTokenError",
    "MarketoTransientError",
    "MarketoTransportError",
    "MarketoValueError",
    "TransportFailure",
    "error_carried",
    "error_for",
    "error_from_carried",
]


class MarketoError(Exception):
    """Base class of every error this provider raises about Marketo. Its message never shows a
    secret this process holds (:func:`~marketo_provider.api.redaction.remember_secret`) nor the credentials of a URI."""

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


def error_carried(exc: BaseException) -> dict[str, Any] | None:
    """What a trigger's event carries of one of our errors (JSON: its class's name and its plain
    attributes), so the task it resumes raises the same class; None for any other error."""
    if not isinstance(exc, MarketoError):
        return None
    cls = next(
        c
        for c in type(exc).__mro__
        if c.__module__.startswith("marketo_provider.") and c.__module__ != "marketo_provider.airflow_errors"
    )
    attributes = {
        name: value.value if isinstance(value, enum.Enum) else value
        for name, value in vars(exc).items()
        if isinstance(value, (str, int, float, bool, enum.Enum)) or value is None
    }
    return {"class": cls.__name__, "attributes": attributes}


def error_from_carried(carried: Any, message: str) -> MarketoError | None:
    """The error a trigger's event carried (:func:`error_carried`) with ``message``: an instance of
    the same class, found by name among this provider's error classes only (never imported from
    what the event says), with its attributes; None when the event carries none we know."""
    if not isinstance(carried, dict) or not isinstance(carried.get("class"), str):
        return None
    cls = _error_classes().get(carried["class"])
    if cls is None:
        return None
    error = cls.__new__(cls)
    error.args = (message,)
    attributes = carried.get("attributes")
    for name, value in attributes.items() if isinstance(attributes, dict) else ():
        if (
            isinstance(name, str)
            and not name.startswith("__")
            and not isinstance(getattr(cls, name, None), property)
        ):
            setattr(error, name, value)
    if isinstance(error, MarketoTransportError):
        try:
            error.failure = TransportFailure(getattr(error, "failure", None))
        except ValueError:
            return None
    return error


def _error_classes() -> dict[str, type[MarketoError]]:
    """This provider's error classes by name (the classes a module of it defines)."""
    found: dict[str, type[MarketoError]] = {}
    todo: list[type[MarketoError]] = [MarketoError]
    while todo:
        cls = todo.pop()
        if (
            cls.__module__.startswith("marketo_provider.")
            and cls.__module__ != "marketo_provider.airflow_errors"
        ):
            found.setdefault(cls.__name__, cls)
        todo.extend(cls.__subclasses__())
    return found
