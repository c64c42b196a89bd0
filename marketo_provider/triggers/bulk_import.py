"""MarketoBulkImportTrigger: waits on an import's batches in the triggerer."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from marketo_provider._compat import conf
from marketo_provider.api.errors import error_carried
from marketo_provider.api.redaction import redact
from marketo_provider.hooks import MarketoHook
from marketo_provider.importing import ImportState, Wait, WaitEnd, WaitFor, apoll, past_deadline
from marketo_provider.importing.changes import renew_lease

__all__ = [
    "MarketoBulkImportTrigger",
    "exit_window_seconds",
]


def exit_window_seconds() -> float:
    """How long after a task defers Airflow may still be taking in the exit of the worker that
    deferred it. A trigger event inside this window races that bookkeeping: the scheduler reads
    the worker's clean exit as the resumed attempt's end and fails it (apache/airflow#66374,
    #67287, #72716; 3.2.2 and later survive it only while the task is not yet running). A worker
    notices its task's exit at its next heartbeat wait, up to ``[workers] min_heartbeat_interval``
    later (5 s by default, on every Airflow 3 line), and the scheduler reads it on a later loop:
    twice that interval allows for both."""
    return 2.0 * float(conf.getfloat("workers", "min_heartbeat_interval", fallback=5.0))


class MarketoBulkImportTrigger(BaseTrigger):
    """Polls an import's batches with non-blocking HTTP and yields exactly one event.

    Events are ``{"event": ..., "import_state": ..., "message": ...}``: ``done`` when every batch
    is done (waiting for completion); ``slot_free`` when it is time to submit more (waiting for a
    slot: the import's batches drained to the low-water mark, or, when other integrations' jobs
    fill the queue, one of the batches finished, the first moved from Queued to Importing, or
    ``wake_at`` passed); ``timeout`` when the import's deadline passed; ``error`` when polling
    failed (the message says why). ``import_state`` is the import's state with what the polls
    learnt (each batch's final status, how fast the batches drain, the calls made), for the
    resumed task. No event fires within :func:`exit_window_seconds` of the trigger's start,
    whatever ``poll_interval``.

    Each poll asks about the earliest unfinished batches only, and never about a finished one
    again. All state is in the constructor's arguments, so a restarted triggerer carries on where
    it was; it holds batch ids and the connection id, never a token. The triggers of one process
    share their HTTP client, TLS context, connection settings and tokens.

    :param import_state: the import's state (:class:`~marketo_provider.importing.ImportState` JSON).
    :param wait: ``completion`` (every batch done) or ``queue_slot`` (room in Marketo's queue).
    :param marketo_conn_id: the Marketo connection.
    :param poll_interval: seconds between polls.
    :param wake_at: waiting for a slot: absolute time (epoch seconds) to yield ``slot_free`` anyway.
    :param lease: ``changed_rows_only``: the state's lock the import holds (its folder, connection,
        owner and lease seconds), renewed while the trigger waits so no other run takes it over.
    """

    def __init__(
        self,
        import_state: dict[str, Any],
        wait: str = WaitFor.COMPLETION.value,
        marketo_conn_id: str = MarketoHook.default_conn_name,
        poll_interval: float = 30.0,
        wake_at: float | None = None,
        lease: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.lease = lease
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
                "lease": self.lease,
            },
        )

    def _event(
        self,
        end: WaitEnd,
        state: ImportState,
        message: str | None = None,
        error: dict[str, Any] | None = None,
    ) -> TriggerEvent:
        event = {"event": end.value, "import_state": state.to_json(), "message": message}
        if error is not None:
            event["error"] = error  # the task raises the same class again
        return TriggerEvent(event)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        # Poll after a pause, not at once: batches just submitted are not done yet. The first pause
        # is spread over the second half of the interval and comes before any other work, so the
        # triggers a restarted triggerer starts together neither hold the event loop at once nor
        # poll in step. Whatever the polls find, no event fires inside Airflow's window for the
        # exit of the worker that deferred: a task resumed within it loses a race in the
        # scheduler (docs/troubleshooting.rst). The wait for a slot allows for that hold.
        window = exit_window_seconds()
        hold_until = time.monotonic() + window
        finished = self.import_state.get("finished") or {}
        deadline = float(self.import_state["deadline"])
        wait = Wait(
            WaitFor(self.wait),
            deadline,
            self.wake_at,
            finished_before=len(finished),
            poll_interval=self.poll_interval,
            hold_until=time.time() + window,
        )
        await asyncio.sleep(wait.pause(self.poll_interval * random.uniform(0.5, 1.0), time.time()))
        state = ImportState.from_json(self.import_state)
        renewed = time.monotonic()
        hook = MarketoHook(self.marketo_conn_id)
        hook.deadline = deadline  # every poll, its answer included, ends by the import's deadline
        while True:
            calls_before = hook.api_calls
            message: str | None = None
            error: dict[str, Any] | None = None
            try:
                head = await apoll(state, hook.aget_import_status)
            except Exception as exc:
                end: WaitEnd | None = WaitEnd.TIMEOUT if past_deadline(exc) else WaitEnd.ERROR
                message = redact(f"polling Marketo batches of {state.name} failed: {exc}")
                error = error_carried(exc)
            else:
                self.log.info("%s", state.progress(head))
                end = wait.check(state, head, time.time())
                if end is WaitEnd.TIMEOUT:
                    message = f"deadline passed with batches still running: {state.pending_batch_ids}"
            state.api_calls += hook.api_calls - calls_before
            if end is not None:
                await _until(hold_until)
                if end is WaitEnd.SLOT_FREE:
                    state.woken_at = time.time()  # the task measures its way back from here
                yield self._event(end, state, message, error)
                return
            if self.lease and time.monotonic() - renewed >= float(self.lease["seconds"]) / 3:
                renewed = time.monotonic()
                try:
                    await asyncio.to_thread(renew_lease, self.lease)
                except Exception as exc:
                    self.log.warning("The state's lock could not be renewed: %s", redact(str(exc)))
            await asyncio.sleep(wait.pause(self.poll_interval, time.time()))


async def _until(monotonic_time: float) -> None:
    """Sleep until ``time.monotonic()`` reaches the given time (at once if it has)."""
    await asyncio.sleep(max(0.0, monotonic_time - time.monotonic()))
