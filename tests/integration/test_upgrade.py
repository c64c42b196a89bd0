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
