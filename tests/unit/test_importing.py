"""The import's own rules, without I/O: its state, which batches a poll asks about, when a wait ends."""

from __future__ import annotations

import pytest

from marketo_provider.api import BatchStatus, ImportTarget, MarketoError, ObjectType
from marketo_provider.importing import (
    ImportOptions,
    ImportState,
    PartRange,
    SubmittedPart,
    Wait,
    WaitEnd,
    WaitFor,
    parse_batch_ids,
    poll_round,
)


def st(batch_id: int, status: str, processed: int | None = None, failed: int | None = None) -> BatchStatus:
    return BatchStatus(batch_id=batch_id, status=status, rows_processed=processed, rows_failed=failed)


def entry(batch_id: int, status: str, processed: int, failed: int) -> dict[str, object]:
    """Marketo's status entry of a lead batch."""
    return {
        "batchId": batch_id,
        "status": status,
        "numOfLeadsProcessed": processed,
        "numOfRowsFailed": failed,
    }


def state_of(*batch_ids: int, total: int | None = None) -> ImportState:
    state = ImportState.for_batches(ImportTarget(ObjectType.LEADS), list(batch_ids), deadline=1000.0)
    state.parts_total = total if total is not None else len(batch_ids)
    return state


def run_round(state: ImportState, statuses: dict[int, str]) -> tuple[list[int], BatchStatus | None]:
    """Drive one poll round with the given statuses; returns the batches asked about and the head."""
    asked: list[int] = []
    rounds = poll_round(state)
    try:
        batch_id = next(rounds)
        while True:
            asked.append(batch_id)
            batch_id = rounds.send(entry(batch_id, statuses[batch_id], 1, 0))
    except StopIteration as stop:
        return asked, stop.value


class TestPollRound:
    def test_asks_only_the_earliest_unfinished_batch(self) -> None:
        state = state_of(*range(1, 201))
        asked, head = run_round(state, dict.fromkeys(range(1, 201), "Queued"))
        assert asked == [1] and head is not None and head.batch_id == 1

    def test_reads_each_final_status_once_and_goes_on_to_the_next(self) -> None:
        state = state_of(1, 2, 3, 4)
        asked, head = run_round(state, {1: "Complete", 2: "Failed", 3: "Importing", 4: "Queued"})
        assert asked == [1, 2, 3] and head is not None and head.batch_id == 3
        assert set(state.finished) == {1, 2} and state.pending_batch_ids == [3, 4]
        asked, head = run_round(state, {3: "Complete", 4: "Complete"})
        assert asked == [3, 4] and head is None and state.done

    def test_finished_batches_survive_serialization(self) -> None:
        state = state_of(1, 2)
        run_round(state, {1: "Complete", 2: "Queued"})
        again = ImportState.from_json(state.to_json())
        assert again.pending_batch_ids == [2] and again.finished[1]["status"] == "Complete"


class TestWait:
    def test_completion_ends_when_nothing_is_pending(self) -> None:
        state = state_of(1)
        wait = Wait.start(state, WaitFor.COMPLETION, None)
        assert wait.check(state, st(1, "Importing"), now=0) is None
        run_round(state, {1: "Complete"})
        assert wait.check(state, None, now=0) is WaitEnd.DONE

    @pytest.mark.parametrize(
        ("before", "after", "expected"),
        [
            ("Queued", "Queued", None),  # nothing moved
            ("Queued", "Importing", WaitEnd.SLOT_FREE),  # a job ahead of ours finished
            ("Importing", "Importing", None),
        ],
    )
    def test_slot_on_the_head_moving_on(self, before: str, after: str, expected: WaitEnd | None) -> None:
        state = state_of(1, 2)
        wait = Wait.start(state, WaitFor.QUEUE_SLOT, wake_at=500)
        assert wait.check(state, st(1, before), now=0) is None
        assert wait.check(state, st(1, after), now=1) is expected

    def test_slot_when_one_of_ours_finished(self) -> None:
        state = state_of(1, 2)
        wait = Wait.start(state, WaitFor.QUEUE_SLOT, wake_at=None)
        _, head = run_round(state, {1: "Complete", 2: "Queued"})
        assert wait.check(state, head, now=0) is WaitEnd.SLOT_FREE

    def test_slot_at_wake_at_and_timeout_at_the_deadline(self) -> None:
        state = state_of()
        wait = Wait.start(state, WaitFor.QUEUE_SLOT, wake_at=100)
        assert wait.check(state, None, now=99) is None
        assert wait.check(state, None, now=100) is WaitEnd.SLOT_FREE
        wait = Wait.start(state_of(1), WaitFor.COMPLETION, None)
        assert wait.check(state_of(1), st(1, "Queued"), now=1000) is WaitEnd.TIMEOUT

    def test_pause_is_cut_short_by_the_deadline_and_wake_at(self) -> None:
        wait = Wait(WaitFor.QUEUE_SLOT, deadline=1000, wake_at=20)
        assert wait.pause(30, now=0) == 20
        assert Wait(WaitFor.COMPLETION, deadline=1000, wake_at=20).pause(30, now=990) == 10


