"""How often an import comes back to submit more, on a simulated clock: the sandbox's queue (its
state machine, no HTTP; two jobs importing, ten queued) answers the hook's calls, the real trigger
waits (its sleeps move the clock), and the task takes a set while to come back from the triggerer.

Each import must send every part once, come back at most ceil((parts - 10) / 4) + 2 times, and keep
Marketo importing two of its jobs at a time from the first upload to the last batch done."""

from __future__ import annotations

import asyncio
import logging
import math
import random
from pathlib import Path
from typing import Any

import pytest

from marketo_provider.api import ImportSpec, MarketoQueueFullError
from marketo_provider.importing import BulkImport, ImportOptions, ImportState, WaitFor
from marketo_provider.importing import batch_watch as batches_module
from marketo_provider.importing import run as run_module
from marketo_provider.importing import submitting as submitting_module
from marketo_provider.sources import Source
from marketo_provider.testing import Clock, MarketoBackend, SandboxConfig
from marketo_provider.testing.errors import SandboxError
from marketo_provider.testing.spec import ImportTarget, ObjectType
from marketo_provider.triggers import bulk_import as trigger_module
from marketo_provider.triggers.bulk_import import MarketoBulkImportTrigger
from tests.helpers import leads_csv

LOG = logging.getLogger("tests.resumes")
JOB_SECONDS = 5.0
UPLOAD_SECONDS = 0.3
POLL = 2.0
WINDOW = 10.0  # Airflow's window for a deferring worker's exit, by default


