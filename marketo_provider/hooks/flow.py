"""One flow for both drivers: the steps between a flow of :mod:`marketo_provider.api` and the wire.

:func:`~marketo_provider.api.call_flow` asks for a token and sends a call; :meth:`CallDriver.steps`
turns what it asks for into steps, as httpx's ``auth_flow`` does: a token comes from the process's
cache or from one identity call at a time (:class:`Locked`), a call is sent after its pacing pause
(:class:`Pause`) and only before the deadline (:class:`Send`), a new token is masked
(:class:`Mask`). A driver only performs the steps (send, sleep, take a lock, mask): the sync one
(``sync_driver``) with requests, ``time.sleep`` and a thread lock, the async one
(``async_driver``) with httpx, ``asyncio.sleep`` and an asyncio lock. Around a whole flow, token
fetch included, is one retry policy (tenacity) for both.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import tenacity
from airflow.sdk import BaseHook

from marketo_provider.api import ConnectionSettings, MarketoError, MarketoTransportError
from marketo_provider.api.answers import read_token_answer
from marketo_provider.api.errors import TransportFailure
from marketo_provider.api.protocol import Answer, Call, Flow, NeedToken, token_call
from marketo_provider.api.redaction import remember_secret
from marketo_provider.api.retries import is_retryable, retry_wait_seconds
from marketo_provider.hooks.shared import TOKENS, pacer

T = TypeVar("T")


@dataclass(frozen=True)
class Pause:
    """Wait ``seconds`` before the next call (the process's share of Marketo's rate window)."""

    seconds: float


@dataclass(frozen=True)
class Send:
    """Send ``call`` and hand back its :class:`~marketo_provider.api.Answer`, the whole answer by
    ``deadline`` (epoch seconds; ``left`` seconds away when the call was checked)."""

    call: Call
    deadline: float | None = None
    left: float | None = None


@dataclass(frozen=True)
class Mask:
    """Mask ``secret`` (a new access token) in Airflow's task logs."""

    secret: str = field(repr=False)


@dataclass(frozen=True)
class Locked:
    """Perform ``steps`` holding the process's token lock for ``key`` (a client's identity URL and
    id) and hand back what they return: one identity call per client at a time, the other callers
    waiting for the token it brings."""

    key: tuple[str, str]
    steps: Steps[str]


Step = Pause | Send | Mask | Locked


Steps = Generator[Step, Any, T]


class Walk(Generic[T]):
    """A driver's walk through steps: each step it iterates over is performed with
    :meth:`perform` (:meth:`aperform` on the event loop), which hands what it gave back to the
    steps, or throws in how it failed; :attr:`result` is what the steps end with."""

    result: T

    def __init__(self, steps: Steps[T]) -> None:
        self._steps = steps
        self._reply: Any = None
        self._failure: Exception | None = None

    def __iter__(self) -> Iterator[Step]:
        while True:
            reply, failure, self._reply, self._failure = self._reply, self._failure, None, None
            try:
                step = self._steps.send(reply) if failure is None else self._steps.throw(failure)
            except StopIteration as stop:
                self.result = stop.value
                return
            yield step

    def perform(self, perform: Callable[[Step], Any], step: Step) -> None:
        try:
            self._reply = perform(step)
        except Exception as exc:
            self._failure = exc

    async def aperform(self, performing: Awaitable[Any]) -> None:
        try:
            self._reply = await performing
        except Exception as exc:
            self._failure = exc


