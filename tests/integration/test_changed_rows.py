"""Import only what changed, over real HTTP against the sandbox: what Marketo confirmed is kept in a
state folder; the next run sends the new and changed rows and the rows that failed, nothing else."""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from marketo_provider.api import ImportSpec
from marketo_provider.importing import BulkImport, ImportAbortedError, ImportOptions
from marketo_provider.importing.changes import StateLockedError
from marketo_provider.sources import Source
from marketo_provider.testing import MarketoSandbox
from tests.conftest import fast_hook

LOG = logging.getLogger("tests.changed_rows")
ROWS = 400


def write_leads(
    path: Path, changed: set[int] = frozenset(), bad: set[int] = frozenset(), rows: int = ROWS
) -> None:  # type: ignore[assignment]
    lines = ["email,firstName,leadScore\n"]
    for i in range(rows):
        name = f"Changed{i}" if i in changed else f"First{i}"
        score = "n/a" if i in bad else str(i % 90)
        lines.append(f"u{i}@example.com,{name},{score}\n")
    path.write_text("".join(lines))


def run_import(path: Path, state: Path, *, owner: str = "dag/task/run", **options: Any) -> dict[str, Any]:
    run = BulkImport(
        fast_hook(),
        ImportSpec.of("leads"),
        Source.of(str(path), max_part_bytes=3_000),
        ImportOptions.of(**{"poll_interval": 0.05, **options}, changed_rows_only=True, state_path=str(state)),
        log=LOG,
        owner=owner,
    )
    begun = run.begin(None)
    assert begun is not None
    while (wait := run.advance(begun)) is not None:
        run.wait(begun, wait)
    return run.conclude(begun, {}.__setitem__)


def sent(sandbox: MarketoSandbox, since: int = 0) -> Counter[str]:
    return Counter(r["email"] for r in sandbox.imported_rows("leads")[since:])


def test_a_second_run_without_changes_sends_nothing(marketo_env: MarketoSandbox, tmp_path: Path) -> None:
    source, state = tmp_path / "leads.csv", tmp_path / "state"
    write_leads(source)
    first = run_import(source, state)
    assert first["changes"]["rows_new"] == ROWS and first["changes"]["state_generation"] == 1
    assert first["changes"]["full"] is True and "no state" in first["changes"]["why_full"]
    assert sum(sent(marketo_env).values()) == ROWS
    creates = len(marketo_env.calls_to("/bulk/v1/leads.json", "POST"))
    second = run_import(source, state)
    assert len(marketo_env.calls_to("/bulk/v1/leads.json", "POST")) == creates  # no create call at all
    assert second["batch_ids"] == [] and second["changes"]["rows_unchanged"] == ROWS
    assert second["changes"]["state_generation"] == 2
    pointer = json.loads((state / "latest.json").read_text())
    assert pointer["generation"] == 2 and pointer["keys"] == ROWS
    assert not (state / "lock.json").exists()


def test_after_a_change_only_the_changed_rows_and_the_failed_ones_are_sent(
    marketo_env: MarketoSandbox, tmp_path: Path
) -> None:
    source, state = tmp_path / "leads.csv", tmp_path / "state"
    write_leads(source, bad={7, 300})  # Marketo refuses two rows the first time
    first = run_import(source, state, check_values=False)
    assert first["rows_failed"] == 2
    imported = len(marketo_env.imported_rows("leads"))
    changed = {i for i in range(ROWS) if i % 100 == 3}  # 1% of the rows
    write_leads(source, changed=changed, bad=set())  # the two bad rows fixed
    second = run_import(source, state)
    expected = {f"u{i}@example.com" for i in changed | {7, 300}}
    assert set(sent(marketo_env, imported)) == expected and sum(sent(marketo_env, imported).values()) == len(
        expected
    )
    counts = second["changes"]
    # the rows Marketo failed were never confirmed: sent again after failing, neither new nor changed
    assert (counts["rows_new"], counts["rows_changed"], counts["rows_sent_again"]) == (0, 4, 2)
    assert counts["rows_unchanged"] == ROWS - 6
    third = run_import(source, state)
    assert third["batch_ids"] == [] and third["changes"]["rows_unchanged"] == ROWS


