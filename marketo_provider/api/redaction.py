"""The secrets this process holds, and text cleaned of them before it is shown or stored:
messages, server text, result files as they stream."""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Iterable, Iterator

from marketo_provider.api.limits import MAX_SERVER_MESSAGE_CHARS

__all__ = [
    "hide_secrets",
    "known_secrets",
    "mask_uri_credentials",
    "redact",
    "remember_secret",
    "server_text",
    "uri_credentials",
    "without_secrets",
]

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
