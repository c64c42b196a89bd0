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

    def __init__(self, status: int, body: dict[str, Any] | str = "") -> None:
        super().__init__(status)
        self.status = status
        self.body = body


__all__ = ["HTTPError", "SandboxError"]
