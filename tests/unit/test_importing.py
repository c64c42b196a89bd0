"""The import's own rules: state, waking up, batch id parsing, results merging, lineage names."""

from __future__ import annotations

import pytest

from marketo_provider.api import BatchStatus, ConnectionSettings, MarketoError, ObjectType
from marketo_provider.importing import (
    ImportState,
    SubmittedPart,
    parse_batch_ids,
    should_wake,
)
from marketo_provider.lineage import marketo_dataset, source_dataset
from marketo_provider.results import merge_result_files, problems, summarize


def st(batch_id: int, status: str) -> BatchStatus:
    return BatchStatus(batch_id=batch_id, status=status)


class TestShouldWake:
    def test_complete_when_all_done(self) -> None:
        assert (
            should_wake("complete", None, [st(1, "Complete"), st(2, "Failed")], now=0, wake_at=None)
            == "complete"
        )
        assert (
            should_wake("complete", None, [st(1, "Complete"), st(2, "Queued")], now=0, wake_at=None) is None
        )

    @pytest.mark.parametrize(
        ("seen", "now_statuses", "expected"),
        [
            (None, {1: "Complete", 2: "Queued"}, None),  # done before the first look: no transition
            ({1: "Complete", 2: "Queued"}, {1: "Complete", 2: "Importing"}, "slot"),  # queued -> importing
            ({1: "Importing", 2: "Queued"}, {1: "Complete", 2: "Queued"}, "slot"),  # importing -> done
            ({1: "Importing", 2: "Queued"}, {1: "Importing", 2: "Queued"}, None),  # nothing moved
        ],
    )
    def test_slot_on_transitions_only(
        self, seen: dict[int, str] | None, now_statuses: dict[int, str], expected: str | None
    ) -> None:
        statuses = [st(batch, status) for batch, status in now_statuses.items()]
        assert should_wake("slot", seen, statuses, now=0, wake_at=100) == expected

    def test_slot_at_wake_at(self) -> None:
        assert should_wake("slot", {2: "Queued"}, [st(2, "Queued")], now=100, wake_at=100) == "slot"
        assert should_wake("slot", None, [], now=99, wake_at=100) is None
        assert should_wake("slot", None, [], now=100, wake_at=100) == "slot"


def test_state_round_trip_and_accounting() -> None:
    state = ImportState(source="s3://b/leads.csv", deadline=10.0, header=["email"])
    state.submitted += [SubmittedPart(0, 3404, 6, 9000), SubmittedPart(1, 3405, 9000, 18000)]
    state.uncertain.append([2, 18000, 27000])
    state.parts_total = 4
    again = ImportState.from_json(state.to_json())
    assert again == state and again.resume_offset == 27000 and not again.all_submitted
    text = again.accounting()
    assert "part 0 -> batch 3404, part 1 -> batch 3405" in text
    assert "outcome unknown (not resent): part 2 (source bytes 18,000-27,000)" in text
    assert "not submitted: part 3" in text
    with pytest.raises(MarketoError):
        ImportState.from_json({**state.to_json(), "version": 99})


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


class FakeFiles:
    def __init__(self, files: dict[int, bytes | None]) -> None:
        self.files = files

    def download_result_file(self, object_type, batch_id, kind, dest, *, custom_object_name=None):  # type: ignore[no-untyped-def]
        data = self.files.get(batch_id)
        if data is None:
            return None
        dest.write(data)
        return len(data)


def test_merge_keeps_one_header_and_every_row() -> None:
    files = FakeFiles(
        {
            1: b"email,Import Failure Reason\na,x\n",
            2: None,
            3: b"email,Import Failure Reason\n",
            4: b'email,Import Failure Reason\r\nb,"multi\nline"\r\nc,y',
        }
    )
    merged = merge_result_files(files, ObjectType.LEADS, [1, 2, 3, 4], "failures")
    assert merged is not None and merged.batches == 2
    assert merged.read_text() == 'email,Import Failure Reason\na,x\nb,"multi\nline"\r\nc,y\n'
    assert merge_result_files(FakeFiles({1: None, 2: b"h\n"}), ObjectType.LEADS, [1, 2], "warnings") is None


def test_summary_and_problems() -> None:
    summary = summarize(
        ObjectType.LEADS,
        [
            (0, BatchStatus(1, "Complete", 10, 2, 1, "ok")),
            (1, BatchStatus(2, "Failed", None, None, None, "Failed to import")),
        ],
    )
    assert summary["batch_ids"] == [1, 2] and summary["rows_processed"] == 10 and summary["rows_failed"] == 2
    assert problems(summary, None) == ["batch 2 (part 1) ended Failed: Failed to import"]
    assert problems(summary, 1)[-1] == "2 rows failed, more than max_failed_rows=1"
    assert set(summary) == {
        "object_type",
        "batch_ids",
        "batches",
        "rows_processed",
        "rows_failed",
        "rows_with_warning",
        "failures_path",
        "warnings_path",
    }


def test_lineage_names() -> None:
    settings = ConnectionSettings("c", "https://123-ABC-456.mktorest.com", "https://x/identity", "id", "pw")
    assert source_dataset("s3://aws_default@crm-exports/leads/2026.csv") == (
        "s3://crm-exports",
        "leads/2026.csv",
    )
    assert source_dataset("file:///data/l.csv") == ("file", "/data/l.csv")
    assert marketo_dataset(settings, ObjectType.CUSTOM_OBJECTS, custom_object_name="car_c") == (
        "marketo://123-abc-456.mktorest.com",
        "custom_objects/car_c",
    )
    assert marketo_dataset(settings, ObjectType.PROGRAM_MEMBERS, program_id=1044)[1] == "program_members/1044"


def test_openlineage_facets(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    monkeypatch.setenv(
        "AIRFLOW_CONN_MARKETO_DEFAULT",
        json.dumps(
            {"conn_type": "marketo", "host": "123-ABC-456.mktorest.com", "login": "id", "password": "pw"}
        ),
    )
    from marketo_provider.operators.bulk_import import MarketoBulkImportOperator

    op = MarketoBulkImportOperator(task_id="t", source="s3://bucket/leads.csv", object_type="leads")
    lineage = op.get_openlineage_facets_on_complete(None)
    assert [(d.namespace, d.name) for d in lineage.inputs] == [("s3://bucket", "leads.csv")]
    assert [(d.namespace, d.name) for d in lineage.outputs] == [
        ("marketo://123-abc-456.mktorest.com", "leads")
    ]