def test_state_round_trip_accounting_and_progress() -> None:
    state = ImportState(name="s3://b/leads.csv", object_type="leads", custom_object_name=None, deadline=10.0)
    state.header = ["email"]
    state.submitted += [SubmittedPart(0, 3404, 6, 9000), SubmittedPart(1, 3405, 9000, 18000)]
    state.uncertain.append(PartRange(2, 18000, 27000))
    state.parts_total = 4
    state.finished[3404] = st(3404, "Complete", 1200, 3).to_json()
    again = ImportState.from_json(state.to_json())
    assert again == state and again.resume_offset == 27000 and not again.all_submitted
    text = again.accounting()
    assert "part 0 -> batch 3404, part 1 -> batch 3405" in text
    assert "part 2 (source bytes 18,000-27,000)" in text
    assert "not submitted: part 3" in text
    line = again.progress(st(3405, "Importing"), now=again.started_at + 60)
    assert line.startswith("import of s3://b/leads.csv: 1 of 4 parts done (1 in Marketo's queue")
    assert "1 to submit" in line and "1,200 rows processed, 3 failed" in line and "~3 min left" in line
    with pytest.raises(MarketoError):
        ImportState.from_json({**state.to_json(), "version": 99})


def test_the_sensors_progress_names_the_source_and_the_batches() -> None:
    named = ImportState.for_batches(ImportTarget(ObjectType.LEADS), [3404, 3405], 1000.0, "s3://b/leads.csv")
    assert named.progress().startswith("import of s3://b/leads.csv (batches 3404, 3405): 0 of 2 parts done")
    unnamed = ImportState.for_batches(ImportTarget(ObjectType.LEADS), [3404], 1000.0)
    assert unnamed.progress().startswith("import of batches 3404: ")


@pytest.mark.parametrize(
    ("value", "ids"),
    [
        ([1, 2], [1, 2]),
        ("[3404, 3405]", [3404, 3405]),
        ("3404, 3405", [3404, 3405]),
        (7, [7]),
        ({"batch_ids": [5]}, [5]),
        (["8"], [8]),
    ],
)
def test_parse_batch_ids(value: object, ids: list[int]) -> None:
    assert parse_batch_ids(value) == ids


@pytest.mark.parametrize("value", ["", "[]", "abc", [None], "[1, "])
def test_parse_batch_ids_errors(value: object) -> None:
    with pytest.raises(MarketoError):
        parse_batch_ids(value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"poll_interval": 0}, "poll_interval must be a positive number"),
        ({"poll_interval": -5}, "poll_interval must be a positive number"),
        ({"poll_interval": "soon"}, "poll_interval must be a number of seconds"),
        ({"timeout": 0}, "timeout must be a positive number"),
        ({"timeout": "nan"}, "timeout must be a positive number"),
        ({"max_failed_rows": -1}, "max_failed_rows must be 0 or more"),
        ({"max_failed_rows": "many"}, "max_failed_rows must be a whole number"),
    ],
)
def test_options_are_checked(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(MarketoError, match=message):
        ImportOptions.of(**kwargs)  # type: ignore[arg-type]


def test_results_use_the_source_connection_on_the_same_storage() -> None:
    same = ImportOptions.of(results_path="s3://b/results/", source="s3://b/in.csv", source_conn_id="aws")
    assert same.results.conn_id == "aws"
    other = ImportOptions.of(results_path="gs://b/results/", source="s3://b/in.csv", source_conn_id="aws")
    assert other.results.conn_id is None
    given = ImportOptions.of(
        results_path="s3://b/r/", results_conn_id="mine", source="s3://b/in.csv", source_conn_id="aws"
    )
    assert given.results.conn_id == "mine"
