"""Writing the row ledger (:mod:`marketo_provider.sources.ledger`) in the one pass pre-flight makes:
every record's place, key and values' hashes and problems as the parts go by; then, once, the
repeated keys, each kept-out record's fate and the counts that add up."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Mapping
from typing import Any, cast

from marketo_provider.sources.checks import RowRules
from marketo_provider.sources.chunks import Columns, key_column, record_chunks, records_utf8, utf8_each
from marketo_provider.sources.fingerprints import stable_hashes
from marketo_provider.sources.ledger import KEPT_OUT_NAMES, LEDGER_VERSION, Fate, Ledger
from marketo_provider.sources.parts import Part
from marketo_provider.sources.policy import RowPolicy
from marketo_provider.sources.records import LineTracker, Location
from marketo_provider.sources.report import EXAMPLES, CheckReport


def _connect(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path)
    for pragma in ("journal_mode=OFF", "synchronous=OFF", "temp_store=FILE", "cache_size=-16000"):
        db.execute(f"PRAGMA {pragma}")
    return db


class LedgerWriter:
    """Writes a ledger while pre-flight reads the parts of a source in order from its start.

    :param path: the SQLite file to write (its folder exists; the file does not).
    :param rules: what the rows are checked against (their fields, their key).
    :param policy: what becomes of invalid rows, repeated keys and unchanged rows.
    :param values: check the values against the fields' types.
    :param previous: the last confirmed state (an SQLite file with a table ``state(k, f)``), to
        compare with (``changed_rows_only``); None: every row is new.
    """

    def __init__(
        self,
        path: str,
        rules: RowRules,
        policy: RowPolicy,
        *,
        values: bool = True,
        previous: str | None = None,
    ) -> None:
        self.path = path
        self.rules = rules
        self.policy = policy
        self.report = CheckReport()
        self._values = values
        self._keyed = bool(rules.keys)
        self._keys = policy.check_values and self._keyed
        self._lines = LineTracker()
        self._files: dict[tuple[str, bool], int] = {}
        self._db = _connect(path)
        db = self._db
        db.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT)")
        # Every record: its key's and values' hashes (NULL: no key; a blank line), where it starts,
        # and whether it is predicted to fail (1) or has no key (2).
        db.execute(
            "CREATE TABLE rows (o INTEGER PRIMARY KEY, k INTEGER, f INTEGER, line INTEGER, file INTEGER, "
            "bad INTEGER)"
        )
        db.execute("CREATE TABLE files (id INTEGER PRIMARY KEY, name TEXT, rows INTEGER)")
        # Rows predicted to fail: the first reason and the values (JSON), for the failures file.
        db.execute("CREATE TABLE problems (o INTEGER PRIMARY KEY, reason TEXT, vals TEXT)")
        db.execute("CREATE TABLE drops (o INTEGER PRIMARY KEY, why INTEGER)")
        db.execute("CREATE TABLE failed (o INTEGER PRIMARY KEY)")
        self._previous = (
            previous if (previous is not None and policy.changed_rows_only and self._keyed) else None
        )
        if self._previous is not None:
            db.execute("ATTACH DATABASE ? AS prev", (f"file:{self._previous}?mode=ro",))
            db.execute("PRAGMA prev.cache_size=-32000")
        # The keys whose row Marketo failed last time (a state written before they were kept has
        # none): their rows are counted as sent again, not as new or changed.
        self._failed_before = self._previous is not None and bool(
            db.execute("SELECT 1 FROM prev.sqlite_master WHERE type = 'table' AND name = 'failed'").fetchone()
        )
        self._finished = False
        self._closed = False

    # ---- the pass ---------------------------------------------------------------------------

    def check_part(self, part: Part) -> None:
        """Check and record the records of the next part, a chunk of whole records at a time."""
        lines = self._lines.lines(part)
        for chunk in record_chunks(part, self.rules):
            first = self.report.records
            n = chunk.n
            self.report.records += n
            columns = chunk.columns
            bad: dict[int, int] = {}
            problems: list[tuple[int, str, str]] = []
            if self._values:
                found = self.rules.column_problems(columns, dict(chunk.found), chunk.blank)
                for i, problem in sorted(found.items()):
                    self.report.add(problem, lines.locate(chunk.starts[i], chunk.index + i))
                    if problem.verdict.predicted_failure:
                        bad[i] = 2 if problem.first == self.rules.empty_key else 1
                        row = chunk.rows[i] if chunk.rows is not None else [c[i] for c in columns]
                        problems.append((first + i, problem.reason, json.dumps(list(row))))
            if problems:
                self._db.executemany("INSERT INTO problems VALUES (?, ?, ?)", problems)
            places = lines.places(chunk.starts, chunk.index)
            file_ids = [self._file_id(name, is_rows) for name, is_rows in places.files]
            key_hashes: list[int | None]
            if columns:
                value_hashes = cast(list[int | None], stable_hashes(records_utf8(chunk)))
                if self._keyed:
                    keys = key_column(columns, self.rules)
                    plain = isinstance(columns, Columns) and columns.plain
                    key_hashes = cast(list[int | None], stable_hashes(utf8_each(keys, one_line=plain)))
                    if "" in keys:
                        for i, k in enumerate(keys):
                            if not k:
                                key_hashes[i] = None
                else:
                    key_hashes = [None] * n
            else:  # only blank lines
                key_hashes = value_hashes = [None] * n
            for i in chunk.blank:
                key_hashes[i] = None
                value_hashes[i] = None
            if n and len(file_ids) == 1:
                # One file (most chunks): the same for every row, and after the chunk's first row
                # each takes the next ordinal as SQLite gives it (the largest rowid plus one: rows
                # are written in order); the few rows refused are flagged after.
                self._db.execute(
                    f"INSERT INTO rows VALUES (?, ?, ?, ?, {file_ids[0]}, 0)",
                    (first, key_hashes[0], value_hashes[0], places.lines[0]),
                )
                self._db.executemany(
                    f"INSERT INTO rows (k, f, line, file, bad) VALUES (?, ?, ?, {file_ids[0]}, 0)",
                    zip(key_hashes[1:], value_hashes[1:], places.lines[1:], strict=True),
                )
                if bad:
                    self._db.executemany(
                        "UPDATE rows SET bad = ? WHERE o = ?", [(flag, first + i) for i, flag in bad.items()]
                    )
                continue
            flags = [0] * n
            for i, flag in bad.items():
                flags[i] = flag
            self._db.executemany(
                "INSERT INTO rows VALUES (?, ?, ?, ?, ?, ?)",
                zip(
                    range(first, first + n),
                    key_hashes,
                    value_hashes,
                    places.lines,
                    [file_ids[i] for i in places.file_of],
                    flags,
                    strict=True,
                ),
            )

    def _file_id(self, name: str, rows: bool) -> int:
        found = self._files.get((name, rows))
        if found is None:
            found = len(self._files)
            self._files[(name, rows)] = found
            self._db.execute("INSERT INTO files VALUES (?, ?, ?)", (found, name, int(rows)))
        return found

    # ---- once the pass is over --------------------------------------------------------------

    def finish(self, meta: Mapping[str, Any] | None = None) -> Ledger:
        """Group the keys, decide each kept-out record's fate, count, and hand over the ledger."""
        if self._finished:
            raise RuntimeError("the ledger is finished already")
        self._finished = True
        db = self._db
        policy = self.policy
        skip = policy.skip_invalid
        # The keys on more than one row, sorted out by their hashes alone (a narrow sort), then the
        # row of each such key Marketo ends up holding: its last row not refused.
        db.execute(
            "CREATE TEMP TABLE twice AS SELECT k FROM rows WHERE k IS NOT NULL GROUP BY k HAVING COUNT(*) > 1"
        )
        (twice,) = db.execute("SELECT COUNT(*) FROM temp.twice").fetchone()
        holder = "MAX(CASE WHEN bad = 0 THEN o END)" if skip else "MAX(o)"
        db.execute(
            f"CREATE TABLE repeated AS SELECT k, COUNT(*) AS n, MIN(o) AS first, {holder} AS holder "
            f"FROM rows WHERE {'k IN (SELECT k FROM temp.twice)' if twice else '0'} GROUP BY k HAVING n > 1"
        )
        db.execute("CREATE UNIQUE INDEX repeated_k ON repeated (k)")
        db.execute("DROP TABLE temp.twice")
        if self._keys:
            keys, rows = db.execute("SELECT COUNT(*), COALESCE(SUM(n - 1), 0) FROM repeated").fetchone()
            self.report.repeated_keys, self.report.repeated_rows = int(keys), int(rows)
            names = " and ".join(self.rules.key_names)
            for k, n in db.execute(
                "SELECT k, n FROM repeated ORDER BY first LIMIT ?", (EXAMPLES,)
            ).fetchall():
                places = [
                    _place(name, line, is_rows)
                    for line, name, is_rows in db.execute(
                        "SELECT r.line, f.name, f.rows FROM rows r JOIN files f ON f.id = r.file "
                        "WHERE r.k = ? ORDER BY r.o LIMIT 3",
                        (k,),
                    )
                ]
                more = f" and {n - len(places)} more" if n > len(places) else ""
                self.report.repeated_examples.append(f"the same {names} on {', '.join(places)}{more}")
        # How many records each fate keeps out, counted as they are written.
        kept: dict[int, int] = {}
        if skip:
            db.execute(
                f"INSERT INTO drops SELECT o, CASE bad WHEN 2 THEN {int(Fate.NO_KEY)} ELSE {int(Fate.REFUSED)} END "
                "FROM rows WHERE bad > 0"
            )
            kept.update(db.execute("SELECT why, COUNT(*) FROM drops GROUP BY why").fetchall())
        if self._previous is not None:
            # A key is unchanged when the row Marketo would end up holding is as confirmed: then none
            # of its rows is sent (sending an earlier row alone would leave Marketo the older values).
            # The rows are read in their order, so the ordinals are written in theirs.
            if twice:
                db.execute(
                    "CREATE TEMP TABLE same AS SELECT q.k FROM repeated q JOIN prev.state p ON p.k = q.k "
                    "JOIN rows h ON h.o = q.holder WHERE h.f = p.f"
                )
                where = (
                    "CASE WHEN r.k IN (SELECT k FROM repeated) THEN r.k IN (SELECT k FROM temp.same) "
                    "ELSE p.f = r.f END"
                )
            else:
                where = "p.f = r.f"
            kept[Fate.UNCHANGED] = db.execute(
                f"INSERT OR IGNORE INTO drops SELECT r.o, {int(Fate.UNCHANGED)} FROM rows r "
                f"JOIN prev.state p ON p.k = r.k WHERE {where}"
            ).rowcount
            if twice:
                db.execute("DROP TABLE temp.same")
        if policy.keep_last and twice:
            kept[Fate.EARLIER_REPEAT] = db.execute(
                f"INSERT OR IGNORE INTO drops SELECT r.o, {int(Fate.EARLIER_REPEAT)} FROM rows r "
                "JOIN repeated q ON q.k = r.k WHERE r.o < q.holder"
            ).rowcount
        counts = self._counts(kept)
        db.execute("INSERT INTO meta VALUES ('version', ?)", (json.dumps(LEDGER_VERSION),))
        db.execute("INSERT INTO meta VALUES ('counts', ?)", (json.dumps(counts),))
        db.execute("INSERT INTO meta VALUES ('rules', ?)", (json.dumps(self.rules.to_json()),))
        db.execute("INSERT INTO meta VALUES ('policy', ?)", (json.dumps(policy.to_json()),))
        for name, value in (meta or {}).items():
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, json.dumps(value)))
        db.commit()
        db.close()
        self._closed = True
        return Ledger(self.path)

    def _counts(self, kept: Mapping[int, int]) -> dict[str, Any]:
        """The counts, from ``kept`` (records kept out, by fate) and a few narrow scans."""
        db = self._db
        records, blank = db.execute("SELECT COUNT(*), COALESCE(SUM(f IS NULL), 0) FROM rows").fetchone()
        kept_out = {KEPT_OUT_NAMES[f]: int(kept.get(int(f), 0)) for f in Fate}
        rows = int(records) - int(blank)
        counts: dict[str, Any] = {
            "records": int(records),
            "blank_lines": int(blank),
            "rows": rows,
            "rows_to_send": rows - sum(kept_out.values()),
            "rows_kept_out": sum(kept_out.values()),
            "kept_out": kept_out,
        }
        if self.policy.changed_rows_only:
            sent = "r.f IS NOT NULL AND r.o NOT IN (SELECT o FROM drops)"
            if self._previous is not None:
                failed, join = (
                    ("x.k", "LEFT JOIN prev.failed x ON x.k = r.k") if self._failed_before else ("NULL", "")
                )
                unkeyed, new, confirmed_before, changed, again = db.execute(
                    "SELECT COALESCE(SUM(r.k IS NULL), 0), "
                    f"COALESCE(SUM(r.k IS NOT NULL AND p.k IS NULL AND {failed} IS NULL), 0), "
                    f"COALESCE(SUM(p.k IS NOT NULL), 0), COALESCE(SUM(p.k IS NOT NULL AND {failed} IS NULL), 0), "
                    f"COALESCE(SUM({failed} IS NOT NULL), 0) FROM rows r "
                    f"LEFT JOIN prev.state p ON p.k = r.k {join} WHERE {sent}"
                ).fetchone()
                # The keys confirmed before that are still in the source: every row left out as
                # unchanged has one, and so has every row sent with a key confirmed before; the rows kept out for
                # another reason are looked up; a key on n rows is counted n times, so n - 1 are
                # taken off.
                others = 0
                if kept_out["refused"] or kept_out["without_key"] or kept_out["earlier_repeats"]:
                    (others,) = db.execute(
                        "SELECT COUNT(*) FROM drops d JOIN rows r ON r.o = d.o JOIN prev.state p ON p.k = r.k "
                        f"WHERE d.why <> {int(Fate.UNCHANGED)}"
                    ).fetchone()
                (repeats,) = db.execute(
                    "SELECT COALESCE(SUM(q.n - 1), 0) FROM repeated q JOIN prev.state p ON p.k = q.k"
                ).fetchone()
                kept_keys = kept_out["unchanged"] + int(confirmed_before) + int(others) - int(repeats)
                (before,) = db.execute("SELECT COUNT(*) FROM prev.state").fetchone()
                vanished = int(before) - kept_keys
            else:
                unkeyed, new = db.execute(
                    f"SELECT COALESCE(SUM(r.k IS NULL), 0), COALESCE(SUM(r.k IS NOT NULL), 0) FROM rows r WHERE {sent}"
                ).fetchone()
                changed, again, vanished = 0, 0, 0
            counts["changes"] = {
                "rows_new": int(new),
                "rows_changed": int(changed),
                "rows_sent_again": int(again),
                "rows_without_key": int(unkeyed),
                "rows_unchanged": kept_out["unchanged"],
                "keys_vanished": vanished,
            }
        return counts

    def close(self) -> None:
        """Give up a ledger that was not finished (its file is removed)."""
        if not self._closed:
            self._db.close()
            self._closed = True
            if os.path.exists(self.path):
                os.remove(self.path)


def _place(name: str, line: int, rows: Any) -> str:
    """A record's place as messages name it."""
    return str(Location(name, int(line), rows=bool(rows)))
