"""The state's lock on a local folder: taken by exactly one of many runs starting at once, renewed
by its owner, taken over by exactly one taker once its lease ended, released only by its owner, and
a lock.json this provider cannot read is a clear error, never a raw one."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from marketo_provider.importing.changes import StateDamagedError, StateLockedError
from marketo_provider.importing.changes.lock import LOCK_FORMAT
from marketo_provider.importing.changes.state import ChangeState
from marketo_provider.storage import StateLocation

T0 = 1_800_000_000.0  # the clock the tests hold: no test depends on the machine's speed


def state(folder: Path, now: float = T0) -> ChangeState:
    return ChangeState(StateLocation(str(folder)), {"object_type": "leads"}, clock=lambda: now)


def at_once(count: int, attempt: Callable[[int], Any]) -> list[Any]:
    """Run ``attempt(i)`` in ``count`` threads released together; each result or exception."""
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


def lock_file(folder: Path) -> dict[str, Any]:
    data = json.loads((folder / "lock.json").read_text())
    assert isinstance(data, dict)
    return data


def test_of_200_runs_starting_at_once_exactly_one_holds_the_lock_each_round(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    rounds, runs = 10, 20  # 200 starts
    for r in range(rounds):
        results = at_once(runs, lambda i, r=r: state(folder).lock(f"run-{r}-{i}", lease_seconds=600))
        winners = [i for i, result in enumerate(results) if result is None]
        assert len(winners) == 1, results
        holder = f"run-{r}-{winners[0]}"
        for result in results:
            if result is not None:  # every other run read a whole lock.json and names its holder
                assert isinstance(result, StateLockedError), result
                assert f"another run ({holder})" in str(result)
        held = lock_file(folder)
        assert held["owner"] == holder and held["format"] == LOCK_FORMAT
        assert held["taken_at"] == T0 and held["lease_until"] == T0 + 600
        state(folder).unlock(holder)
        assert not (folder / "lock.json").exists()
    assert sorted(p.name for p in folder.iterdir()) == ["lock.guard"]  # no temporary file left


def test_the_owner_renews_its_lock_and_a_retry_of_the_same_task_takes_it_again(tmp_path: Path) -> None:
    state(tmp_path).lock("dag/task/run", lease_seconds=300)
    state(tmp_path, T0 + 200).renew("dag/task/run", lease_seconds=300)
    assert lock_file(tmp_path)["lease_until"] == T0 + 500
    state(tmp_path, T0 + 250).lock("dag/task/run", lease_seconds=300)  # the task's retry
    held = lock_file(tmp_path)
    assert held["taken_at"] == T0 and held["lease_until"] == T0 + 550
    with pytest.raises(StateLockedError, match=r"another run \(dag/task/run\).*lease ending"):
        state(tmp_path, T0 + 549).lock("dag/task/other", lease_seconds=300)


def test_a_stale_lease_is_taken_over_by_exactly_one_of_several_takers(tmp_path: Path) -> None:
    state(tmp_path).lock("died", lease_seconds=60)
    later = T0 + 61
    results = at_once(16, lambda i: state(tmp_path, later).lock(f"taker-{i}", lease_seconds=600))
    winners = [i for i, result in enumerate(results) if result is None]
    assert len(winners) == 1, results
    assert all(isinstance(r, StateLockedError) for r in results if r is not None)
    held = lock_file(tmp_path)
    assert held["owner"] == f"taker-{winners[0]}" and held["taken_at"] == later
    # The run that died comes back: its lease is gone, and it says so.
    with pytest.raises(StateLockedError, match=rf"taken over by another run \(taker-{winners[0]}\)"):
        state(tmp_path, later + 1).renew("died", lease_seconds=60)
    assert lock_file(tmp_path)["owner"] == f"taker-{winners[0]}"


def test_unlock_releases_only_its_own_lock_and_twice_is_harmless(tmp_path: Path) -> None:
    state(tmp_path).lock("mine", lease_seconds=60)
    state(tmp_path).unlock("someone-else")
    assert lock_file(tmp_path)["owner"] == "mine"
    state(tmp_path, T0 + 3600).unlock("someone-else")  # even once the lease ended
    assert lock_file(tmp_path)["owner"] == "mine"
    state(tmp_path).unlock("mine")
    state(tmp_path).unlock("mine")
    assert not (tmp_path / "lock.json").exists()


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (b"\x00\xffgarbage", "is not the JSON object this provider writes"),
        (b'["a list"]', "is not the JSON object this provider writes"),
        (b'{"owner": "x", "since": 1, "until": "tomorrow"}', "is not a lock this provider writes"),
        (b'{"format": 1, "owner": 7, "taken_at": 1, "lease_until": 2}', "is not a lock this provider writes"),
        (b'{"format": 9, "owner": "x", "taken_at": 1, "lease_until": 2}', "newer release"),
        (
            b'{"format": 1, "owner": "x", "taken_at": 1, "lease_until": NaN}',
            "is not a lock this provider writes",
        ),
        (b"{" * 2_000_000, "is not the JSON object this provider writes"),
    ],
)
def test_a_damaged_lock_is_a_clear_error_and_full_refresh_replaces_it(
    tmp_path: Path, content: bytes, what: str
) -> None:
    (tmp_path / "lock.json").write_bytes(content)
    with pytest.raises(StateDamagedError) as raised:
        state(tmp_path).lock("run", lease_seconds=60)
    message = str(raised.value)
    assert message.startswith(f"{tmp_path}/lock.json ") and what in message
    assert "remove" in message and "full_refresh=True" in message
    state(tmp_path).unlock("run")  # never removes what it cannot read
    assert (tmp_path / "lock.json").read_bytes() == content
    state(tmp_path).lock("run", lease_seconds=60, replace_damaged=True)
    assert lock_file(tmp_path)["owner"] == "run"


def test_the_first_releases_lock_is_read(tmp_path: Path) -> None:
    (tmp_path / "lock.json").write_text(json.dumps({"owner": "old", "since": T0 - 10, "until": T0 + 10}))
    with pytest.raises(StateLockedError, match=r"another run \(old\)"):
        state(tmp_path).lock("new", lease_seconds=60)
    state(tmp_path, T0 + 11).lock("new", lease_seconds=60)
    assert lock_file(tmp_path)["owner"] == "new"


def test_a_lease_must_be_a_positive_number(tmp_path: Path) -> None:
    for bad in (0, -1, float("nan"), "60"):
        with pytest.raises(ValueError, match="lease_seconds must be a positive number"):
            state(tmp_path).lock("run", lease_seconds=bad)  # type: ignore[arg-type]


def test_a_state_folder_gone_unwritable_mid_run_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "state"
    state(folder).lock("run", lease_seconds=60)
    folder.rename(tmp_path / "moved")
    folder.write_text("a file where the folder was")
    state(folder).unlock("run")
    assert "lock.json could not be released" in caplog.text and "its lease ends by itself" in caplog.text


def test_a_foreign_lock_with_a_huge_owner_or_time_gives_a_bounded_message(tmp_path: Path) -> None:
    (tmp_path / "lock.json").write_text(
        json.dumps({"format": 1, "owner": "x" * 500_000, "taken_at": 1e300, "lease_until": 1e300})
    )
    with pytest.raises(StateLockedError) as raised:
        state(tmp_path).lock("run", lease_seconds=60)
    assert len(str(raised.value)) < 1_000 and "(epoch seconds)" in str(raised.value)
