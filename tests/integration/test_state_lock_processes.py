"""The state's lock between processes (as between Airflow workers on one machine or a shared
folder): of many processes starting at once, exactly one takes it."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path
from typing import Any

from marketo_provider.importing.changes import StateLockedError
from marketo_provider.importing.changes.state import ChangeState
from marketo_provider.storage import StateLocation

T0 = 1_800_000_000.0


def take(folder: str, owner: str, start: Any, results: Any) -> None:
    state = ChangeState(StateLocation(folder), {"object_type": "leads"}, clock=lambda: T0)
    start.wait()
    try:
        state.lock(owner, lease_seconds=600)
        results.put((owner, "took"))
    except StateLockedError as exc:
        results.put((owner, str(exc)))
    except Exception as exc:  # pragma: no cover - reported by the assertion
        results.put((owner, f"{type(exc).__name__}: {exc}"))


def test_of_processes_starting_at_once_exactly_one_takes_the_lock(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")  # the package is imported once, before forking
    folder = str(tmp_path / "state")
    for round_ in range(3):
        count = 8
        start, results = context.Barrier(count), context.Queue()
        processes = [
            context.Process(target=take, args=(folder, f"p{round_}-{i}", start, results))
            for i in range(count)
        ]
        for process in processes:
            process.start()
        outcomes = dict(results.get(timeout=120) for _ in range(count))
        for process in processes:
            process.join(60)
            assert process.exitcode == 0
        winners = [owner for owner, outcome in outcomes.items() if outcome == "took"]
        assert len(winners) == 1, outcomes
        assert all(f"another run ({winners[0]})" in o for o in outcomes.values() if o != "took"), outcomes
        assert json.loads((tmp_path / "state" / "lock.json").read_text())["owner"] == winners[0]
        ChangeState(StateLocation(folder), {}).unlock(winners[0])
