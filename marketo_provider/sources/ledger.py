"""The row ledger: what pre-flight decided about every record of a source, written once, in the
one pass pre-flight makes, and read by every later step instead of deciding again.

For each record (by its ordinal: from 0, in source order, blank lines counted) the ledger keeps
its place (the file and the line it starts on; a query's or a Parquet file's row), the hash of
its key and of its values, and whether it is predicted to fail; once the pass is over, the fate of
each record kept out of what is sent (refused with its reason, without a key, an earlier row of a
repeated key, unchanged since the state generation compared with). Rows predicted to fail keep
their values, so the failures file can list them without reading the source again.

Later steps ask it:

- cutting: the ordinals to leave out, from any ordinal on (:meth:`Ledger.dropped_from`);
- tracing: the records a part sent, by the hash of their values (:meth:`Ledger.part_records`), so
  a row of Marketo's failures file is matched to its place without walking the source;
- the failures file: the rows refused before upload (:meth:`Ledger.refused_rows`);
- ``changed_rows_only``: the key and fingerprint of each row Marketo confirmed
  (:meth:`Ledger.confirmed`), and the counts that add up (:meth:`Ledger.counts`).

It is an SQLite file on disk: memory stays bounded whatever the source's size.
"""

from __future__ import annotations

import enum
import json
import os
import sqlite3
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from marketo_provider.sources.checks import (
    EXAMPLES,
    CheckReport,
    OnInvalidRows,
    OnRepeatedKeys,
    RowRules,
    key_column,
    record_chunks,
    stable_hash,
    stable_hash_halves,
)
from marketo_provider.sources.parts import Part
from marketo_provider.sources.records import LineTracker, Location

LEDGER_VERSION = 1
REFUSED_PREFIX = "Refused before upload: "
_SEP = "\x1f"


class Fate(enum.IntEnum):
    """Why a record is kept out of what is sent (a record without a fate is sent)."""

    REFUSED = 1  # predicted to fail (on_invalid_rows="skip")
    NO_KEY = 2  # no key: Marketo fails it (on_invalid_rows="skip")
    EARLIER_REPEAT = 3  # a later row has its key (on_repeated_keys="keep_last")
    UNCHANGED = 4  # as the last confirmed import left it (changed_rows_only)


# The counts' names, by fate.
KEPT_OUT_NAMES = {
    Fate.REFUSED: "refused",
    Fate.NO_KEY: "without_key",
    Fate.EARLIER_REPEAT: "earlier_repeats",
    Fate.UNCHANGED: "unchanged",
}