class CallDriver(BaseHook):
    """What the hook's two drivers share: the steps of every call, the retry policy around a whole
    flow, and the count of calls sent. :class:`~marketo_provider.hooks.marketo.MarketoHook` sets the
    attributes and reads the connection."""

    max_attempts: int
    max_retry_seconds: float
    retry_base_seconds: float
    rate_limit_wait_seconds: float
    calls_per_window: int | None
    api_calls: int
    deadline: float | None

    @property
    def settings(self) -> ConnectionSettings:
        raise NotImplementedError

    async def aget_settings(self) -> ConnectionSettings:
        raise NotImplementedError

    def steps(self, flow: Flow[T], settings: ConnectionSettings) -> Steps[T]:
        """Drive ``flow`` to its end, turning what it asks for into steps. A step's failure (one of
        ours) is thrown into the flow, which decides what it means (renew the token, resend or
        not); a streamed answer is closed once the flow has read it."""
        try:
            step = next(flow)
            while True:
                try:
                    if isinstance(step, NeedToken):
                        reply: Any = yield from self._token(settings, step.stale)
                    else:
                        reply = yield from self._send(step)
                except MarketoError as exc:
                    step = flow.throw(exc)
                    continue
                try:
                    step = flow.send(reply)
                finally:
                    if isinstance(reply, Answer) and reply.chunks is not None:
                        reply.chunks.close()
        except StopIteration as stop:
            return stop.value

    def _token(self, settings: ConnectionSettings, stale: str | None) -> Steps[str]:
        """A valid access token: from the process's cache, or one identity call at a time."""
        if token := _cached_token(settings, stale):
            return token
        return (yield Locked(settings.cache_key, self._new_token(settings)))

    def _new_token(self, settings: ConnectionSettings) -> Steps[str]:
        if token := _cached_token(settings, None):
            return token  # another caller fetched it while this one waited for the lock
        started = time.monotonic()
        answer = yield from self._send(token_call(settings))
        fetched = read_token_answer(answer, started, settings.conn_id)
        yield Mask(fetched.access_token)
        remember_secret(fetched.access_token)
        TOKENS.store(settings.cache_key, fetched)
        return fetched.access_token

    def _send(self, call: Call) -> Steps[Answer]:
        """Send ``call`` after its pacing pause (identity calls do not count against the limit),
        unless the deadline has passed."""
        if call.token is not None and self.calls_per_window:
            paced = pacer(call.host, self.calls_per_window, self.rate_limit_wait_seconds)
            if (wait := paced.reserve(time.monotonic())) > 0:
                yield Pause(wait)
        deadline = self.deadline
        left = None if deadline is None else deadline - time.time()
        if left is not None and left <= 0:
            raise MarketoTransportError(TransportFailure.DEADLINE_PASSED, call.purpose, call.host)
        return (yield Send(call, deadline, left))

    def _count(self, call: Call) -> None:
        if call.token is not None:
            self.api_calls += 1

    def _retry_kwargs(self, *, retry: bool = True) -> dict[str, Any]:
        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            pause = retry_wait_seconds(
                exc,
                state.attempt_number,
                base=self.retry_base_seconds,
                rate_window=self.rate_limit_wait_seconds,
            )
            return pause if self.deadline is None else max(0.0, min(pause, self.deadline - time.time()))

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            self.log.warning(
                "Marketo call failed (%s); retry %d of %d in %.1f s",
                exc,
                state.attempt_number,
                self.max_attempts - 1,
                state.next_action.sleep if state.next_action else 0.0,
            )

        return {
            "retry": tenacity.retry_if_exception(is_retryable),
            "stop": tenacity.stop_after_attempt(self.max_attempts if retry else 1)
            | tenacity.stop_after_delay(self.max_retry_seconds)
            | _PastDeadline(self),
            "wait": wait,
            "before_sleep": before_sleep,
            "reraise": True,
        }


class _PastDeadline(tenacity.stop.stop_base):
    """Stop retrying once the hook's deadline has passed."""

    def __init__(self, hook: CallDriver) -> None:
        self.hook = hook

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        return self.hook.deadline is not None and time.time() >= self.hook.deadline


def _cached_token(settings: ConnectionSettings, stale: str | None) -> str | None:
    """The process's fresh token for this connection's client, after forgetting ``stale`` (a
    token Marketo just refused)."""
    if stale:
        TOKENS.forget(settings.cache_key, stale)
    return TOKENS.fresh(settings.cache_key, time.monotonic())
