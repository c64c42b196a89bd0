"""MarketoBulkImportTrigger against the sandbox: events, polling that grows with parts, a rebuild
from serialize() mid-import, and what the triggers of one event loop share."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import BaseHook  # noqa: F401 - ensures the SDK is configured before triggers import

from marketo_provider.api import ImportTarget, ObjectType
from marketo_provider.importing import ImportState
from marketo_provider.testing import MarketoSandbox
from marketo_provider.triggers import bulk_import as bulk_import_trigger
from marketo_provider.triggers.bulk_import import MarketoBulkImportTrigger, exit_window_seconds
from tests.conftest import fast_hook

LEADS = ImportTarget(ObjectType.LEADS)


async def first_event(trigger: MarketoBulkImportTrigger, timeout: float = 10) -> dict[str, Any]:
    async def get() -> dict[str, Any]:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("no event")

    return await asyncio.wait_for(get(), timeout)


def submit(n: int) -> list[int]:
    hook = fast_hook()
    return [hook.submit_import("leads", io.BytesIO(b"email\na@example.com\n"))["batchId"] for _ in range(n)]


def state_for(ids: list[int], deadline: float = 60, target: ImportTarget = LEADS) -> dict[str, Any]:
    return ImportState.for_batches(target, ids, time.time() + deadline).to_json()


def status_calls(sandbox: MarketoSandbox, batch_id: int) -> int:
    return len(sandbox.calls_to(f"/bulk/v1/leads/batch/{batch_id}.json"))


def test_serialize_round_trip_mid_import(marketo_env: MarketoSandbox) -> None:
    marketo_env.hold_next_jobs(2)
    ids = submit(2)
    trigger = MarketoBulkImportTrigger(state_for(ids), poll_interval=0.05)

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
    assert event["event"] == "done" and event["message"] is None
    state = ImportState.from_json(event["import_state"])
    assert state.batch_ids == ids and {s["status"] for s in state.finished.values()} == {"Complete"}


def test_a_poll_asks_about_the_earliest_unfinished_batch_only(marketo_env: MarketoSandbox) -> None:
    marketo_env.hold_next_jobs(10)
    ids = submit(10)
    trigger = MarketoBulkImportTrigger(state_for(ids), poll_interval=0.05)

    async def run() -> dict[str, Any]:
        task = asyncio.ensure_future(first_event(trigger))
        await asyncio.sleep(0.5)
        assert not task.done()
        marketo_env.release()
        return await task

    event = asyncio.run(run())
    assert event["event"] == "done"
    assert status_calls(marketo_env, ids[0]) >= 5  # asked at every poll while it was first in line
    assert status_calls(marketo_env, ids[-1]) <= 3  # asked only once the ones before it were done
    total = sum(status_calls(marketo_env, b) for b in ids)
    polls = status_calls(marketo_env, ids[0])
    assert total <= polls + 2 * len(ids)


def test_a_finished_batch_is_never_polled_again(marketo_env: MarketoSandbox) -> None:
    ids = submit(3)
    first = asyncio.run(first_event(MarketoBulkImportTrigger(state_for(ids), poll_interval=0.05)))
    before = [status_calls(marketo_env, b) for b in ids]
    assert first["event"] == "done" and all(n >= 1 for n in before)
    # A later wait over the same state (as after a deferral) knows their final statuses.
    again = asyncio.run(first_event(MarketoBulkImportTrigger(first["import_state"], poll_interval=0.05)))
    assert again["event"] == "done" and [status_calls(marketo_env, b) for b in ids] == before


@pytest.mark.parametrize(("seconds", "finished"), [(1.0, False), (7.0, True)])
def test_slot_wait_wakes_when_the_first_batch_moves_on(
    manual_sandbox: MarketoSandbox, monkeypatch: pytest.MonkeyPatch, seconds: float, finished: bool
) -> None:
    """Other integrations' jobs fill the queue (1016): Queued -> Importing (a job ahead of it
    finished) or done, either frees a slot for us."""
    from marketo_provider.hooks.marketo import clear_token_cache

    clear_token_cache()
    for key, value in manual_sandbox.env().items():
        monkeypatch.setenv(key, value)
    ids = submit(2)  # both wait in the queue until the clock moves
    trigger = MarketoBulkImportTrigger(
        state_for(ids), wait="queue_slot", poll_interval=0.05, wake_at=time.time() + 600
    )

    async def run() -> dict[str, Any]:
        task = asyncio.ensure_future(first_event(trigger))
        while status_calls(manual_sandbox, ids[0]) < 2:
            await asyncio.sleep(0.02)
        assert not task.done()
        manual_sandbox.advance(seconds)
        return await task

    event = asyncio.run(run())
    assert event["event"] == "slot_free"
    assert (ids[0] in ImportState.from_json(event["import_state"]).finished) is finished


def test_slot_wait_wakes_at_wake_at_with_nothing_to_watch(marketo_env: MarketoSandbox) -> None:
    started = time.time()
    trigger = MarketoBulkImportTrigger(
        state_for([]), wait="queue_slot", poll_interval=0.2, wake_at=started + 0.6
    )
    event = asyncio.run(first_event(trigger))
    assert event["event"] == "slot_free" and time.time() - started >= 0.55
    assert marketo_env.calls_to("/bulk/*") == []


def test_the_window_is_twice_the_workers_heartbeat_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    assert exit_window_seconds() == 10.0  # Airflow's default [workers] min_heartbeat_interval: 5 s
    monkeypatch.setenv("AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL", "8")
    assert exit_window_seconds() == 16.0


@pytest.mark.parametrize("wait", ["completion", "queue_slot"])
def test_no_event_inside_airflows_window_for_the_deferring_workers_exit(
    marketo_env: MarketoSandbox, monkeypatch: pytest.MonkeyPatch, wait: str
) -> None:
    """A task resumed before Airflow has taken in the exit of the worker that deferred it is failed
    by the scheduler: whatever the polls find and however short ``poll_interval``, the event waits
    for the window."""
    monkeypatch.setattr(bulk_import_trigger, "exit_window_seconds", exit_window_seconds)
    monkeypatch.setenv("AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL", "1")  # a window of 2 s
    ids = submit(1)
    asyncio.run(first_event(MarketoBulkImportTrigger(state_for(ids), poll_interval=0.05)))  # done
    started = time.monotonic()
    trigger = MarketoBulkImportTrigger(state_for(ids), wait=wait, poll_interval=0.05, wake_at=time.time())
    event = asyncio.run(first_event(trigger))
    assert event["event"] == ("done" if wait == "completion" else "slot_free")
    assert time.monotonic() - started >= 2.0


def test_deadline_event_lists_running_batches(marketo_env: MarketoSandbox) -> None:
    marketo_env.hold_next_jobs(1)
    ids = submit(1)
    event = asyncio.run(
        first_event(MarketoBulkImportTrigger(state_for(ids, deadline=0.3), poll_interval=0.05))
    )
    assert event["event"] == "timeout" and str(ids[0]) in event["message"]


def test_error_event_carries_the_message_and_the_state(marketo_env: MarketoSandbox) -> None:
    ids = submit(1)
    marketo_env.inject_fault("/bulk/v1/leads/batch/*", code="607", count=5)
    trigger = MarketoBulkImportTrigger(state_for(ids), poll_interval=0.05)
    event = asyncio.run(first_event(trigger))
    assert event["event"] == "error" and "607" in event["message"]
    assert event["error"]["class"] == "MarketoQuotaExceededError"  # the task raises it again
    assert event["error"]["attributes"]["code"] == "607"
    assert ImportState.from_json(event["import_state"]).batch_ids == ids


def test_custom_object_batches(marketo_env: MarketoSandbox) -> None:
    hook = fast_hook()
    batch = hook.submit_import("custom_objects", io.BytesIO(b"vin\nV1\n"), custom_object_name="car_c")[
        "batchId"
    ]
    target = ImportTarget(ObjectType.CUSTOM_OBJECTS, custom_object_name="car_c")
    event = asyncio.run(
        first_event(MarketoBulkImportTrigger(state_for([batch], target=target), poll_interval=0.05))
    )
    assert event["event"] == "done"
    assert ImportState.from_json(event["import_state"]).finished[batch]["rows_processed"] == 1


def test_the_triggers_of_one_loop_share_a_client_and_the_connection(
    marketo_env: MarketoSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx

    from marketo_provider.hooks import marketo, transport

    built: list[Any] = []
    real_client = httpx.AsyncClient

    def counting_client(*args: Any, **kwargs: Any) -> Any:
        built.append(kwargs)
        return real_client(*args, **kwargs)

    looked_up: list[str] = []
    real_lookup = marketo.MarketoHook._aread_settings

    async def counting_lookup(hook: Any) -> Any:
        looked_up.append(hook.marketo_conn_id)
        return await real_lookup(hook)

    monkeypatch.setattr(transport.httpx, "AsyncClient", counting_client)
    monkeypatch.setattr(marketo.MarketoHook, "_aread_settings", counting_lookup)
    ids = submit(5)

    async def run() -> list[dict[str, Any]]:
        triggers = [MarketoBulkImportTrigger(state_for([b]), poll_interval=0.2) for b in ids * 4]
        events = await asyncio.gather(*(first_event(t) for t in triggers))
        await marketo.aclose_shared_clients()
        return events

    events = asyncio.run(run())
    assert [e["event"] for e in events] == ["done"] * 20
    assert len(built) == 1 and looked_up == ["marketo_default"]


def test_the_trigger_renews_the_state_lock_while_it_waits(
    marketo_env: MarketoSandbox, tmp_path: Path
) -> None:
    import json
    import threading

    from marketo_provider.importing.changes.state import ChangeState
    from marketo_provider.storage import StateLocation

    store = ChangeState(StateLocation(str(tmp_path / "state")), {})
    store.lock("dag/task/run", lease_seconds=0.6)
    taken = json.loads((tmp_path / "state" / "lock.json").read_text())["lease_until"]
    marketo_env.hold_next_jobs(1)
    ids = submit(1)
    threading.Timer(2.0, marketo_env.release).start()  # the batch finishes after a few polls
    lease = {
        "state_path": str(tmp_path / "state"),
        "state_conn_id": None,
        "owner": "dag/task/run",
        "seconds": 0.6,
    }
    trigger = MarketoBulkImportTrigger(state_for(ids), poll_interval=0.05, lease=lease)
    event = asyncio.run(first_event(trigger, timeout=120))
    assert event["event"] == "done"
    held = json.loads((tmp_path / "state" / "lock.json").read_text())
    assert held["owner"] == "dag/task/run" and held["lease_until"] > taken  # renewed as it waited
    assert trigger.serialize()[1]["lease"] == lease  # a restarted triggerer renews it too