@dataclass(frozen=True)
class RowPolicy:
    """What an import does with rows Marketo would refuse, repeated keys and unchanged rows: built
    once from the operator's arguments (every value checked here, nowhere else) and kept as it is
    in the import's state."""

    check_values: bool = True
    on_invalid_rows: OnInvalidRows = OnInvalidRows.SEND
    on_repeated_keys: OnRepeatedKeys = OnRepeatedKeys.WARN
    changed_rows_only: bool = False

    @classmethod
    def of(
        cls,
        *,
        check_values: Any = True,
        on_invalid_rows: Any = OnInvalidRows.SEND,
        on_repeated_keys: Any = OnRepeatedKeys.WARN,
        changed_rows_only: bool = False,
    ) -> RowPolicy:
        from marketo_provider.api import MarketoValueError

        invalid = OnInvalidRows.parse(on_invalid_rows)
        repeated = OnRepeatedKeys.parse(on_repeated_keys)
        checks = bool(check_values)
        if not checks and invalid is not OnInvalidRows.SEND:
            raise MarketoValueError(
                f"on_invalid_rows={invalid.value!r} needs check_values=True (the values must be checked to "
                "know which rows Marketo would refuse)"
            )
        if not checks and repeated is not OnRepeatedKeys.WARN:
            raise MarketoValueError(
                f"on_repeated_keys={repeated.value!r} needs check_values=True (the rows must be read to find "
                "repeated keys)"
            )
        return cls(checks, invalid, repeated, bool(changed_rows_only))

    @property
    def skip_invalid(self) -> bool:
        return self.on_invalid_rows is OnInvalidRows.SKIP

    @property
    def keep_last(self) -> bool:
        return self.on_repeated_keys is OnRepeatedKeys.KEEP_LAST

    @property
    def reads_rows(self) -> bool:
        """Whether pre-flight reads every row's values (and so writes a ledger of them)."""
        return self.check_values or self.changed_rows_only

    def to_json(self) -> dict[str, Any]:
        return {
            "check_values": self.check_values,
            "on_invalid_rows": self.on_invalid_rows.value,
            "on_repeated_keys": self.on_repeated_keys.value,
            "changed_rows_only": self.changed_rows_only,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RowPolicy:
        return cls.of(
            check_values=data.get("check_values", True),
            on_invalid_rows=data.get("on_invalid_rows", OnInvalidRows.SEND),
            on_repeated_keys=data.get("on_repeated_keys", OnRepeatedKeys.WARN),
            changed_rows_only=bool(data.get("changed_rows_only")),
        )


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
            if columns:
                keys: Sequence[str] = key_column(columns, self.rules) if self._keyed else [""] * n
                if chunk.rows is not None:
                    joined = [_SEP.join(r) for r in chunk.rows]
                else:
                    joined = [_SEP.join(r) for r in zip(*columns, strict=True)]
                # The halves of each hash: SQLite puts them together as it stores the row.
                key_high, key_low = stable_hash_halves(keys)
                value_high, value_low = stable_hash_halves(joined)
                key_hi: list[int | None] = list(key_high)
                value_hi: list[int | None] = list(value_high)
                if "" in keys:
                    for i, k in enumerate(keys):
                        if not k:
                            key_hi[i] = None
            else:  # only blank lines
                key_hi = value_hi = [None] * n
                key_low = value_low = [0] * n
            for i in chunk.blank:
                key_hi[i] = None
                value_hi[i] = None
            self._db.executemany(
                "INSERT INTO rows VALUES (?, (? << 32) | ?, (? << 32) | ?, ?, ?, ?)",
                zip(
                    range(first, first + n),
                    key_hi,
                    key_low,
                    value_hi,
                    value_low,
                    places.lines,
                    [file_ids[0]] * n if len(file_ids) == 1 else [file_ids[i] for i in places.file_of],
                    [bad.get(i, 0) for i in range(n)] if bad else [0] * n,
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
        # The row of each repeated key Marketo ends up holding: its last row not refused.
        holder = "MAX(CASE WHEN bad = 0 THEN o END)" if skip else "MAX(o)"
        db.execute(
            f"CREATE TABLE repeated AS SELECT k, COUNT(*) AS n, MIN(o) AS first, {holder} AS holder "
            "FROM rows WHERE k IS NOT NULL GROUP BY k HAVING n > 1"
        )
        db.execute("CREATE UNIQUE INDEX repeated_k ON repeated (k)")
        if self._keys:
            keys, rows = db.execute("SELECT COUNT(*), COALESCE(SUM(n - 1), 0) FROM repeated").fetchone()
            self.report.repeated_keys, self.report.repeated_rows = int(keys), int(rows)
            names = " and ".join(self.rules.key_names)
            for k, n in db.execute(
                "SELECT k, n FROM repeated ORDER BY first LIMIT ?", (EXAMPLES,)
            ).fetchall():
                places = [
                    _where(name, line, is_rows)
                    for line, name, is_rows in db.execute(
                        "SELECT r.line, f.name, f.rows FROM rows r JOIN files f ON f.id = r.file "
                        "WHERE r.k = ? ORDER BY r.o LIMIT 3",
                        (k,),
                    )
                ]
                more = f" and {n - len(places)} more" if n > len(places) else ""
                self.report.repeated_examples.append(f"the same {names} on {', '.join(places)}{more}")
        if skip:
            db.execute(
                f"INSERT INTO drops SELECT o, CASE bad WHEN 2 THEN {int(Fate.NO_KEY)} ELSE {int(Fate.REFUSED)} END "
                "FROM rows WHERE bad > 0"
            )
        if self._previous is not None:
            # A key is unchanged when the row Marketo would end up holding is as confirmed: then none
            # of its rows is sent (sending an earlier row alone would leave Marketo the older values).
            db.execute(
                f"INSERT OR IGNORE INTO drops SELECT r.o, {int(Fate.UNCHANGED)} FROM rows r "
                "JOIN prev.state p ON p.k = r.k LEFT JOIN repeated q ON q.k = r.k "
                "WHERE (q.k IS NULL AND p.f = r.f) "
                "OR (q.k IS NOT NULL AND p.f = (SELECT h.f FROM rows h WHERE h.o = q.holder))"
            )
        if policy.keep_last:
            db.execute(
                f"INSERT OR IGNORE INTO drops SELECT r.o, {int(Fate.EARLIER_REPEAT)} FROM rows r "
                "JOIN repeated q ON q.k = r.k WHERE r.o < q.holder"
            )
        counts = self._counts()
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

    def _counts(self) -> dict[str, Any]:
        db = self._db
        records, blank = db.execute("SELECT COUNT(*), COALESCE(SUM(f IS NULL), 0) FROM rows").fetchone()
        kept = dict(db.execute("SELECT why, COUNT(*) FROM drops GROUP BY why").fetchall())
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
            (unkeyed,) = db.execute(f"SELECT COUNT(*) FROM rows r WHERE r.k IS NULL AND {sent}").fetchone()
            if self._previous is not None:
                new, changed = db.execute(
                    "SELECT COALESCE(SUM(p.k IS NULL), 0), COALESCE(SUM(p.k IS NOT NULL), 0) FROM rows r "
                    f"LEFT JOIN prev.state p ON p.k = r.k WHERE r.k IS NOT NULL AND {sent}"
                ).fetchone()
                (kept_keys,) = db.execute(
                    "SELECT COUNT(*) FROM (SELECT k FROM rows WHERE k IS NOT NULL GROUP BY k) s "
                    "JOIN prev.state p ON p.k = s.k"
                ).fetchone()
                (before,) = db.execute("SELECT COUNT(*) FROM prev.state").fetchone()
                vanished = int(before) - int(kept_keys)
            else:
                (new,) = db.execute(
                    f"SELECT COUNT(*) FROM rows r WHERE r.k IS NOT NULL AND {sent}"
                ).fetchone()
                changed, vanished = 0, 0
            counts["changes"] = {
                "rows_new": int(new),
                "rows_changed": int(changed),
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


def _where(name: str, line: int, rows: Any) -> str:
    return str(Location(name, int(line), rows=bool(rows)))


class PartRecords:
    """The records one part sent, by the hash of their values: a row of the part's failures or
    warnings file (its values as uploaded) is matched to the record it echoes."""

    def __init__(
        self, rows: Sequence[tuple[int, int, int, int]], files: Mapping[int, tuple[str, bool]]
    ) -> None:
        self._first: dict[int, int] = {}  # values' hash -> index into rows of its first record
        self._more: dict[int, deque[int]] = {}  # the rest, where records share a hash (equal rows)
        for index, row in enumerate(rows):
            f = row[1]
            if f in self._first:
                self._more.setdefault(f, deque()).append(index)
            else:
                self._first[f] = index
        self._rows = rows
        self._files = files
        self.sent = len(rows)  # records (not blank lines) the part sent

    def find(self, values: Sequence[str]) -> tuple[int, Location] | None:
        f = stable_hash(_SEP.join(values))
        index = self._first.pop(f, None)
        if index is None:
            more = self._more.get(f)
            if not more:
                return None
            index = more.popleft()
        o, _, line, file = self._rows[index]
        name, rows = self._files[file]
        return o, Location(name, line, rows=rows)


class Ledger:
    """A finished ledger (see the module's text), read from its SQLite file."""

    def __init__(self, path: str) -> None:
        self.path = path
        if not os.path.exists(path):
            raise FileNotFoundError(path)
        self._db = sqlite3.connect(path)
        self._db.execute("PRAGMA cache_size=-16000")
        meta = dict(self._db.execute("SELECT name, value FROM meta").fetchall())
        self.meta = {k: json.loads(v) for k, v in meta.items()}
        if self.meta.get("version") != LEDGER_VERSION:
            raise ValueError(
                f"ledger {path} is of version {self.meta.get('version')!r}, not {LEDGER_VERSION}"
            )
        self.rules = RowRules.from_json(self.meta["rules"])
        self.policy = RowPolicy.from_json(self.meta["policy"])

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- counts ------------------------------------------------------------------------------

    def counts(self) -> dict[str, Any]:
        return dict(self.meta["counts"])

    @property
    def any_dropped(self) -> bool:
        return bool(self.counts()["rows_kept_out"])

    # ---- cutting -----------------------------------------------------------------------------

    def dropped_from(self, ordinal: int = 0) -> Iterator[int]:
        """The ordinals of the records kept out, from ``ordinal`` on, in order."""
        cursor = self._db.execute("SELECT o FROM drops WHERE o >= ? ORDER BY o", (ordinal,))
        for (o,) in cursor:
            yield int(o)

    def sent_rows(self, first: int, end: int) -> int:
        """How many rows (blank lines aside) of ordinals ``first``..``end`` were sent."""
        (n,) = self._db.execute(
            "SELECT COUNT(*) FROM rows WHERE o >= ? AND o < ? AND f IS NOT NULL "
            "AND o NOT IN (SELECT o FROM drops WHERE o >= ? AND o < ?)",
            (first, end, first, end),
        ).fetchone()
        return int(n)

    # ---- tracing -----------------------------------------------------------------------------

    def part_records(self, first: int, end: int) -> PartRecords:
        """The records sent among ordinals ``first``..``end`` (one part), by their values' hash."""
        files = {
            int(i): (str(name), bool(rows))
            for i, name, rows in self._db.execute("SELECT id, name, rows FROM files")
        }
        rows = self._db.execute(
            "SELECT r.o, r.f, r.line, r.file FROM rows r LEFT JOIN drops d ON d.o = r.o "
            "WHERE r.o >= ? AND r.o < ? AND r.f IS NOT NULL AND d.o IS NULL ORDER BY r.o",
            (first, end),
        ).fetchall()
        return PartRecords(rows, files)

    def mark_failed(self, ordinals: Sequence[int]) -> None:
        """Record rows Marketo failed (they are not confirmed)."""
        self._db.executemany("INSERT OR IGNORE INTO failed VALUES (?)", ((o,) for o in ordinals))
        self._db.commit()

    def clear_failed(self) -> None:
        self._db.execute("DELETE FROM failed")
        self._db.commit()

    def refused_rows(self) -> Iterator[tuple[list[str], Location, str]]:
        """The rows kept out because Marketo would refuse them, with their place and reason."""
        for vals, reason, line, name, rows in self._db.execute(
            "SELECT p.vals, p.reason, r.line, fl.name, fl.rows FROM problems p JOIN drops d ON d.o = p.o "
            "JOIN rows r ON r.o = p.o JOIN files fl ON fl.id = r.file ORDER BY p.o"
        ):
            yield json.loads(vals), Location(name, int(line), rows=bool(rows)), REFUSED_PREFIX + reason

    # ---- changed_rows_only -------------------------------------------------------------------

    def confirmed(self, ranges: Sequence[tuple[int, int]]) -> Iterator[tuple[int, int]]:
        """``(key, fingerprint)`` of the rows Marketo now holds among the ordinal ``ranges`` of the
        parts it completed and accounted for: per key the row it ends up holding, unless it failed."""
        for first, end in sorted(ranges):
            yield from self._db.execute(
                "SELECT r.k, r.f FROM rows r LEFT JOIN repeated q ON q.k = r.k "
                "WHERE r.o >= ? AND r.o < ? AND r.k IS NOT NULL AND (q.k IS NULL OR q.holder = r.o) "
                "AND r.o NOT IN (SELECT o FROM drops WHERE o >= ? AND o < ?) "
                "AND r.o NOT IN (SELECT o FROM failed WHERE o >= ? AND o < ?) ORDER BY r.o",
                (first, end, first, end, first, end),
            )


def counts_line(counts: Mapping[str, Any]) -> str:
    """The one closing line of what became of the source's rows: the numbers add up."""
    kept = counts.get("kept_out", {})
    parts = [
        f"{counts.get('rows', 0):,} rows",
        f"{counts.get('rows_to_send', 0):,} sent",
        f"{counts.get('rows_kept_out', 0):,} kept out ("
        + ", ".join(f"{kept.get(name, 0):,} {name.replace('_', ' ')}" for name in KEPT_OUT_NAMES.values())
        + ")",
    ]
    changes = counts.get("changes")
    if changes:
        parts.append(
            f"of those sent {changes['rows_new']:,} new, {changes['rows_changed']:,} changed, "
            f"{changes['rows_without_key']:,} without a key"
        )
    return "; ".join(parts)


__all__ = [
    "KEPT_OUT_NAMES",
    "LEDGER_VERSION",
    "REFUSED_PREFIX",
    "Fate",
    "Ledger",
    "LedgerWriter",
    "PartRecords",
    "RowPolicy",
    "counts_line",
    "source_fingerprint",
]


def source_fingerprint(source: Any) -> dict[str, Any] | None:
    """What says a source is still the one a ledger was written from: its files' names and sizes,
    and the first and last bytes of its first and last files (None for a query: read once)."""
    from marketo_provider.sources.listing import list_files
    from marketo_provider.sources.model import QuerySource

    if isinstance(source, QuerySource):
        return None
    files = list_files(source)
    digest = 0
    total = 0
    for f in files:
        digest = stable_hash(f"{digest}{_SEP}{f.name}{_SEP}{f.size}")
        total += f.size or 0
    ends = []
    for f in {id(x): x for x in (files[:1] + files[-1:])}.values():
        ends.append(_ends(f))
    return {"files": len(files), "bytes": total, "names_and_sizes": digest, "ends": ends}


def _ends(file: Any, size: int = 256) -> list[str]:
    """The first and last bytes of a file (hex), as far as it can be read without reading it all."""
    with file.open() as handle:
        head = handle.read(size)
        tail = b""
        try:
            if file.size and file.size > size and handle.seekable():
                handle.seek(file.size - size)
                tail = handle.read(size)
        except (OSError, ValueError):
            tail = b""
    return [head.hex(), tail.hex()]
