"""MarketoBulkImportTrigger: polls a set of import batches in the triggerer."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
from airflow.triggers.base import BaseTrigger, TriggerEvent

from marketo_provider.api import BatchStatus, ObjectType
from marketo_provider.hooks.marketo import MarketoHook
from marketo_provider.importing import (
    EVENT_ERROR,
    EVENT_TIMEOUT,
    MODE_COMPLETE,
    MODE_SLOT,
    log_statuses,
    should_wake,
    status_to_json,
)


def make_event(
    kind: str,
    statuses: Sequence[BatchStatus] = (),
    message: str | None = None,
    import_state: dict[str, Any] | None = None,
) -> TriggerEvent:
    """The one shape every event of this trigger has."""
    payload: dict[str, Any] = {
        "status": kind,
        "batches": [status_to_json(s) for s in statuses],
        "message": message,
    }
    if import_state is not None:
        payload["import_state"] = import_state
    return TriggerEvent(payload)


class MarketoBulkImportTrigger(BaseTrigger):
    """Polls Marketo import batches with non-blocking HTTP and yields exactly one event.

    Events (``{"status": ..., "batches": [status entries], "message": ...}``): ``complete`` when
    every batch is done; in ``slot`` mode, ``slot`` when a queue slot may have freed (one of the
    batches finished or moved from Queued to Importing, or ``wake_at`` passed); ``timeout`` when
    the absolute ``deadline`` passed; ``error`` when polling failed (the message says why).

    All state is in the constructor's arguments, so a restarted triggerer carries on where it was.
    It holds batch ids and the connection id, never a token.

    :param batch_ids: the batches to poll.
    :param object_type: ``leads``, ``program_members`` or ``custom_objects``.
    :param marketo_conn_id: the Marketo connection.
    :param custom_object_name: the custom object's API name (custom objects only).
    :param poll_interval: seconds between polls.
    :param deadline: absolute time (epoch seconds) after which a ``timeout`` event is yielded.
    :param mode: ``complete`` (wait for every batch) or ``slot`` (wait for room in the queue).
    :param wake_at: in ``slot`` mode, absolute time after which to yield ``slot`` regardless.
    :param import_state: the operator's record of submitted parts, handed back in every event so
        the resumed task knows them whatever carries the deferral's own kwargs.
    """

    def __init__(
        self,
        batch_ids: Sequence[int],
        object_type: str,
        marketo_conn_id: str = MarketoHook.default_conn_name,
        custom_object_name: str | None = None,
        poll_interval: float = 30.0,
        deadline: float | None = None,
        mode: str = MODE_COMPLETE,
        wake_at: float | None = None,
        import_state: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if mode not in (MODE_COMPLETE, MODE_SLOT):
            raise ValueError(f"mode must be {MODE_COMPLETE!r} or {MODE_SLOT!r}, not {mode!r}")
        self.batch_ids = [int(b) for b in batch_ids]
        self.object_type = ObjectType.parse(object_type).value
        self.marketo_conn_id = marketo_conn_id
        self.custom_object_name = custom_object_name
        self.poll_interval = float(poll_interval)
        self.deadline = deadline
        self.mode = mode
        self.wake_at = wake_at
        self.import_state = import_state

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "batch_ids": self.batch_ids,
                "object_type": self.object_type,
                "marketo_conn_id": self.marketo_conn_id,
                "custom_object_name": self.custom_object_name,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "mode": self.mode,
                "wake_at": self.wake_at,
                "import_state": self.import_state,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = MarketoHook(self.marketo_conn_id)
        async with contextlib.AsyncExitStack() as stack:
            client: httpx.AsyncClient | None = None  # one client (and its TLS setup) for every poll
            previous: dict[int, str] | None = None
            statuses: list[BatchStatus] = []
            while True:
                # Poll after a pause, not at once: batches just submitted are not done yet, and a
                # task resumed within moments of deferring races Airflow's own bookkeeping of the
                # worker (docs/troubleshooting.rst).
                await asyncio.sleep(self._pause(time.time()))
                try:
                    if self.batch_ids:
                        if client is None:
                            client = await stack.enter_async_context(hook.aclient())
                        statuses = await hook.aget_batch_statuses(
                            self.object_type,
                            self.batch_ids,
                            custom_object_name=self.custom_object_name,
                            client=client,
                        )
                except Exception as exc:
                    message = f"polling Marketo batches {self.batch_ids} failed: {type(exc).__name__}: {exc}"
                    yield make_event(EVENT_ERROR, statuses, message, self.import_state)
                    return
                log_statuses(self.log, statuses)
                now = time.time()
                event = should_wake(self.mode, previous, statuses, now=now, wake_at=self.wake_at)
                if event is not None:
                    yield make_event(event, statuses, None, self.import_state)
                    return
                if self.deadline is not None and now >= self.deadline:
                    running = [s.batch_id for s in statuses if not s.done]
                    message = f"deadline passed with batches still running: {running}"
                    yield make_event(EVENT_TIMEOUT, statuses, message, self.import_state)
                    return
                previous = {s.batch_id: s.status for s in statuses}

    def _pause(self, now: float) -> float:
        pause = self.poll_interval
        for limit in (self.deadline, self.wake_at if self.mode == MODE_SLOT else None):
            if limit is not None:
                pause = min(pause, max(0.0, limit - now))
        return pause
