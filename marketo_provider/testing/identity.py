"""The identity service: access tokens, their life, and checking the token a call carries."""

from __future__ import annotations

import math
import secrets
import uuid
from typing import Any

from marketo_provider.testing import spec
from marketo_provider.testing.clock import Clock
from marketo_provider.testing.config import SandboxConfig
from marketo_provider.testing.errors import HTTPError, SandboxError


class Identity:
    """Issues tokens to the configured client and checks them.

    Asking again while a token is valid returns the same token with its remaining life, as
    Marketo does. Not thread-safe on its own: :class:`MarketoBackend` serialises calls.
    """

    def __init__(self, config: SandboxConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.tokens: dict[str, float] = {}  # token -> expiry
        self.current_token: str | None = None

    def issue_token(
        self, client_id: str | None, client_secret: str | None, grant_type: str | None
    ) -> dict[str, Any]:
        if grant_type != spec.GRANT_TYPE:
            raise HTTPError(
                400,
                {"error": "invalid_request", "error_description": f"grant_type must be {spec.GRANT_TYPE}"},
            )
        if not (
            client_id
            and client_secret
            and secrets.compare_digest(client_id.encode(), self.config.client_id.encode())
            and secrets.compare_digest(client_secret.encode(), self.config.client_secret.encode())
        ):
            raise HTTPError(401, {"error": "invalid_client", "error_description": "Bad client credentials"})
        now = self.clock.now()
        token = self.current_token
        if token is None or self.tokens.get(token, 0.0) <= now:
            token = f"{uuid.uuid4()}:ab"
            self.tokens[token] = now + self.config.token_life
            self.current_token = token
        return {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": max(0, math.floor(self.tokens[token] - now)),
            "scope": self.config.scope,
        }

    def check_token(self, token: str | None) -> None:
        expires = self.tokens.get(token) if token else None
        if expires is None:
            raise SandboxError("601")
        if expires <= self.clock.now():
            raise SandboxError("602")

    def expire_tokens(self) -> None:
        """Make every issued token expire now (the next call gets 602)."""
        now = self.clock.now()
        for token in self.tokens:
            self.tokens[token] = now


__all__ = ["Identity"]
