"""The sandbox's knobs, with Marketo's documented limits as defaults."""

from __future__ import annotations

from dataclasses import dataclass

from marketo_provider.testing import spec


@dataclass
class SandboxConfig:
    """The sandbox's knobs. Defaults follow Marketo's documented limits."""

    client_id: str = "sandbox-client-id"
    client_secret: str = "sandbox-client-secret"
    token_life: float = spec.TOKEN_LIFE_SECONDS
    queued_seconds: float = 0.2
    import_seconds: float = 0.5
    max_importing: int = spec.MAX_IMPORTING_JOBS
    max_queued: int = spec.MAX_QUEUED_JOBS
    max_file_bytes: int = spec.MAX_IMPORT_FILE_BYTES
    max_body_bytes: int = spec.MAX_BODY_BYTES
    rate_limit: bool = True
    rate_limit_calls: int = spec.RATE_LIMIT_CALLS
    rate_limit_window: float = spec.RATE_LIMIT_WINDOW_SECONDS
    concurrency_limit: bool = True
    max_concurrent: int = spec.CONCURRENCY_LIMIT
    daily_quota: int | None = None
    partitions: tuple[str, ...] = ("Default",)
    scope: str = "apiuser@sandbox.marketo"


__all__ = ["SandboxConfig"]
