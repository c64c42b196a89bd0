"""MarketoBulkImportTrigger: waits on an import's batches in the triggerer."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from marketo_provider.api import redact
from marketo_provider.hooks.marketo import MarketoHook
from marketo_provider.importing import ImportState, Wait, WaitEnd, WaitFor, apoll
from marketo_provider.importing.batches import past_deadline


class MarketoBulkImportTrigger(BaseTrigger):
    """Polls an import's batches with non-blocking HTTP and yields exactly one event.

    Events are ``{"event": ..., "import_state": ..., "message": ...}``: ``done`` when every batch
    is done (waiting for completion); ``slot_free`` when a queue slot may have freed (waiting for a
    slot: one of the batches finished, the first moved from Queued to Importing, or ``wake_at``
    passed); ``timeout`` when the import's deadline passed; ``error`` when polling failed (the
    message says why). ``import_state`` is the import's state with what the polls learnt (each
    batch's final status, the calls made), for the resumed task.

    Each poll asks about the earliest unfinished batches only, and never about a finished one
    again. All state is in the constructor's arguments, so a restarted triggerer carries on where
    it was; it holds batch ids and the connection id, never a token. The triggers of one process
    share their HTTP client, TLS context, connection settings and tokens.

    :param import_state: the import's state (:class:`~marketo_provider.importing.ImportState` JSON).
    :param wait: ``completion`` (every batch done) or ``queue_slot`` (room in Marketo's queue).
    :param marketo_conn_id: the Marketo connection.
    :param poll_interval: seconds between polls.
    :param wake_at: waiting for a slot: absolute time (epoch seconds) to yield ``slot_free`` anyway.
    """

    def __init__(
        self,
        import_state: dict[str, Any],
        wait: str = WaitFor.COMPLETION.value,
        marketo_conn_id: str = MarketoHook.default_conn_name,
        poll_interval: float = 30.0,
        wake_at: float | None = None,
    ) -> None:
        super().__init__()
        self.import_state = import_state
        self.wait = WaitFor(wait).value
        self.marketo_conn_id = marketo_conn_id
        self.poll_interval = float(poll_interval)
        self.wake_at = wake_at

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "import_state": self.import_state,
                "wait": self.wait,
                "marketo_conn_id": self.marketo_conn_id,
                "poll_interval": self.poll_interval,
                "wake_at": self.wake_at,
            },
        )

    def _event(self, end: WaitEnd, state: ImportState, message: str | None = None) -> TriggerEvent:
        return TriggerEvent({"event": end.value, "import_state": state.to_json(), "message": message})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        # Poll after a pause, not at once: batches just submitted are not done yet. The first pause
        # is spread over the second half of the interval and comes before any other work, so the
        # triggers a restarted triggerer starts together neither hold the event loop at once nor
        # poll in step. Whatever the first poll finds, no event fires sooner than one interval
        # after the start: a task resumed within moments of deferring races the scheduler's own
        # bookkeeping of the worker that deferred, and loses (docs/troubleshooting.rst).
        hold_until = time.monotonic() + self.poll_interval
        finished = self.import_state.get("finished") or {}
        deadline = float(self.import_state["deadline"])
        wait = Wait(WaitFor(self.wait), deadline, self.wake_at, finished_before=len(finished))
        await asyncio.sleep(wait.pause(self.poll_interval * random.uniform(0.5, 1.0), time.time()))
        state = ImportState.from_json(self.import_state)
        hook = MarketoHook(self.marketo_conn_id)
        hook.deadline = deadline  # every poll, its answer included, ends by the import's deadline
        while True:
            calls_before = hook.api_calls
            message: str | None = None
            try:
                head = await apoll(state, hook.aget_import_status)
            except Exception as exc:
                end: WaitEnd | None = WaitEnd.TIMEOUT if past_deadline(exc) else WaitEnd.ERROR
                message = redact(f"polling Marketo batches of {state.name} failed: {exc}")
            else:
                self.log.info("%s", state.progress(head))
                end = wait.check(state, head, time.time())
                if end is WaitEnd.TIMEOUT:
                    message = f"deadline passed with batches still running: {state.pending_batch_ids}"
            state.api_calls += hook.api_calls - calls_before
            if end is not None:
                await _until(hold_until)
                yield self._event(end, state, message)
                return
            await asyncio.sleep(wait.pause(self.poll_interval, time.time()))


async def _until(monotonic_time: float) -> None:
    """Sleep until ``time.monotonic()`` reaches the given time (at once if it has)."""
    await asyncio.sleep(max(0.0, monotonic_time - time.monotonic()))
