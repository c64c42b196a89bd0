"""An import's state machine (BulkImport) driven directly over real HTTP against the sandbox: the
calls it makes, a queue shared by several imports, what survives a failure after the upload."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from marketo_provider.api import ImportSpec
from marketo_provider.hooks.marketo import clear_token_cache
from marketo_provider.importing import BulkImport, ImportFailedError, ImportOptions, ImportState
from marketo_provider.sources import Source
from marketo_provider.testing import MarketoSandbox
from tests.conftest import fast_hook
from tests.helpers import leads_csv

LOG = logging.getLogger("tests.bulk_import")


@pytest.fixture
def fast_queue(monkeypatch: pytest.MonkeyPatch) -> Iterator[MarketoSandbox]:
    """A sandbox with Marketo's queue (2 importing, 10 queued) and jobs of 0.2 s. Time runs about a
    hundred times faster than Marketo's, so the 100 calls / 20 s limit is off here (the benchmarks
    measure an import under it)."""
    clear_token_cache()
    with MarketoSandbox(queued_seconds=0.02, import_seconds=0.2, rate_limit=False) as sb:
        for key, value in sb.env().items():
            monkeypatch.setenv(key, value)
        yield sb


def write_leads(tmp_path: Path, name: str, rows: int, *, first: int = 0, **kwargs: Any) -> tuple[Path, dict]:
    data, expected = leads_csv(rows, **kwargs)
    if first:  # distinct emails per file
        data = data.replace(b"\nlead", f"\nl{first}x".encode())
    path = tmp_path / name
    path.write_bytes(data)
    return path, expected


def new_import(
    path: Path,
    *,
    part_bytes: int = 2_000,
    poll: float = 0.05,
    results_path: str | None = None,
    max_failed_rows: int | None = None,
    check_columns: bool = True,
    resend: bool = False,
) -> BulkImport:
    spec = ImportSpec.of("leads")
    options = ImportOptions.of(
        poll_interval=poll,
        results_path=results_path,
        max_failed_rows=max_failed_rows,
        check_columns=check_columns,
        resend_uncertain_parts=resend,
    )
    return BulkImport(fast_hook(), spec, Source.of(str(path), max_part_bytes=part_bytes), options, log=LOG)


def run_to_end(run: BulkImport, state: ImportState, xcom: dict[str, Any]) -> dict[str, Any]:
    while (wait := run.advance(state)) is not None:
        run.wait(state, wait)
    return run.conclude(state, xcom.__setitem__)


def test_an_import_of_many_parts_runs_to_the_end_with_calls_in_proportion(
    fast_queue: MarketoSandbox, tmp_path: Path
) -> None:
    path, expected = write_leads(tmp_path, "leads.csv", 1_500, fail_every=97, warn_every=89)
    run = new_import(path, poll=0.1)
    state = run.begin(None)
    assert state is not None
    xcom: dict[str, Any] = {}
    summary = run_to_end(run, state, xcom)
    parts = len(summary["batch_ids"])
    assert parts >= 30 and summary["rows_failed"] == expected["failed"]
    assert summary["rows_processed"] == expected["processed"]
    emails = [r["email"] for r in fast_queue.imported_rows("leads")]
    assert len(emails) == len(set(emails)) == expected["processed"]
    creates = fast_queue.calls_to("/bulk/v1/leads.json", "POST")
    statuses = fast_queue.calls_to("/bulk/v1/leads/batch/*.json")
    assert len(creates) == parts and not any(c.error_code == "1016" for c in creates)  # never bound to fail
    for job in fast_queue.jobs:  # a finished batch is never asked about again
        after = [c for c in statuses if c.path.endswith(f"/{job.batch_id}.json") and c.at >= job.finished_at]
        assert len(after) <= 1, job.batch_id  # (0 when the answering call arrived as the job finished)
    assert len(statuses) <= 3 * parts  # each final status once, plus one call per poll in between
    rest_calls = [c for c in fast_queue.calls if not c.path.startswith("/identity")]
    assert summary["api_calls"] == len(rest_calls)
    # Result files are fetched only for batches whose counts say they have rows.
    failing = {b["batch_id"] for b in summary["batches"] if b["rows_failed"]}
    assert {c.path.split("/")[-2] for c in fast_queue.calls_to("*/failures.json")} == {
        str(b) for b in failing
    }
    assert xcom["failures"].count("\n") == expected["failed"] + 1
    assert sum(summary["failure_reasons"].values()) == expected["failed"]
    assert sum(summary["warning_reasons"].values()) == summary["rows_with_warning"] == expected["warned"]


def test_three_imports_share_one_queue_and_each_row_lands_once(
    fast_queue: MarketoSandbox, tmp_path: Path
) -> None:
    runs = []
    for i in range(3):
        path, _ = write_leads(tmp_path, f"leads{i}.csv", 600, first=i + 1)
        runs.append(new_import(path))
    results: dict[int, dict[str, Any]] = {}
    errors: list[BaseException] = []

    def go(i: int) -> None:
        try:
            state = runs[i].begin(None)
            assert state is not None
            results[i] = run_to_end(runs[i], state, {})
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == [] and sorted(results) == [0, 1, 2]
    emails = [r["email"] for r in fast_queue.imported_rows("leads")]
    assert len(emails) == len(set(emails)) == 1_800
    batches = [b for s in results.values() for b in s["batch_ids"]]
    assert (
        len(batches)
        == len(set(batches))
        == sum(1 for c in fast_queue.calls_to("/bulk/v1/leads.json") if c.batch_id)
    )


def test_the_summary_reaches_xcom_when_the_results_cannot_be_written(
    fast_queue: MarketoSandbox, tmp_path: Path
) -> None:
    path, expected = write_leads(tmp_path, "leads.csv", 50, fail_every=10)
    results = tmp_path / "results"
    run = new_import(path, results_path=str(results))
    state = run.begin(None)  # the location is writable now: checked before the first upload
    assert state is not None and results.is_dir()
    results.rmdir()
    results.write_bytes(b"now a file where the folder was")
    xcom: dict[str, Any] = {}
    with pytest.raises(ImportFailedError, match=f"could not be written to {results}") as failed:
        run_to_end(run, state, xcom)
    assert not failed.value.permanent  # a task retry writes them again
    summary = xcom["return_value"]
    assert summary["batch_ids"] == state.batch_ids and summary["rows_failed"] == expected["failed"]


def test_nothing_imported_is_not_a_success(fast_queue: MarketoSandbox, tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_bytes(b"email,firstName\na@example.com,A,extra\nb@example.com\n")
    run = new_import(path, check_columns=False)
    state = run.begin(None)
    assert state is not None
    xcom: dict[str, Any] = {}
    with pytest.raises(ImportFailedError, match="nothing was imported: all 2 rows failed"):
        run_to_end(run, state, xcom)
    assert xcom["return_value"]["rows_failed"] == 2 and xcom["failures"]


@pytest.mark.parametrize("resend", [False, True])
def test_a_part_that_was_uploading_when_the_task_died(
    fast_queue: MarketoSandbox, tmp_path: Path, resend: bool
) -> None:
    path, _ = write_leads(tmp_path, "leads.csv", 120)
    first = new_import(path, part_bytes=1_500)
    state = first.begin(None)
    assert state is not None
    # The first try submits part 0, records part 1 as in flight, and dies while uploading it
    # (Marketo got it: the sandbox created the job, but the task never heard the answer).
    saved: list[dict[str, Any]] = []
    first.batches._save = lambda s: saved.append(s.to_json())
    first.hook.submit_import = _die_after(first.hook.submit_import, calls=2)
    with pytest.raises(SystemExit):
        first.advance(state)
    last = ImportState.from_json(saved[-1])
    assert last.in_flight is not None and last.in_flight.part == 1 and [p.part for p in last.submitted] == [0]
    # The retried task resumes from the saved state.
    second = new_import(path, part_bytes=1_500, resend=resend)
    resumed = second.begin(saved[-1])
    assert resumed is not None
    xcom: dict[str, Any] = {}
    creates_before = len(fast_queue.calls_to("/bulk/v1/leads.json", "POST"))
    if resend:
        summary = run_to_end(second, resumed, xcom)
        emails = [r["email"] for r in fast_queue.imported_rows("leads")]
        assert set(emails) == {f"lead{i}@example.com" for i in range(1, 121)}
        assert len(emails) > len(set(emails))  # part 1 was imported twice, as the option says
        assert summary["parts_sent_twice"] == [1] and summary["parts_outcome_unknown"] == []
    else:
        with pytest.raises(ImportFailedError, match=r"outcome unknown .*part 1 \(source bytes"):
            run_to_end(second, resumed, xcom)
        emails = [r["email"] for r in fast_queue.imported_rows("leads")]
        assert len(emails) == len(set(emails)) == 120  # nothing doubled; part 1 happened to arrive
        assert xcom["return_value"]["batch_ids"] == resumed.batch_ids
        assert xcom["return_value"]["parts_outcome_unknown"] == [1]
    creates = fast_queue.calls_to("/bulk/v1/leads.json", "POST")[creates_before:]
    parts_after = (resumed.parts_total or 0) - (1 if resend else 2)
    assert len(creates) == parts_after


def _die_after(submit: Any, calls: int) -> Any:
    """``submit`` that sends the ``calls``-th upload and then dies as a killed task would."""
    count = [0]

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        count[0] += 1
        if count[0] == calls:
            try:
                submit(*args, **kwargs)
            finally:
                raise SystemExit("the task process died")
        return submit(*args, **kwargs)

    return wrapped


def test_validate_only_checks_everything_and_imports_nothing(
    fast_queue: MarketoSandbox, tmp_path: Path
) -> None:
    from marketo_provider.operators.bulk_import import MarketoBulkImportOperator

    path, _ = write_leads(tmp_path, "leads.csv", 300)

    class TI:
        def xcom_push(self, key: str, value: Any) -> None:
            raise AssertionError("validate_only pushes nothing but its return value")

    op = MarketoBulkImportOperator(
        task_id="check",
        source=str(path),
        lookup_field="email",
        list_id=12,
        max_part_bytes=4_000,
        results_path=str(tmp_path / "results"),
        validate_only=True,
    )
    plan = op.execute({"ti": TI()})  # type: ignore[arg-type]
    assert plan["validate_only"] is True and plan["parts"] >= 3 and plan["bytes"] > 0
    assert plan["columns"] == ["email", "firstName", "leadScore", "address"]
    assert plan["query"] == {"format": "csv", "lookupField": "email", "listId": "12"}
    assert fast_queue.calls_to("/bulk/*") == [] and fast_queue.calls_to("/rest/v1/leads/describe2.json")
    assert (tmp_path / "results").is_dir() and list((tmp_path / "results").iterdir()) == []


@pytest.mark.parametrize("resend", [False, True])
def test_an_upload_whose_answer_was_lost(fast_queue: MarketoSandbox, tmp_path: Path, resend: bool) -> None:
    path, _ = write_leads(tmp_path, "leads.csv", 120)
    # Marketo creates the job for part 1, then the connection drops before the answer.
    fast_queue.inject_fault("/bulk/v1/leads.json", drop_connection=True, after_processing=True, skip=1)
    run = new_import(path, part_bytes=1_500, resend=resend)
    state = run.begin(None)
    assert state is not None
    xcom: dict[str, Any] = {}
    emails: list[str]
    if resend:
        summary = run_to_end(run, state, xcom)
        assert summary["parts_sent_twice"] == [1]
        emails = [r["email"] for r in fast_queue.imported_rows("leads")]
        assert len(set(emails)) == 120 and len(emails) > 120
    else:
        with pytest.raises(ImportFailedError, match=r"part 1 \(source bytes"):
            run_to_end(run, state, xcom)
        assert xcom["return_value"]["parts_outcome_unknown"] == [1]
        emails = [r["email"] for r in fast_queue.imported_rows("leads")]
        assert len(emails) == len(set(emails)) == 120
    creates = fast_queue.calls_to("/bulk/v1/leads.json", "POST")
    assert len(creates) == (state.parts_total or 0) + (1 if resend else 0)


def test_a_retried_import_resumes_mid_way_through_compressed_files(
    fast_queue: MarketoSandbox, tmp_path: Path
) -> None:
    """Four headerless gzip files (a warehouse unload) cut into parts that span files; the task dies
    after some parts, and the retry resumes from the saved state without resending a part."""
    import gzip

    folder = tmp_path / "unload"
    folder.mkdir()
    emails = []
    for f in range(4):
        rows = [f"u{f}-{i}@example.com,Name{i},{i % 100}\n" for i in range(150)]
        emails += [r.split(",", 1)[0] for r in rows]
        (folder / f"data_0_0_{f}.csv.gz").write_bytes(gzip.compress("".join(rows).encode()))
    spec = ImportSpec.of("leads")
    source = Source.of(str(folder) + "/", columns=["email", "firstName", "leadScore"], max_part_bytes=2_500)
    options = ImportOptions.of(poll_interval=0.05)
    first = BulkImport(fast_hook(), spec, source, options, log=LOG)
    saved: list[dict[str, Any]] = []
    first.batches._save = lambda s: saved.append(s.to_json())
    state = first.begin(None)
    assert state is not None
    first.hook.submit_import = _die_after(first.hook.submit_import, calls=5)
    with pytest.raises(SystemExit):
        first.advance(state)
    before = ImportState.from_json(saved[-1])
    assert [p.part for p in before.submitted] == [0, 1, 2, 3] and before.in_flight is not None
    second = BulkImport(fast_hook(), spec, source, options, log=LOG)
    resumed = second.begin(saved[-1])
    assert resumed is not None
    with pytest.raises(ImportFailedError, match=r"part 4 \(source bytes"):  # cut off mid-upload: reported
        run_to_end(second, resumed, {})
    uploads = [j.filename for j in fast_queue.jobs]
    assert len(uploads) == len(set(uploads)) == resumed.parts_total  # no part twice
    imported = [r["email"] for r in fast_queue.imported_rows("leads")]
    assert sorted(imported) == sorted(emails)  # every row once (part 4 had arrived)
