"""The times an import keeps of its parts (the UI's timeline): submitted, first seen importing and
done, kept across deferrals and retries, and in the summary's batches."""

from __future__ import annotations

from typing import Any

import pytest

from marketo_provider.api import BatchStatus, ImportSpec, ObjectType
from marketo_provider.importing.state import ImportState
from marketo_provider.importing.waiting import poll
from marketo_provider.results import ImportSummary


def entry(batch_id: int, status: str) -> dict[str, Any]:
    return {
        "batchId": batch_id,
        "importId": str(batch_id),
        "status": status,
        "numOfLeadsProcessed": 5 if status == "Complete" else 0,
        "numOfRowsFailed": 0,
        "numOfRowsWithWarning": 0,
        "message": "",
    }


def test_polls_keep_when_a_batch_was_first_seen_importing_and_done(monkeypatch: pytest.MonkeyPatch) -> None:
    state = ImportState.for_batches(ImportSpec.of("leads").target, [7, 8], deadline=4102444800.0)
    clock = iter([100.0, 110.0, 120.0, 130.0])
    monkeypatch.setattr("marketo_provider.importing.waiting.time.time", lambda: next(clock))
    answers = {7: ["Queued", "Importing", "Importing", "Complete"], 8: ["Complete"]}
    asked: list[int] = []

    def status(target: Any, batch_id: int) -> dict[str, Any]:
        asked.append(batch_id)
        return entry(batch_id, answers[batch_id].pop(0))

    for _ in range(4):
        poll(state, status)
    assert asked == [7, 7, 7, 7, 8]
    assert state.part_times == {7: {"importing": 100.0, "done": 120.0}, 8: {"done": 130.0}}
    # kept across deferrals and retries
    again = ImportState.from_json(state.to_json())
    assert again.part_times == state.part_times


def test_a_state_without_times_reads_as_none_kept() -> None:
    state = ImportState.for_batches(ImportSpec.of("leads").target, [7], deadline=4102444800.0)
    data = state.to_json()
    del data["part_times"]  # as releases before the timeline wrote it
    assert ImportState.from_json(data).part_times == {}


def test_the_summary_gives_each_batch_its_times_in_utc() -> None:
    summary = ImportSummary(
        ObjectType.LEADS,
        [(0, BatchStatus(7, "Complete", 5, 0, 0, "")), (1, BatchStatus(8, "Complete", 5, 0, 0, ""))],
        times={7: {"submitted": 1790000000.0, "importing": 1790000010.0, "done": 1790000020.5}},
    ).to_xcom()
    first, second = summary["batches"]
    assert first["submitted_at"] == "2026-09-21T14:13:20.000+00:00"
    assert first["importing_at"] == "2026-09-21T14:13:30.000+00:00"
    assert first["done_at"] == "2026-09-21T14:13:40.500+00:00"
    assert not {"submitted_at", "importing_at", "done_at"} & set(second)  # nothing known: nothing said
