"""The instance-wide call limits: 100 calls per 20 s (606), 10 at once (615), the daily quota (607)."""

from __future__ import annotations

from collections import deque

from marketo_provider.testing.clock import Clock
from marketo_provider.testing.config import SandboxConfig
from marketo_provider.testing.errors import SandboxError


class CallLimits:
    """Counts REST calls (identity calls are not counted). Not thread-safe on its own:
    :class:`MarketoBackend` serialises calls."""

    def __init__(self, config: SandboxConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.window: deque[float] = deque()  # start times of the calls in the last window
        self.calls_today = 0
        self.in_flight = 0

    def enter(self) -> None:
        """Count a call that starts now, or refuse it with the limit it breaks."""
        config = self.config
        if config.concurrency_limit and self.in_flight >= config.max_concurrent:
            raise SandboxError("615")
        now = self.clock.now()
        while self.window and self.window[0] <= now - config.rate_limit_window:
            self.window.popleft()
        if config.rate_limit and len(self.window) >= config.rate_limit_calls:
            raise SandboxError(
                "606",
                f"Max rate limit '{config.rate_limit_calls}' exceeded with in '{config.rate_limit_window:g}' secs",
            )
        if config.daily_quota is not None and self.calls_today >= config.daily_quota:
            raise SandboxError("607")
        self.window.append(now)
        self.calls_today += 1
        self.in_flight += 1

    def exit(self) -> None:
        """A counted call has been answered."""
        self.in_flight -= 1

    def reset(self) -> None:
        """Start the rate window and the daily count afresh (calls under way stay counted as such)."""
        self.window.clear()
        self.calls_today = 0


__all__ = ["CallLimits"]
