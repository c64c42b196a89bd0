"""Marketo's limits, and how a client keeps within them: file size, the import queue, the rate
window, token life, timeouts; the pacing of calls, backoff waits and the wait after a full queue."""

from __future__ import annotations

import random
import threading
from collections import deque

__all__ = [
    "CLIENT_CALLS_PER_WINDOW",
    "CONNECT_TIMEOUT_SECONDS",
    "DEFAULT_HTTP_TIMEOUT_SECONDS",
    "MAX_DESCRIBE_ANSWER_BYTES",
    "MAX_IMPORTING_JOBS",
    "MAX_IMPORT_FILE_BYTES",
    "MAX_JSON_ANSWER_BYTES",
    "MAX_QUEUED_JOBS",
    "MAX_RESULT_FILE_BYTES",
    "MAX_SERVER_MESSAGE_CHARS",
    "RATE_LIMIT_WINDOW_SECONDS",
    "TOKEN_LIFE_SECONDS",
    "TOKEN_RENEW_MARGIN_SECONDS",
    "UPLOAD_READ_TIMEOUT_FLOOR_SECONDS",
    "CallPacer",
    "queue_full_wait_seconds",
    "token_renew_at",
]

# Marketo takes import files *under* 10 MB (HTTP 413 above). 10,000,000 bytes is below both
# readings of "10 MB".
MAX_IMPORT_FILE_BYTES = 10_000_000


# Per instance: 2 jobs importing at once, 10 in the queue including those (error 1016 above).
MAX_IMPORTING_JOBS = 2


MAX_QUEUED_JOBS = 10


# 100 calls in any 20 second window (606), for the whole instance. A client process keeps its own
# calls to a share of that, so the instance's other integrations keep the rest.
RATE_LIMIT_WINDOW_SECONDS = 20.0


CLIENT_CALLS_PER_WINDOW = 80


# A new token lives one hour; renew a little before it runs out so a request never carries a token
# that expires on the way.
TOKEN_LIFE_SECONDS = 3600


TOKEN_RENEW_MARGIN_SECONDS = 60


# An upload may take a while to be read on Marketo's side; never give it less than this to answer.
UPLOAD_READ_TIMEOUT_FLOOR_SECONDS = 300.0


# The most bytes each kind of answer may take; a longer answer ends the call with an error naming it.
# Create, status and identity answers hold one small entry: a megabyte is far beyond any real one.
MAX_JSON_ANSWER_BYTES = 1024 * 1024


# A describe answer lists every field of an object (a lead has a few hundred).
MAX_DESCRIBE_ANSWER_BYTES = 16 * 1024 * 1024


# A batch's failures or warnings file repeats rows of a part (under 10 MB) with a reason each; it is
# streamed to a temporary file, never held in memory.
MAX_RESULT_FILE_BYTES = 1024 * 1024 * 1024


# Text a server sends (an error's or a status's message) is kept to this many characters.
MAX_SERVER_MESSAGE_CHARS = 300


# Connecting takes at most this long (a longer wait means the host is unreachable).
CONNECT_TIMEOUT_SECONDS = 10.0


DEFAULT_HTTP_TIMEOUT_SECONDS = 60.0


def queue_full_wait_seconds(poll_interval: float, refusals: int) -> float:
    """How long to wait before trying again after ``refusals`` 1016 answers in a row: other
    integrations' jobs fill the queue, so every try is a call they pay for too. The wait doubles
    up to eight poll intervals, with jitter so that several imports do not try in step."""
    return poll_interval * min(2 ** max(refusals - 1, 0), 8) * random.uniform(1.0, 1.5)


class CallPacer:
    """Keeps one process's calls to an instance under ``calls`` per ``window`` seconds, so its
    imports never run into 606 on their own. ``reserve`` returns how long to wait before sending;
    waiting is the caller's (a thread sleeps, a coroutine awaits)."""

    def __init__(
        self, calls: int = CLIENT_CALLS_PER_WINDOW, window: float = RATE_LIMIT_WINDOW_SECONDS
    ) -> None:
        from collections import deque

        self.calls = calls
        # A little longer than Marketo's window: calls sent exactly a window apart can arrive closer.
        self.window = window * 1.05
        self._times: deque[float] = deque()  # send times, reserved ones included, in order
        self._lock = threading.Lock()

    def reserve(self, now: float) -> float:
        with self._lock:
            times = self._times
            while times and times[0] <= now - self.window:
                times.popleft()
            at = now if len(times) < self.calls else times[-self.calls] + self.window
            at = max(at, times[-1] if times else now)
            times.append(at)
            return at - now


def token_renew_at(now: float, expires_in: float) -> float:
    """When to ask for a new token. Marketo hands back the same token until it expires, so near
    the end of its life renewal is tried at halving intervals instead of on every request."""
    return now + expires_in - min(TOKEN_RENEW_MARGIN_SECONDS, expires_in / 2)
