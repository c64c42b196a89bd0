"""How the sandbox refuses a call: Marketo's error envelope, or a bare HTTP status."""

from __future__ import annotations

from typing import Any

from marketo_provider.testing.spec import ERROR_MESSAGES


class SandboxError(Exception):
    """An error answered in Marketo's envelope: HTTP 200, ``success: false``, a string code."""

    def __init__(self, code: str, message: str | None = None) -> None:
        self.code = str(code)
        self.message = message or ERROR_MESSAGES.get(self.code, "Error")
        super().__init__(f"{self.code}: {self.message}")


class HTTPError(Exception):
    """An answer outside Marketo's envelope: a plain HTTP status (401 identity, 413, 404 file)."""

    def __init__(
        self, status: int, body: dict[str, Any] | str = "", headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers


# What Marketo's front end answers a body over its limit with.
TOO_LARGE_PAGE = "<html><body><h1>413 Request Entity Too Large</h1></body></html>"


class BodyTooLarge(HTTPError):
    """A request body over the limit, refused before the rest of it is read: HTTP 413, and the
    connection is closed rather than kept open to drain what the client still sends."""

    def __init__(self) -> None:
        super().__init__(413, TOO_LARGE_PAGE, {"connection": "close"})


__all__ = ["TOO_LARGE_PAGE", "BodyTooLarge", "HTTPError", "SandboxError"]
