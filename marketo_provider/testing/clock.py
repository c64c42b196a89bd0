"""The sandbox's time: real by default, or a manual clock a test moves by hand."""

from __future__ import annotations

import threading
import time


class Clock:
    """The sandbox's time. Real time by default; ``manual=True`` stands still until advanced.

    ``advance`` works in both modes, so a test can skip ahead without sleeping.
    """

    def __init__(self, manual: bool = False) -> None:
        self.manual = manual
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._offset if self.manual else time.monotonic() + self._offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += seconds


__all__ = ["Clock"]