def test_a_row_that_fails_every_night_is_sent_again_and_counted_so(
    marketo_env: MarketoSandbox, tmp_path: Path
) -> None:
    source, state = tmp_path / "leads.csv", tmp_path / "state"
    write_leads(source, bad={5})
    first = run_import(source, state, check_values=False)
    assert first["rows_failed"] == 1 and first["changes"]["rows_sent_again"] == 0
    write_leads(source, changed={9}, bad={5})  # the row still bad, another one changed
    second = run_import(source, state, check_values=False)
    counts = second["changes"]
    assert (counts["rows_new"], counts["rows_changed"], counts["rows_sent_again"]) == (0, 1, 1)
    assert second["rows"]["rows_to_send"] == 2 and second["rows_failed"] == 1
    write_leads(source, changed={9})  # the bad row fixed
    third = run_import(source, state, check_values=False)
    counts = third["changes"]
    assert (counts["rows_new"], counts["rows_changed"], counts["rows_sent_again"]) == (0, 0, 1)
    assert third["rows_failed"] == 0 and third["rows_processed"] == 1
    fourth = run_import(source, state)
    assert fourth["batch_ids"] == [] and fourth["changes"]["rows_unchanged"] == ROWS
    assert fourth["changes"]["rows_sent_again"] == 0


def test_an_import_that_fails_leaves_its_rows_to_the_next_run(
    marketo_env: MarketoSandbox, tmp_path: Path
) -> None:
    source, state = tmp_path / "leads.csv", tmp_path / "state"
    write_leads(source)
    run_import(source, state)
    changed = set(range(0, ROWS, 2))  # two parts and more
    write_leads(source, changed=changed)
    marketo_env.inject_fault(
        "/bulk/v1/leads.json", method="POST", skip=1, code="1003"
    )  # the second part fails
    with pytest.raises(ImportAbortedError):
        run_import(source, state)
    assert json.loads((state / "latest.json").read_text())["generation"] == 1  # nothing confirmed was written
    assert (
        not (state / "lock.json").exists()
        or json.loads((state / "lock.json").read_text())["owner"] == "dag/task/run"
    )
    imported = len(marketo_env.imported_rows("leads"))
    again = run_import(source, state)
    assert set(sent(marketo_env, imported)) == {f"u{i}@example.com" for i in changed}
    assert again["changes"]["rows_changed"] == len(changed)


def test_two_runs_at_once_cannot_corrupt_the_state(marketo_env: MarketoSandbox, tmp_path: Path) -> None:
    source, state = tmp_path / "leads.csv", tmp_path / "state"
    write_leads(source)
    marketo_env.hold_next_jobs(1)
    results: dict[str, Any] = {}

    def first() -> None:
        try:
            # polls every half second while its job is held: well under Marketo's rate limit
            results["first"] = run_import(source, state, owner="dag/task/run-1", poll_interval=0.5)
        except Exception as exc:  # pragma: no cover - reported by the assertion below
            results["first"] = exc

    thread = threading.Thread(target=first)
    thread.start()
    try:
        import time

        deadline = time.monotonic() + 20
        while not marketo_env.jobs and time.monotonic() < deadline:  # the first run's job, held
            time.sleep(0.02)
        with pytest.raises(StateLockedError, match=r"another run \(dag/task/run-1\)"):
            run_import(source, state, owner="dag/task/run-2")
    finally:
        marketo_env.release()
        thread.join(60)
    assert isinstance(results["first"], dict), results
    third = run_import(source, state, owner="dag/task/run-3")
    assert third["batch_ids"] == [] and third["changes"]["rows_unchanged"] == ROWS
    assert Counter(sent(marketo_env).values()) == {1: ROWS}  # every row once, none lost


def test_full_refresh_and_another_target_send_everything(marketo_env: MarketoSandbox, tmp_path: Path) -> None:
    source, state = tmp_path / "leads.csv", tmp_path / "state"
    write_leads(source)
    run_import(source, state)
    refreshed = run_import(source, state, full_refresh="True")
    assert refreshed["changes"]["full"] is True and refreshed["changes"]["rows_new"] == ROWS
    assert "full_refresh" in refreshed["changes"]["why_full"]
    assert len(refreshed["batch_ids"]) > 1
    other = BulkImport(
        fast_hook(),
        ImportSpec.of("leads", list_id=12),
        Source.of(str(source), max_part_bytes=3_000),
        ImportOptions.of(poll_interval=0.05, changed_rows_only=True, state_path=str(state)),
        log=LOG,
    ).plan()
    assert other["changes"]["full"] is True and "list_id" in other["changes"]["why_full"]
    assert other["records_to_send"] == ROWS


def test_changed_rows_only_needs_a_state_path() -> None:
    with pytest.raises(ValueError, match="changed_rows_only needs state_path"):
        ImportOptions.of(changed_rows_only=True)
