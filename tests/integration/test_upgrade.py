"""An import deferred or recorded by release 0.2 (its trigger's kwargs in the metadata database, its
state in the task state store) resumes under this release: the JSON in tests/fixtures is what 0.2
wrote for an import of three parts, two of them accepted as batches 1001 and 1002."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from marketo_provider.api import ImportSpec
from marketo_provider.importing import BulkImport, ImportOptions, ImportState
from marketo_provider.sources import Source, source_parts
from marketo_provider.testing import MarketoSandbox
from marketo_provider.triggers.bulk_import import MarketoBulkImportTrigger
from tests.conftest import fast_hook

FIXTURES = Path(__file__).parent.parent / "fixtures"
PART_BYTES = 2_000
LOG = logging.getLogger("tests.upgrade")


def write_source(path: Path) -> list[str]:
    rows = [f"u{i:03d}@example.com,Name{i},{i % 90}\n" for i in range(160)]
    path.write_text("email,firstName,leadScore\n" + "".join(rows))
    return [r.split(",", 1)[0] for r in rows]


def submit_first_two_parts(source: Source) -> list[int]:
    """What release 0.2 had done before it deferred: parts 0 and 1 accepted."""
    hook = fast_hook()
    spec = ImportSpec.of("leads")
    with source_parts(source) as parts:
        return [
            int(
                hook.submit_import(spec, part.reader(), filename=f"leads-part{part.index:04d}.csv")["batchId"]
            )
            for part in parts
            if part.index < 2
        ]


async def first_event(trigger: MarketoBulkImportTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("the trigger ended without an event")


@pytest.mark.parametrize("kept_in", ["trigger_kwargs", "task_state_store"])
def test_an_import_begun_by_the_earlier_release_resumes(
    marketo_env: MarketoSandbox, tmp_path: Path, kept_in: str
) -> None:
    path = tmp_path / "leads.csv"
    emails = write_source(path)
    source = Source.of(str(path), max_part_bytes=PART_BYTES)
    assert submit_first_two_parts(source) == [1001, 1002]
    run = BulkImport(
        fast_hook(), ImportSpec.of("leads"), source, ImportOptions.of(poll_interval=0.05), log=LOG
    )
    if kept_in == "trigger_kwargs":
        stored = json.loads((FIXTURES / "trigger_kwargs_0.2.json").read_text())
        assert stored["classpath"] == "marketo_provider.triggers.bulk_import.MarketoBulkImportTrigger"
        event = asyncio.run(first_event(MarketoBulkImportTrigger(**stored["kwargs"])))
        assert event["event"] == "slot_free"
        state = run.resume(event)
    else:
        saved = json.loads((FIXTURES / "task_state_store_0.2.json").read_text())
        begun = run.begin(saved)
        assert begun is not None
        state = begun
    assert [p.batch_id for p in state.submitted] == [1001, 1002]
    while (wait := run.advance(state)) is not None:
        run.wait(state, wait)
    summary = run.conclude(state, {}.__setitem__)
    uploads = marketo_env.calls_to("/bulk/v1/leads.json", "POST")
    assert len(uploads) == state.parts_total == 3  # part 2 sent once, parts 0 and 1 not again
    assert sorted(r["email"] for r in marketo_env.imported_rows("leads")) == sorted(emails)
    assert summary["batch_ids"][:2] == [1001, 1002] and summary["rows_processed"] == len(emails)
    assert ImportState.from_json(state.to_json()) == state


# ---- a nightly sync begun by release 0.3 (tests/fixtures/sync_0.3) --------------------------------

SYNC = FIXTURES / "sync_0.3"
SYNC_OPTIONS: dict[str, Any] = {
    "poll_interval": 0.05,
    "on_invalid_rows": "skip",
    "on_repeated_keys": "keep_last",
    "changed_rows_only": True,
}


def write_sync_source(path: Path, night: int) -> None:
    """The source of the 0.3 fixtures: rows 0-119 renamed on the second night."""
    lines = ["email,firstName,leadScore\n"]
    for i in range(160):
        email = "" if i == 12 else f"u{ {140: 3, 141: 20}.get(i, i) }@example.com"
        name = f"Row{i}" + ("b" if night > 1 and i < 120 else "")
        score = "n/a" if i in (7, 33) else str(i % 90)
        lines.append(f"{email},{name},{score}\n")
    path.write_text("".join(lines))


def sync_run(path: Path, state: Path, owner: str) -> BulkImport:
    return BulkImport(
        fast_hook(),
        ImportSpec.of("leads"),
        Source.of(str(path), max_part_bytes=1000),
        ImportOptions.of(**SYNC_OPTIONS, state_path=str(state)),
        log=LOG,
        owner=owner,
    )


def finish(run: BulkImport, state: ImportState) -> dict[str, Any]:
    while (wait := run.advance(state)) is not None:
        run.wait(state, wait)
    return run.conclude(state, {}.__setitem__)


def night2_names() -> set[str]:
    """What the second night sends: the renamed rows, less those refused (7, 12, 33) and the
    earlier rows of repeated keys (3, 20)."""
    return {f"Row{i}b" for i in range(120)} - {"Row7b", "Row12b", "Row33b", "Row3b", "Row20b"}


def test_a_sync_continues_from_the_state_the_earlier_release_kept(
    marketo_env: MarketoSandbox, tmp_path: Path
) -> None:
    import shutil

    state = tmp_path / "state"
    shutil.copytree(SYNC / "state", state)
    path = tmp_path / "leads.csv"
    write_sync_source(path, 2)
    run = sync_run(path, state, "nightly/import/night2")
    begun = run.begin(None)
    assert begun is not None
    summary = finish(run, begun)
    sent = [r["firstName"] for r in marketo_env.imported_rows("leads")]
    assert sorted(sent) == sorted(night2_names())
    assert summary["changes"]["state_generation"] == 2 and not (state / "lock.json").exists()
    third = sync_run(path, state, "nightly/import/night3")
    again = third.begin(None)
    assert again is not None
    assert finish(third, again)["batch_ids"] == []  # nothing changed since: nothing sent


def test_a_sync_journal_of_the_earlier_release_resumes(marketo_env: MarketoSandbox, tmp_path: Path) -> None:
    import shutil

    state = tmp_path / "state"
    shutil.copytree(SYNC / "state", state)
    path = tmp_path / "leads.csv"
    write_sync_source(path, 2)
    saved = json.loads((SYNC / "journal.json").read_text())
    # What 0.3 had done: the first two parts of its cut accepted as batches 1001 and 1002.
    run = sync_run(path, state, "nightly/import/night2")
    first = ImportState.from_json(saved)
    ledger = run.ledger(first)
    assert ledger is not None  # written again from the source: 0.3 kept no ledger
    hook, spec = fast_hook(), ImportSpec.of("leads")
    with source_parts(run.source, expected_header=first.header, ledger=ledger) as parts:
        for part in parts:
            if part.index < 2:
                assert [part.source_start, part.source_end] == saved["submitted"][part.index][2:4]
                hook.submit_import(spec, part.reader(), filename=f"leads-part{part.index:04d}.csv")
    run.release()
    run = sync_run(path, state, "nightly/import/night2")
    begun = run.begin(saved)
    assert begun is not None and [p.batch_id for p in begun.submitted] == [1001, 1002]
    summary = finish(run, begun)
    sent = [r["firstName"] for r in marketo_env.imported_rows("leads")]
    assert sorted(sent) == sorted(night2_names())  # every row once: the first two parts not again
    assert summary["changes"]["state_generation"] == 2 and not (state / "lock.json").exists()
    assert summary["batches"][0]["origin"] == "leads.csv bytes 26-990"
    third = sync_run(path, state, "nightly/import/night3")
    again = third.begin(None)
    assert again is not None
    assert finish(third, again)["batch_ids"] == []  # what the 0.3 parts sent was confirmed too
