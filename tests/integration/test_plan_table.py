"""The validate_only plan in the task log: a short table naming the source once."""

from __future__ import annotations

import logging
from pathlib import Path

from marketo_provider.api import ImportSpec
from marketo_provider.importing import BulkImport, ImportOptions
from marketo_provider.plan_table import plan_lines
from marketo_provider.sources import Source
from marketo_provider.testing import MarketoSandbox
from tests.conftest import fast_hook
from tests.helpers import leads_csv

LOG = logging.getLogger("tests.plan_table")


def test_the_plan_as_a_table(marketo_env: MarketoSandbox, tmp_path: Path) -> None:
    data, expected = leads_csv(200, fail_every=20, warn_every=30)
    source = tmp_path / "leads.csv"
    source.write_bytes(data)
    run = BulkImport(
        fast_hook(),
        ImportSpec.of("leads"),
        Source.of(str(source), max_part_bytes=3_000),
        ImportOptions.of(),
        log=LOG,
    )
    plan = run.plan()
    lines = plan_lines(plan)
    assert lines[0] == f"validate_only: nothing imported. {source} into leads:"
    table = "\n".join(lines)
    assert table.count(str(source)) == 1  # the source named once, not on every place
    rows = {
        line.split("  ")[1].strip(): line for line in lines[1:] if line.startswith("  ") and "  " in line[2:]
    }
    assert rows["records in the source"].split()[-1] == "200"
    assert rows["kept out"].split()[-1] == "0"
    assert rows["to send"].split()[2:5] == ["200", "in", f"{plan['parts']}"]
    assert rows["predicted to fail"].split()[-1] == str(expected["failed"])
    reason = next(line for line in lines if "Invalid data type in field Lead Score" in line)
    assert reason.endswith("lines 21, 41, 61, 81, 101")  # the first five places, as lines of the source
    assert str(expected["failed"]) in reason.split("(expected a whole number)")[1]
    assert rows["predicted to warn"].split()[-1] == str(expected["warned"])
    parts = lines[lines.index("  parts:") + 1 :]
    assert [p.split(None, 1)[1] for p in parts] == plan["part_origins"] and len(parts) == plan["parts"] >= 3


def test_a_plan_of_a_folder_names_each_file_and_the_causes_kept_out() -> None:
    plan = {
        "validate_only": True,
        "target": "program members of program 1044",
        "source": "s3://***@exports/leads/",
        "parts": 2,
        "part_origins": ["a.csv bytes 30-900", "b.csv bytes 30-700"],
        "bytes": 1540,
        "records": 30,
        "records_to_send": 27,
        "rows": {
            "records": 30,
            "rows": 30,
            "rows_to_send": 27,
            "rows_kept_out": 3,
            "kept_out": {"refused": 2, "without_key": 0, "earlier_repeats": 1, "unchanged": 0},
        },
        "row_checks": {
            "rows_predicted_to_fail": 2,
            "rows_predicted_warned": 0,
            "failures": {
                "Value for required field 'email' not specified": {
                    "rows": 2,
                    "first": ["a.csv, line 3", "b.csv, line 9"],
                }
            },
            "warnings": {},
            "rows_repeating_a_key": 2,
            "repeated_keys": 1,
        },
        "changes": {"rows_new": 20, "rows_changed": 7, "rows_unchanged": 3},
    }
    lines = plan_lines(plan)
    assert lines[0].endswith("s3://***@exports/leads/ into program members of program 1044:")
    text = "\n".join(lines)
    assert "a.csv, line 3; b.csv, line 9" in text  # places in other files keep their file's name
    kept = next(line for line in lines if line.strip().startswith("kept out"))
    assert kept.split()[-1] == "3"
    assert any(line.strip().startswith("earlier repeats") and line.split()[-1] == "1" for line in lines)
    assert any(line.strip().startswith("rows repeating a key") and " 2  1 keys" in line for line in lines)
    assert any(
        line.strip().startswith("changed_rows_only: unchanged") and line.split()[-1] == "3" for line in lines
    )
