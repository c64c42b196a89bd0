"""The row ledger's decisions, on local files (no Marketo): each record's fate, the row each key
ends up with, the counts that add up, and the one-line plan."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from marketo_provider.importing.plan import plan_line
from marketo_provider.sources import Source, preflight
from marketo_provider.sources.fingerprints import stable_hash
from marketo_provider.sources.ledger import Fate

SEP = "\x1f"


def check(path: Path, **options: Any) -> Any:
    return preflight(Source.of(str(path)), object_type="leads", check_columns=False, **options)


def fates(checked: Any) -> dict[int, int]:
    db = sqlite3.connect(checked.ledger.path)
    try:
        return dict(db.execute("SELECT o, why FROM drops").fetchall())
    finally:
        db.close()


def state_of(path: Path, rows: list[tuple[str, str]]) -> str:
    """A confirmed state holding the given (email, firstName) rows."""
    out = str(path)
    db = sqlite3.connect(out)
    db.execute("CREATE TABLE state (k INTEGER PRIMARY KEY, f INTEGER NOT NULL)")
    db.executemany(
        "INSERT INTO state VALUES (?, ?)", [(stable_hash(e), stable_hash(e + SEP + n)) for e, n in rows]
    )
    db.commit()
    db.close()
    return out


def test_each_kept_out_record_has_one_fate_and_the_counts_add_up(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    # 0 ok, 1 no key, 2 earlier repeat of 4, 3 ok, 4 last of its key
    path.write_text("email,firstName\na@x.com,A\n,NoKey\nb@x.com,B1\nc@x.com,C\nb@x.com,B2\n")
    checked = check(path, keep_out_invalid=True, keep_out_earlier_repeats=True)
    assert fates(checked) == {1: Fate.NO_KEY, 2: Fate.EARLIER_REPEAT}
    counts = checked.counts
    assert counts["rows"] == 5 == counts["rows_to_send"] + counts["rows_kept_out"]
    assert counts["kept_out"] == {"refused": 0, "without_key": 1, "earlier_repeats": 1, "unchanged": 0}
    refused = list(checked.ledger.refused_rows())
    assert [(values, str(place)) for values, place, _ in refused] == [(["", "NoKey"], f"{path}, line 3")]


def test_an_earlier_row_of_an_unchanged_key_is_not_sent_alone(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text("email,firstName\nb@x.com,Old\na@x.com,A\nb@x.com,New\n")
    previous = state_of(tmp_path / "state.sqlite", [("a@x.com", "A"), ("b@x.com", "New")])
    # on_repeated_keys="warn": both rows of b@x.com would be sent; Marketo ends with the last one,
    # which is as confirmed, so neither is sent (the earlier one alone would leave "Old" in Marketo)
    checked = check(path, changed_rows_only=True, previous=previous)
    assert fates(checked) == {0: Fate.UNCHANGED, 1: Fate.UNCHANGED, 2: Fate.UNCHANGED}
    assert checked.counts["rows_to_send"] == 0
    changed = tmp_path / "changed.csv"
    changed.write_text("email,firstName\nb@x.com,Old\na@x.com,A\nb@x.com,Newer\n")
    checked = check(changed, changed_rows_only=True, previous=previous)
    assert fates(checked) == {1: Fate.UNCHANGED}  # both rows of the changed key are sent, in order
    assert checked.counts["changes"] == {
        "rows_new": 0,
        "rows_changed": 2,
        "rows_sent_again": 0,
        "rows_without_key": 0,
        "rows_unchanged": 1,
        "keys_vanished": 0,
    }
    confirmed = list(checked.ledger.confirmed([(0, 3)]))
    # per key the row Marketo ends up holding
    assert sorted(confirmed) == sorted([(stable_hash("b@x.com"), stable_hash("b@x.com" + SEP + "Newer"))])


def test_the_plan_line_says_what_will_fail() -> None:
    plan = {
        "source": "leads.csv",
        "parts": 2,
        "rows": {
            "rows": 10,
            "rows_to_send": 7,
            "rows_kept_out": 3,
            "kept_out": {"refused": 2, "without_key": 1, "earlier_repeats": 0, "unchanged": 0},
        },
        "row_checks": {
            "rows_predicted_to_fail": 3,
            "rows_certain_to_fail": 3,
            "failures": {"Invalid data type in field Lead Score": {"rows": 2}, "missing key": {"rows": 1}},
        },
    }
    line = plan_line(plan)
    assert line.startswith("leads.csv: 10 rows; 7 sent; 3 kept out (2 refused, 1 without key")
    assert "3 rows are predicted to fail (3 certain to): 2 x 'Invalid data type in field Lead Score'" in line
    assert "every check passed" not in line


def test_a_ledger_place_read_back_from_a_shared_state_is_not_trusted(tmp_path: Path) -> None:
    import os
    import tempfile

    import pytest

    from marketo_provider.api import MarketoValueError
    from marketo_provider.importing.ledgers import LedgerPlace

    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    name = "dag_task_run-0123456789abcdef.sqlite.gz"
    place = LedgerPlace({"name": name, "local": str(victim), "stored": None})
    assert place.local == os.path.join(tempfile.gettempdir(), "marketo-provider-ledgers", name[:-3])
    place.remove()
    assert victim.read_text() == "keep me"  # the path written in the state is never used
    for bad in ("../../victim.txt", "/etc/passwd", "x.sqlite.gz", ""):
        with pytest.raises(MarketoValueError, match="does not write"):
            LedgerPlace({"name": bad, "local": str(victim), "stored": None})
