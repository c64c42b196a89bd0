"""The import's own rules, without I/O: its state, which batches a poll asks about, when a wait ends."""

from __future__ import annotations

import pytest

from marketo_provider.api import BatchStatus, ImportTarget, MarketoError, ObjectType
from marketo_provider.importing import ImportOptions, ImportState, Wait, WaitEnd, WaitFor, parse_batch_ids
from marketo_provider.importing.state import PartRange, SubmittedPart
from marketo_provider.importing.waiting import low_water_mark, poll_round


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

    def test_other_integrations_jobs_full_queue_ends_when_one_of_ours_finished(self) -> None:
        state = state_of(1, 2)
        wait = Wait.start(state, WaitFor.QUEUE_SLOT, wake_at=500)
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


def finish_in_pairs(state: ImportState, finished: int) -> BatchStatus | None:
    """A poll that finds the import's first ``finished`` batches done, the next two importing."""
    ids = state.batch_ids
    statuses = {
        b: "Complete" if i < finished else "Importing" if i < finished + 2 else "Queued"
        for i, b in enumerate(ids)
    }
    return run_round(state, statuses)[1]


def measured(state: ImportState, rate: float, resume: float) -> ImportState:
    state.note_drain(4, 4 / rate)
    state.resume_seconds = [resume]
    return state


class TestLowWaterMark:
    def test_the_mark_leaves_two_importing_and_what_drains_before_the_task_is_back(self) -> None:
        assert low_water_mark(None, 30.0) == 6  # not measured yet: wake when four parts fit
        assert low_water_mark(0.4, 9.0) == 6  # 3.6 batches finish before the task is back, + 2
        assert low_water_mark(0.01, 9.0) == 3  # jobs of minutes: at least one queued behind two
        assert low_water_mark(1.0, 60.0) == 9  # a way back too long for the queue: the first slot

    def test_own_batches_full_queue_ends_only_at_the_mark(self) -> None:
        """Ten of ours in the queue, 30 parts to go: the wait goes on as batches finish one by one
        and ends at the poll that finds no more than the mark (0.4 batches/s, a 7 s way back and
        2 s polls: 2 + ceil(0.4 x 9) = 6) in the queue."""
        state = measured(state_of(*range(1, 11), total=40), rate=0.4, resume=7.0)
        wait = Wait.start(state, WaitFor.QUEUE_SLOT, poll_interval=2.0)
        ends = []
        for finished in range(0, 11):
            ends.append(wait.check(state, finish_in_pairs(state, finished), now=10.0 + 2.5 * finished))
            if ends[-1] is not None:
                break
        assert ends == [None] * 4 + [WaitEnd.SLOT_FREE]  # at 6 left, not at 9, 8 or 7
        assert len(state.pending_batch_ids) == 6

    def test_a_longer_way_back_or_the_triggers_hold_raises_the_mark(self) -> None:
        state = measured(state_of(*range(1, 11), total=40), rate=0.4, resume=7.0)
        assert Wait.start(state, WaitFor.QUEUE_SLOT, poll_interval=2.0).mark(state, now=0.0) == 6
        state.resume_seconds = [7.0, 12.0]  # the longest of the latest counts
        assert Wait.start(state, WaitFor.QUEUE_SLOT, poll_interval=2.0).mark(state, now=0.0) == 8
        held = Wait(WaitFor.QUEUE_SLOT, 1000.0, poll_interval=2.0, hold_until=10.0)
        state.resume_seconds = [7.0]
        assert held.mark(state, now=0.0) == 9 and held.mark(state, now=9.0) == 6

    def test_ends_early_when_every_part_left_fits(self) -> None:
        """Twelve parts, ten in the queue: once two slots are free the rest can go, and nothing
        after them can run short (the import can no longer be starved)."""
        state = measured(state_of(*range(1, 11), total=12), rate=0.4, resume=7.0)
        wait = Wait.start(state, WaitFor.QUEUE_SLOT, poll_interval=2.0)
        assert wait.check(state, finish_in_pairs(state, 1), now=1.0) is None
        assert wait.check(state, finish_in_pairs(state, 2), now=2.0) is WaitEnd.SLOT_FREE

    def test_parts_counted_by_preflight_count_before_the_source_is_cut_to_the_end(self) -> None:
        state = measured(state_of(*range(1, 11)), rate=0.4, resume=7.0)
        state.parts_total = None
        state.parts_planned = 11
        assert state.parts_left == 1
        wait = Wait.start(state, WaitFor.QUEUE_SLOT, poll_interval=2.0)
        assert wait.check(state, finish_in_pairs(state, 1), now=1.0) is WaitEnd.SLOT_FREE

    def test_the_drain_is_measured_only_while_our_batches_keep_both_slots_busy(self) -> None:
        state = state_of(*range(1, 11), total=40)
        wait = Wait.start(state, WaitFor.QUEUE_SLOT, poll_interval=2.0)
        wait.check(state, finish_in_pairs(state, 0), now=0.0)
        wait.check(state, finish_in_pairs(state, 2), now=5.0)
        assert state.drain_seen == 2 and state.drain_rate is None  # four finishes make a rate
        wait.check(state, finish_in_pairs(state, 4), now=10.0)
        assert state.drain_rate == pytest.approx(0.4)
        # The first of ours still queued (other integrations' jobs ahead): not our pace.
        other = state_of(1, 2, 3, 4, total=40)
        wait = Wait.start(other, WaitFor.QUEUE_SLOT, poll_interval=2.0)
        wait.check(other, run_round(other, dict.fromkeys([1, 2, 3, 4], "Queued"))[1], now=0.0)
        wait.check(other, finish_in_pairs(other, 2), now=5.0)
        assert other.drain_seen == 0
        # Too few left to keep both slots busy all along: not our pace either.
        wait.check(other, finish_in_pairs(other, 3), now=6.0)
        assert other.drain_seen == 0

    def test_resume_latency_from_the_wait_end_to_the_next_answer(self) -> None:
        state = state_of(1)
        state.note_resumed(100.0)
        assert state.resume_seconds == []  # no wait ended
        for i in range(7):
            state.woken_at = 100.0
            state.note_resumed(103.0 + i)
        assert state.resume_seconds == [5.0, 6.0, 7.0, 8.0, 9.0] and state.woken_at is None


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
    assert (
        "1 to submit" in line
        and "1,200 rows processed, 3 failed; 0 resumes" in line
        and "~3 min left" in line
    )
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
