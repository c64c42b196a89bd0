"""Whether a call that failed is made again, and after how long a pause."""

from __future__ import annotations

import random

from marketo_provider.api.errors import (
    MarketoConcurrencyError,
    MarketoRateLimitError,
    MarketoTransientError,
    MarketoTransportError,
)
from marketo_provider.api.limits import RATE_LIMIT_WINDOW_SECONDS

__all__ = [
    "is_retryable",
    "retry_wait_seconds",
]


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
