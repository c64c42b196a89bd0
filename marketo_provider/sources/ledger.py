"""The row ledger: what pre-flight decided about every record of a source, written once, in the
one pass pre-flight makes (``ledger_writer.py``), and read by every later step instead of deciding again.

For each record (by its ordinal: from 0, in source order, blank lines counted) the ledger keeps
its place (the file and the line it starts on; a query's or a Parquet file's row), the hash of
its key and of its values, and whether it is predicted to fail; once the pass is over, the fate of
each record kept out of what is sent (refused with its reason, without a key, an earlier row of a
repeated key, unchanged since the state generation compared with). Rows predicted to fail keep
their values, so the failures file can list them without reading the source again.

Later steps ask it:

- cutting: the runs of ordinals to leave out, from any ordinal on (:meth:`Ledger.dropped_runs`);
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
from typing import Any

from marketo_provider.sources.base import Closing
from marketo_provider.sources.checks import RowRules
from marketo_provider.sources.fingerprints import SEP, stable_hash
from marketo_provider.sources.policy import RowPolicy
from marketo_provider.sources.records import Location

LEDGER_VERSION = 1
REFUSED_PREFIX = "Refused before upload: "


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
        f = stable_hash(SEP.join(values))
        index = self._first.pop(f, None)
        if index is None:
            more = self._more.get(f)
            if not more:
                return None
            index = more.popleft()
        o, _, line, file = self._rows[index]
        name, rows = self._files[file]
        return o, Location(name, line, rows=rows)


class Ledger(Closing):
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

    # ---- counts ------------------------------------------------------------------------------

    def counts(self) -> dict[str, Any]:
        return dict(self.meta["counts"])

    @property
    def any_dropped(self) -> bool:
        return bool(self.counts()["rows_kept_out"])

    # ---- cutting -----------------------------------------------------------------------------

    def dropped_from(self, ordinal: int = 0) -> Iterator[int]:
        """The ordinals of the records kept out, from ``ordinal`` on, in order."""
        for first, end in self.dropped_runs(ordinal):
            yield from range(first, end)

    def dropped_runs(self, ordinal: int = 0) -> Iterator[tuple[int, int]]:
        """The runs of records kept out, from ``ordinal`` on, in order: ``(first, end)``, every
        ordinal from ``first`` up to ``end`` (not included). Whichever are fewer are read: the
        records kept out, where each run of them starts and ends (read side by side, each a step
        along the table's own order), or the records sent, the runs being the gaps between them."""
        counts = self.counts()
        if 2 * int(counts.get("rows_kept_out", 0)) > int(counts.get("records", 0)):
            yield from self._runs_between_sent(ordinal)
            return
        starts = self._db.execute(
            "SELECT o FROM drops d WHERE o >= ?1 AND (o = ?1 OR NOT EXISTS "
            "(SELECT 1 FROM drops e WHERE e.o = d.o - 1)) ORDER BY o",
            (ordinal,),
        )
        ends = self._db.execute(
            "SELECT o + 1 FROM drops d WHERE o >= ? AND NOT EXISTS "
            "(SELECT 1 FROM drops e WHERE e.o = d.o + 1) ORDER BY o",
            (ordinal,),
        )
        for (first,), (end,) in zip(starts, ends, strict=True):
            yield int(first), int(end)

    def _runs_between_sent(self, ordinal: int) -> Iterator[tuple[int, int]]:
        """:meth:`dropped_runs` read from the records not kept out (blank lines among them)."""
        (last,) = self._db.execute("SELECT MAX(o) FROM rows").fetchone()
        at = ordinal
        for (o,) in self._db.execute(
            "SELECT o FROM rows WHERE o >= ? AND o NOT IN (SELECT o FROM drops) ORDER BY o", (ordinal,)
        ):
            if o > at:
                yield at, int(o)
            at = int(o) + 1
        end = int(last) + 1 if last is not None else 0
        if end > at:
            yield at, end

    def sent_rows(self, first: int, end: int) -> int:
        """How many rows (blank lines aside) of ordinals ``first``..``end`` were sent."""
        (n,) = self._db.execute(
            # (NOT IN a whole table of ordinals: a look-up in the table itself, no list built)
            "SELECT COUNT(*) FROM rows WHERE o >= ? AND o < ? AND f IS NOT NULL AND o NOT IN (SELECT o FROM drops)",
            (first, end),
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

    def failed_keys(self) -> Iterator[int]:
        """The keys whose row Marketo failed (:meth:`mark_failed`): per key the row it would end up
        holding (an earlier row of a repeated key that failed leaves its key to the later one)."""
        for (k,) in self._db.execute(
            "SELECT DISTINCT r.k FROM failed x JOIN rows r ON r.o = x.o LEFT JOIN repeated q ON q.k = r.k "
            "WHERE r.k IS NOT NULL AND (q.k IS NULL OR q.holder = r.o)"
        ):
            yield int(k)

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
                "WHERE r.o >= ? AND r.o < ? AND r.k IS NOT NULL AND r.o NOT IN (SELECT o FROM drops) "
                "AND (q.k IS NULL OR q.holder = r.o) AND r.o NOT IN (SELECT o FROM failed) ORDER BY r.o",
                (first, end),
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
            f"{changes.get('rows_sent_again', 0):,} sent again after failing last time, "
            f"{changes['rows_without_key']:,} without a key"
        )
    return "; ".join(parts)
