"""A prefix of 200,000 one-row files: the validate_only plan, the summary XCom and every log line
stay small whatever the number of files (lists keep their first and last items and count the
rest)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from marketo_provider.api import ImportSpec
from marketo_provider.bounds import bounded_list, bounded_text, named
from marketo_provider.importing import BulkImport, ImportOptions
from marketo_provider.sources import Source
from marketo_provider.testing import MarketoSandbox
from tests.conftest import fast_hook

LOG = logging.getLogger("tests.many_files")
FILES = 200_000


@pytest.fixture(scope="module")
def many_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("many") / "export"
    folder.mkdir()
    for i in range(FILES):
        fd = os.open(folder / f"part-{i:06d}.csv", os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, b"email,firstName\nu%d@example.com,F%d\n" % (i, i))
        os.close(fd)
    return folder


def importer(folder: Path, **options: Any) -> BulkImport:
    return BulkImport(
        fast_hook(),
        ImportSpec.of("leads"),
        Source.of(f"{folder}/"),
        ImportOptions.of(poll_interval=0.05, **options),
        log=LOG,
    )


def test_200000_files_give_a_small_plan_summary_and_log_lines(
    marketo_env: MarketoSandbox, many_files: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    plan = importer(many_files, max_failed_rows=FILES).plan()
    assert plan["records"] == FILES
    plan_bytes = len(json.dumps(plan))
    assert plan_bytes < 64 * 1024, plan_bytes
    origins = plan["part_origins"]
    assert origins[0].startswith("part-000000.csv") and f"({FILES:,} files)" in origins[0]
    run = importer(many_files)
    begun = run.begin(None)
    assert begun is not None
    while (wait := run.advance(begun)) is not None:
        run.wait(begun, wait)
    summary = run.conclude(begun, {}.__setitem__)
    assert summary["rows_processed"] == FILES
    summary_bytes = len(json.dumps(summary))
    assert summary_bytes < 64 * 1024, summary_bytes
    longest = max(len(record.getMessage()) for record in caplog.records)
    assert longest < 10 * 1024, longest


def test_lists_keep_their_ends_and_count_the_rest() -> None:
    assert bounded_list(range(5), ends=2, noun="parts") == ["0", "1", "… 1 more parts …", "3", "4"]
    assert bounded_list(range(4), ends=2) == ["0", "1", "2", "3"]
    assert bounded_text(range(10), ends=2, noun="files") == "0; 1; … 6 more …; 8; 9 (10 files)"
    assert bounded_text(["a", "b"]) == "a; b"
    assert named(iter(f"c{i}" for i in range(100_000)), quote=True) == (
        "'c0', 'c1', 'c2', 'c3', 'c4' and 99,995 more"
    )
    assert len(bounded_list(["x" * 10_000] * 3)[0]) == 300