class SimulatedTime:
    """The import's clock and Marketo's, moved together by whoever sleeps."""

    def __init__(self, backend: MarketoBackend) -> None:
        self.now = 1_800_000_000.0
        self.backend = backend

    def time(self) -> float:
        return self.now

    monotonic = time

    def sleep(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.now += seconds
        self.backend.clock.advance(seconds)


class SimulatedAsyncio:
    def __init__(self, clock: SimulatedTime) -> None:
        self.clock = clock

    async def sleep(self, seconds: float) -> None:
        self.clock.sleep(seconds)


class SandboxHook:
    """The hook's calls answered by the sandbox's backend; an upload takes ``UPLOAD_SECONDS``."""

    def __init__(self, backend: MarketoBackend, clock: SimulatedTime) -> None:
        self.backend = backend
        self.clock = clock
        self.api_calls = 0

    def submit_import(self, spec: ImportSpec, file: Any, *, filename: str) -> dict[str, Any]:
        self.api_calls += 1
        self.clock.sleep(UPLOAD_SECONDS)
        try:
            job = self.backend.create_import(
                ImportTarget(ObjectType.LEADS), {"format": "csv"}, file.read(), filename
            )
        except SandboxError as exc:
            if exc.code == "1016":
                raise MarketoQueueFullError(exc.code, exc.message) from None
            raise
        return {"batchId": job.batch_id, "status": "Queued"}

    def get_import_status(self, target: Any, batch_id: int) -> dict[str, Any]:
        self.api_calls += 1
        return self.backend.status("leads", batch_id)

    async def aget_import_status(self, target: Any, batch_id: int) -> dict[str, Any]:
        return self.get_import_status(target, batch_id)

    def describe(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise AssertionError("check_columns=False: no describe call")

    def download_result_file(self, *args: Any, **kwargs: Any) -> int | None:
        self.api_calls += 1
        return None


class Simulation:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        self.backend = MarketoBackend(
            SandboxConfig(
                queued_seconds=0.0, import_seconds=JOB_SECONDS, rate_limit=False, concurrency_limit=False
            ),
            Clock(manual=True),
        )
        self.clock = SimulatedTime(self.backend)
        self.hook = SandboxHook(self.backend, self.clock)
        for module in (run_module, submitting_module, batches_module, trigger_module):
            monkeypatch.setattr(module, "time", self.clock)
        monkeypatch.setattr(trigger_module, "asyncio", SimulatedAsyncio(self.clock))
        monkeypatch.setattr(trigger_module, "MarketoHook", lambda conn_id: self.hook)
        monkeypatch.setattr(trigger_module, "exit_window_seconds", lambda: WINDOW)
        monkeypatch.setattr(trigger_module, "random", random.Random(20))  # the first pause's spread
        data, self.expected = leads_csv(3_400)
        self.path = tmp_path / "leads.csv"
        self.path.write_bytes(data)
        self.slot_waits = 0
        self.state: ImportState | None = None

    def new_import(self) -> BulkImport:
        options = ImportOptions.of(poll_interval=POLL, check_columns=False)
        source = Source.of(str(self.path), max_part_bytes=2_500)
        return BulkImport(self.hook, ImportSpec.of("leads"), source, options, log=LOG)

    def run_deferred(self, resume_seconds: float) -> dict[str, Any]:
        """As the operator runs deferrable: each wait is the trigger's, and the task takes
        ``resume_seconds`` to come back (the scheduler, a worker, a new task process)."""
        run = self.new_import()
        state = run.begin(None)
        assert state is not None
        while (wait := run.advance(state)) is not None:
            self.slot_waits += wait.waiting_for is WaitFor.QUEUE_SLOT
            trigger = MarketoBulkImportTrigger(
                import_state=state.to_json(),
                wait=wait.waiting_for.value,
                poll_interval=POLL,
                wake_at=wait.wake_at,
            )
            event = asyncio.run(first_event(trigger))
            self.clock.sleep(resume_seconds)
            state = run.resume(event)
        self.state = state
        return run.conclude(state, lambda key, value: None)

    def run_on_the_worker(self) -> dict[str, Any]:
        run = self.new_import()
        state = run.begin(None)
        assert state is not None
        while (wait := run.advance(state)) is not None:
            self.slot_waits += wait.waiting_for is WaitFor.QUEUE_SLOT
            run.wait(state, wait, sleep=self.clock.sleep)
        return run.conclude(state, lambda key, value: None)

    def assert_every_part_once(self, summary: dict[str, Any]) -> int:
        parts = len(summary["batch_ids"])
        names = [job.filename for job in self.backend.jobs.values()]
        assert sorted(names) == [f"leads-part{i:04d}.csv" for i in range(parts)]
        emails = [row["email"] for row in self.backend.imported_rows("leads")]
        assert len(emails) == len(set(emails)) == self.expected["rows"]
        return parts

    def busy_ratio(self, parts: int) -> float:
        """From the first upload to the last batch done, against ceil(parts / 2) job times."""
        jobs = list(self.backend.jobs.values())
        first = min(job.created_at for job in jobs)
        last = max(job.finished_at or 0.0 for job in jobs)
        return (last - first) / (math.ceil(parts / 2) * JOB_SECONDS)


async def first_event(trigger: MarketoBulkImportTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("the trigger ended without an event")


def most_resumes(parts: int) -> int:
    return math.ceil((parts - 10) / 4) + 2


@pytest.mark.parametrize("resume_seconds", [4.0, 8.0])
def test_a_deferred_import_resumes_a_few_times_and_keeps_marketo_busy(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, resume_seconds: float
) -> None:
    sim = Simulation(monkeypatch, tmp_path)
    summary = sim.run_deferred(resume_seconds)
    parts = sim.assert_every_part_once(summary)
    assert parts >= 60
    assert summary["resumes"] == sim.slot_waits + 1 <= most_resumes(parts)  # + the wait for completion
    assert sim.busy_ratio(parts) <= 1.05


def test_a_slow_way_back_costs_time_but_not_resumes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A task that takes 30 s to come back cannot keep a queue of 25 s of work full, whatever the
    mark: each resume then finds the queue (nearly) empty and fills it."""
    sim = Simulation(monkeypatch, tmp_path)
    summary = sim.run_deferred(30.0)
    parts = sim.assert_every_part_once(summary)
    assert summary["resumes"] <= most_resumes(parts)


def test_on_the_worker_the_same_rule_decides_how_often_it_goes_back_to_the_source(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Not deferrable: no resumes, and the worker goes back to the source to submit several parts
    at a time (its way back is an upload: the mark is low) while Marketo stays busy."""
    sim = Simulation(monkeypatch, tmp_path)
    summary = sim.run_on_the_worker()
    parts = sim.assert_every_part_once(summary)
    assert summary["resumes"] == 0
    assert sim.slot_waits <= math.ceil((parts - 10) / 6) + 1
    assert sim.busy_ratio(parts) <= 1.05


def test_the_drain_and_the_way_back_are_measured_and_travel_in_the_state(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sim = Simulation(monkeypatch, tmp_path)
    sim.run_deferred(6.0)
    state = sim.state
    assert state is not None
    # From the trigger's event to Marketo's answer to the next upload: the way back and one upload.
    assert state.resume_seconds and all(
        s == pytest.approx(6.0 + UPLOAD_SECONDS) for s in state.resume_seconds
    )
    # Two jobs at a time; polls every 2 s see them finish in steps, and waits end on a finish.
    assert state.drain_rate is not None and 0.3 <= state.drain_rate <= 0.6
    again = ImportState.from_json(state.to_json())
    assert again == state and again.drain_rate == state.drain_rate
