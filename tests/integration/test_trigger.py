"""MarketoBulkImportTrigger against the sandbox: events, and a rebuild from serialize() mid-import."""

from __future__ import annotations

import asyncio
import io
import time
from typing import Any

import pytest
from airflow.sdk import BaseHook  # noqa: F401 - ensures the SDK is configured before triggers import

from marketo_provider.testing import MarketoSandbox
from marketo_provider.triggers.bulk_import import MarketoBulkImportTrigger
from tests.conftest import fast_hook


async def first_event(trigger: MarketoBulkImportTrigger, timeout: float = 10) -> dict[str, Any]:
    async def get() -> dict[str, Any]:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("no event")

    return await asyncio.wait_for(get(), timeout)


def submit(n: int) -> list[int]:
    hook = fast_hook()
    return [hook.submit_import("leads", io.BytesIO(b"email\na@example.com\n"))["batchId"] for _ in range(n)]


def test_serialize_round_trip_mid_import(marketo_env: MarketoSandbox) -> None:
    marketo_env.hold_next_jobs(2)
    ids = submit(2)
    state = {"version": 1, "source": "s.csv", "deadline": time.time() + 60, "submitted": [[0, ids[0], 0, 10]]}
    trigger = MarketoBulkImportTrigger(
        ids, "leads", poll_interval=0.05, deadline=time.time() + 60, import_state=state
    )

    async def interrupted() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await first_event(trigger, timeout=0.3)  # still queued: no event; the triggerer "restarts"

    asyncio.run(interrupted())
    classpath, kwargs = trigger.serialize()
    assert classpath == "marketo_provider.triggers.bulk_import.MarketoBulkImportTrigger"
    assert "access_token" not in str(kwargs) and "secret" not in str(kwargs)
    rebuilt = MarketoBulkImportTrigger(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    marketo_env.release()
    event = asyncio.run(first_event(rebuilt))
    assert event["status"] == "complete"
    assert [b["batchId"] for b in event["batches"]] == ids and {b["status"] for b in event["batches"]} == {
        "Complete"
    }
    assert event["import_state"] == state


def test_slot_mode_wakes_when_a_batch_moves_on(marketo_env: MarketoSandbox) -> None:
    marketo_env.hold_next_jobs(1)
    ids = submit(2)  # the first is held, the second waits behind it
    trigger = MarketoBulkImportTrigger(
        ids, "leads", poll_interval=0.05, mode="slot", deadline=time.time() + 30
    )

    async def run() -> dict[str, Any]:
        task = asyncio.ensure_future(first_event(trigger))
        await asyncio.sleep(0.3)
        assert not task.done()
        marketo_env.release()
        return await task

    event = asyncio.run(run())
    assert event["status"] in ("slot", "complete")


def test_slot_mode_wakes_at_wake_at_with_nothing_to_watch(marketo_env: MarketoSandbox) -> None:
    started = time.time()
    trigger = MarketoBulkImportTrigger([], "leads", poll_interval=5, mode="slot", wake_at=started + 0.3)
    event = asyncio.run(first_event(trigger))
    assert event["status"] == "slot" and 0.25 <= time.time() - started < 3


def test_deadline_event_lists_running_batches(marketo_env: MarketoSandbox) -> None:
    marketo_env.hold_next_jobs(1)
    ids = submit(1)
    event = asyncio.run(
        first_event(MarketoBulkImportTrigger(ids, "leads", poll_interval=0.05, deadline=time.time() + 0.3))
    )
    assert event["status"] == "timeout" and str(ids[0]) in event["message"]


def test_error_event_carries_the_message(marketo_env: MarketoSandbox) -> None:
    ids = submit(1)
    marketo_env.inject_fault("/bulk/v1/leads/batch/*", code="607", count=5)
    trigger = MarketoBulkImportTrigger(ids, "leads", poll_interval=0.05, import_state={"version": 1})
    event = asyncio.run(first_event(trigger))
    assert event["status"] == "error" and "607" in event["message"]
    assert event["import_state"] == {"version": 1}


def test_custom_object_batches(marketo_env: MarketoSandbox) -> None:
    hook = fast_hook()
    batch = hook.submit_import("custom_objects", io.BytesIO(b"vin\nV1\n"), custom_object_name="car_c")[
        "batchId"
    ]
    event = asyncio.run(
        first_event(
            MarketoBulkImportTrigger(
                [batch], "custom_objects", custom_object_name="car_c", poll_interval=0.05
            )
        )
    )
    assert event["status"] == "complete" and event["batches"][0]["numOfObjectsProcessed"] == 1


def test_every_poll_goes_over_one_client_closed_at_the_end(
    marketo_env: MarketoSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from marketo_provider.hooks.marketo import MarketoHook

    opened: list[Any] = []
    real = MarketoHook.async_client

    def counting(self: MarketoHook, settings: Any) -> Any:
        opened.append(real(self, settings))
        return opened[-1]

    monkeypatch.setattr(MarketoHook, "async_client", counting)
    marketo_env.hold_next_jobs(1)
    ids = submit(1)
    trigger = MarketoBulkImportTrigger(ids, "leads", poll_interval=0.05, deadline=time.time() + 30)

    async def run() -> dict[str, Any]:
        task = asyncio.ensure_future(first_event(trigger))
        await asyncio.sleep(0.5)
        marketo_env.release()
        return await task

    event = asyncio.run(run())
    assert event["status"] == "complete"
    assert len(marketo_env.calls_to(f"/bulk/v1/leads/batch/{ids[0]}.json")) >= 3
    assert len(opened) == 1 and opened[0].is_closed
