"""Results of an import: merged failure and warning files, the summary, and when the task must fail."""

from __future__ import annotations

from marketo_provider.api import BatchStatus, ObjectType
from marketo_provider.results import ImportSummary
from marketo_provider.results.merging import merge_result_files


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
    assert merged.reasons == {"x": 1, "multi\nline": 1, "y": 1}
    assert merge_result_files(FakeFiles({1: None, 2: b"h\n"}), ObjectType.LEADS, [1, 2], "warnings") is None


def test_summary_and_problems() -> None:
    typed = ImportSummary(
        ObjectType.LEADS,
        [
            (0, BatchStatus(1, "Complete", 10, 2, 1, "ok")),
            (1, BatchStatus(2, "Failed", None, None, None, "Failed to import")),
        ],
    )
    summary = typed.to_xcom()
    assert summary["batch_ids"] == [1, 2] and summary["rows_processed"] == 10 and summary["rows_failed"] == 2
    assert typed.problems(None) == ["batch 2 (part 1) ended Failed: Failed to import"]
    assert typed.problems(1)[-1] == "2 rows failed, more than max_failed_rows=1"
    assert set(summary) == {
        "object_type",
        "source",
        "batch_ids",
        "batches",
        "rows_processed",
        "rows_failed",
        "rows_with_warning",
        "failures_path",
        "warnings_path",
        "failure_reasons",
        "warning_reasons",
        "api_calls",
        "resumes",
        "parts_outcome_unknown",
        "parts_sent_twice",
        "row_checks",
        "rows_kept_out",
        "rows",
        "changes",
    }


def test_nothing_imported_and_rows_failed_is_a_problem_whatever_max_failed_rows_says() -> None:
    summary = ImportSummary(ObjectType.LEADS, [(0, BatchStatus(1, "Complete", 0, 5, 0, "x"))])
    assert summary.problems(None) == [
        "nothing was imported: all 5 rows failed (see the failures for the reasons)"
    ]
    ok = ImportSummary(ObjectType.LEADS, [(0, BatchStatus(1, "Complete", 3, 5, 0, "x"))])
    assert ok.problems(None) == [] and ok.problems(10) == []


def test_only_batches_with_rows_of_a_kind_are_downloaded() -> None:
    assert not BatchStatus(1, "Complete", 10, 0, 2).has_rows("failures")
    assert BatchStatus(1, "Complete", 10, 0, 2).has_rows("warnings")
    assert not BatchStatus(1, "Failed", 0, 0, 0).has_rows("warnings")
    assert BatchStatus(1, "Complete").has_rows("failures")  # counts not sent: ask


# ---- bounds whatever a file holds --------------------------------------------------------------


def test_reasons_keep_the_most_frequent_and_count_the_rest(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from marketo_provider.results import merging as results

    monkeypatch.setattr(results, "REASONS_COUNTED", 200)
    rows = ["x@example.com," + "long " * 1000 + "\n"]
    rows += [f"r{n}@example.com,common\n" for n in range(300)]
    rows += [f"d{n}@example.com,distinct reason {n}\n" for n in range(1000)]
    data = ("email,Import Failure Reason\n" + "".join(rows)).encode()
    merged = merge_result_files(FakeFiles({1: data}), ObjectType.LEADS, [1], "failures")
    assert merged is not None and merged.rows == {1: 1301}
    reasons = merged.reasons
    assert len(reasons) == results.REASONS_KEPT + 1 and next(iter(reasons.items())) == ("common", 300)
    assert reasons[results.OTHER_REASONS] == 1301 - 300 - (results.REASONS_KEPT - 1)
    assert max(len(reason) for reason in reasons) == results.REASON_CHARS


def test_a_field_longer_than_csvs_default_limit_is_read() -> None:
    data = b"email,notes,Import Failure Reason\na@example.com," + b"n" * 500_000 + b",Too long\n"
    merged = merge_result_files(FakeFiles({1: data}), ObjectType.LEADS, [1], "failures")
    assert merged is not None and merged.reasons == {"Too long": 1}


def test_a_header_longer_than_a_part_is_a_clear_error() -> None:
    import pytest

    from marketo_provider.api import MarketoAnswerError

    data = b"email" + b"x" * 10_000_001 + b"\na,b\n"
    with pytest.raises(
        MarketoAnswerError, match="failures file of batch 7 has a header longer than 10,000,000"
    ):
        merge_result_files(FakeFiles({7: data}), ObjectType.LEADS, [7], "failures")


def test_counts_that_disagree_with_the_status_are_reported(caplog) -> None:  # type: ignore[no-untyped-def]
    import logging

    from marketo_provider.api import ImportTarget
    from marketo_provider.results import ResultsLocation
    from marketo_provider.results.publishing import publish

    files = FakeFiles(
        {1: b"email,Import Failure Reason\na,x\nb,x\nc,x\n", 2: b"email,Import Failure Reason\nd,y\n"}
    )
    summary = ImportSummary(ObjectType.LEADS)
    pushed: dict[str, object] = {}
    caplog.set_level(logging.WARNING)
    publish(
        files,
        summary,
        [BatchStatus(1, "Complete", 0, 1, 0), BatchStatus(2, "Complete", 0, 1, 0)],
        target=ImportTarget.of("leads"),
        file_format="csv",
        results=ResultsLocation(),
        push_xcom=pushed.__setitem__,
        log=logging.getLogger("tests.results"),
    )
    assert caplog.messages == [
        "The failures file of batch 1 holds 3 rows where its status counts 1; the summary keeps Marketo's counts"
    ]
    assert summary.failure_reasons == {"x": 3, "y": 1}
