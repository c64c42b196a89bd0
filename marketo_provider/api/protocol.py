"""How a call is made, free of I/O: a call and its answer described (:class:`Call`,
:class:`Answer`), and :func:`call_flow` (token, renewal on 601/602, what may be resent), a
generator the hook's steps drive; the identity call. The answers are read in :mod:`.answers`."""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar
from urllib.parse import urlsplit

from marketo_provider.api.codes import GATEWAY_AFTER_SEND_CODES
from marketo_provider.api.connection import ConnectionSettings
from marketo_provider.api.errors import (
    MarketoSubmitOutcomeUnknownError,
    MarketoTokenError,
    MarketoTransientError,
    MarketoTransportError,
)
from marketo_provider.api.limits import MAX_JSON_ANSWER_BYTES

__all__ = [
    "Answer",
    "Call",
    "Flow",
    "NeedToken",
    "Upload",
    "call_flow",
    "token_call",
]

T = TypeVar("T")


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
    max_bytes: int = MAX_JSON_ANSWER_BYTES  # the most an answer held in memory may take

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
