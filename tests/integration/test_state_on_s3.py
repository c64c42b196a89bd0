"""The state's lock and pointer on S3 (moto's server on loopback, reached through the Amazon
provider): conditional writes make taking, taking over and releasing the lock atomic."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from marketo_provider.importing.changes import StateDamagedError, StateLockedError
from marketo_provider.importing.changes.state import ChangeState
from marketo_provider.storage import StateLocation
from tests.s3 import S3Server

T0 = 1_800_000_000.0


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with S3Server() as server:
        yield server


@pytest.fixture
def folder(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(*s3.env_item())
    return f"s3://{s3.bucket('state')}/sync/leads/"


def state(s3: S3Server, folder: str, now: float = T0) -> ChangeState:
    return ChangeState(StateLocation(folder, s3.conn_id), {"object_type": "leads"}, clock=lambda: now)


def at_once(count: int, attempt: Callable[[int], Any]) -> list[Any]:
    start = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = attempt(i)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def held(s3: S3Server, folder: str) -> dict[str, Any]:
    data = json.loads(s3.get(f"{folder}lock.json"))
    assert isinstance(data, dict)
    return data


def test_runs_starting_at_once_on_s3_leave_exactly_one_holder(s3: S3Server, folder: str) -> None:
    for r in range(3):
        results = at_once(8, lambda i, r=r: state(s3, folder).lock(f"run-{r}-{i}", lease_seconds=600))
        winners = [i for i, result in enumerate(results) if result is None]
        assert len(winners) == 1, results
        assert all(isinstance(x, StateLockedError) for x in results if x is not None), results
        assert held(s3, folder)["owner"] == f"run-{r}-{winners[0]}"
        state(s3, folder).unlock(f"run-{r}-{winners[0]}")
        assert s3.keys(f"{folder}lock.json") == []


def test_a_stale_lease_on_s3_is_taken_over_once_and_its_old_owner_cannot_renew(
    s3: S3Server, folder: str
) -> None:
    state(s3, folder).lock("died", lease_seconds=60)
    state(s3, folder, T0 + 30).renew("died", lease_seconds=60)
    assert held(s3, folder)["lease_until"] == T0 + 90
    results = at_once(6, lambda i: state(s3, folder, T0 + 91).lock(f"taker-{i}", lease_seconds=600))
    winners = [i for i, result in enumerate(results) if result is None]
    assert len(winners) == 1, results
    assert held(s3, folder)["owner"] == f"taker-{winners[0]}"
    with pytest.raises(StateLockedError, match="taken over by another run"):
        state(s3, folder, T0 + 92).renew("died", lease_seconds=60)
    state(s3, folder).unlock("died")
    assert held(s3, folder)["owner"] == f"taker-{winners[0]}"


def test_a_damaged_lock_on_s3_is_a_clear_error(s3: S3Server, folder: str) -> None:
    s3.put(f"{folder}lock.json", b"not json")
    with pytest.raises(StateDamagedError, match=r"lock.json is not the JSON object this provider writes"):
        state(s3, folder).lock("run", lease_seconds=60)
    state(s3, folder).lock("run", lease_seconds=60, replace_damaged=True)
    assert held(s3, folder)["owner"] == "run"


def test_the_pointer_on_s3_is_written_and_read_back(s3: S3Server, folder: str) -> None:
    location = StateLocation(folder, s3.conn_id)
    location.write_json("latest.json", {"format": 1})
    assert json.loads(s3.get(f"{folder}latest.json")) == {"format": 1}
    s3.put(f"{folder}latest.json", b"[]")
    with pytest.raises(StateDamagedError, match=r"latest.json is not the JSON object this provider writes"):
        state(s3, folder).pointer()


def test_s3_uses_conditional_writes(s3: S3Server, folder: str) -> None:
    from marketo_provider.importing.changes.lock_files import _S3LockFile
    from marketo_provider.importing.changes.lock_files import lock_file as _lock_file

    store = _lock_file(StateLocation(folder, s3.conn_id))
    assert isinstance(store, _S3LockFile)
    assert store.create(b"{}") is True
    assert store.create(b"{}") is False  # If-None-Match: * refused by S3
    found = store.read()
    assert found is not None
    assert store.replace(b"[]", '"not-its-etag"') is False  # If-Match refused
    assert store.delete(found[1]) is True
