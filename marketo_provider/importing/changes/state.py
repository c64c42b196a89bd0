"""The confirmed state of an import target, kept where it outlives runs.

The state is a folder (``state_path``: local or any object storage):

``latest.json``
    the pointer: the generation, the state file, the scope it was kept for (object, list,
    partition, program and status, custom object, lookup field, columns), how many keys.
``state-<generation>.sqlite.gz``
    per key (a 64-bit hash of the key's values), a 64-bit fingerprint of the values Marketo
    confirmed last: an SQLite table ``state(k, f)``, gzip-compressed.
``lock.json``
    held by the run that is importing with this state (:mod:`~marketo_provider.importing.changes.lock`).
``journal/``
    the import's journal (parts accepted, batch ids, parts in flight) where Airflow has no task
    state store, so a retried task carries on where it stopped.

Everything read from the folder is untrusted input: whoever can write it (a shared bucket) must
not be able to make a run read or delete anything else. The pointer may only name the state file
of its own generation, by the name this module writes; pointer, lock and state are checked for
their shape and version before use, and a damaged one is a :class:`StateDamagedError` naming the
file, what is wrong and how to recover (``full_refresh=True`` builds the state again over it).

A new state is written only after the import concludes, as a new file, and the pointer is
replaced last, in one step (readers follow the pointer, so a state is never seen half written); it
is written only when the pointer still names the generation the import started from, so newer
state is never overwritten with older.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from marketo_provider.bounds import cut
from marketo_provider.importing.changes.lock import StateLock, StateLockedError
from marketo_provider.storage import POINTER, StateDamagedError, StateLocation

STATE_FORMAT = 1
# A state file unpacks to at most this many times its stored size plus this allowance (SQLite
# pages of hashes pack about 2:1; gzip can pack zeros 1000:1, which no state holds).
STATE_UNPACK_RATIO = 20
STATE_UNPACK_ALLOWANCE = 64 * 1024 * 1024


def state_file_name(generation: int) -> str:
    """The only name a pointer of ``generation`` may give its state file."""
    return f"state-{generation:08d}.sqlite.gz"


class ChangeState(StateLock):
    """The confirmed state of one import target in a :class:`StateLocation`."""

    def __init__(
        self, location: StateLocation, scope: Mapping[str, Any], *, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(location, clock=clock)
        self.scope = dict(scope)

    @property
    def uri(self) -> str:
        """The pointer's URI as messages, logs and the summary show it (credentials masked)."""
        return self.location.where(POINTER)

    # -- reading and writing

    def _damaged(self, name: str, what: str) -> StateDamagedError:
        return StateDamagedError(
            self.location.where(name),
            what,
            "Nothing was sent to Marketo. Run once with full_refresh=True to build the state again from "
            f"nothing (every row is sent once), or restore the folder's {POINTER} from a backup",
        )

    def pointer(self) -> dict[str, Any] | None:
        """The pointer, checked: its format, generation, state file name, scope and key count."""
        try:
            pointer = self.location.read_json(POINTER)
        except StateDamagedError as exc:
            raise self._damaged(POINTER, exc.problem) from None
        if pointer is None:
            return None
        version = pointer.get("format")
        if version != STATE_FORMAT:
            newer = isinstance(version, int) and not isinstance(version, bool) and version > STATE_FORMAT
            raise self._damaged(
                POINTER,
                f"is of state format {version!r}, "
                + ("written by a newer release of this provider" if newer else "not one this provider writes")
                + f" (this release reads format {STATE_FORMAT})",
            )
        generation = pointer.get("generation")
        if isinstance(generation, bool) or not isinstance(generation, int) or generation < 1:
            raise self._damaged(POINTER, f"has generation {generation!r}, not a whole number from 1")
        expected = state_file_name(generation)
        if pointer.get("file") != expected:
            raise self._damaged(
                POINTER,
                f"names the state file {str(pointer.get('file'))[:200]!r}, where generation {generation} can only "
                f"be {expected!r} inside the state folder; nothing else is opened or removed",
            )
        keys = pointer.get("keys")
        if isinstance(keys, bool) or not isinstance(keys, int) or keys < 0:
            raise self._damaged(POINTER, f"has keys {keys!r}, not a count")
        if not isinstance(pointer.get("scope"), dict):
            raise self._damaged(POINTER, "has no scope (what the state was kept for)")
        return pointer

    def load(self, folder: str, *, full_refresh: bool = False) -> Loaded:
        """The state to compare with, downloaded into ``folder`` and checked. With
        ``full_refresh``, a damaged pointer or state is built again from nothing."""
        try:
            pointer = self.pointer()
        except StateDamagedError as exc:
            if not full_refresh:
                raise
            return Loaded(
                0,
                None,
                f"full_refresh: every row is sent and the state is built again from nothing ({exc.where} "
                f"{exc.problem})",
            )
        where = self.location.shown
        if pointer is None:
            return Loaded(0, None, f"no state at {where} yet: every row is sent")
        generation = int(pointer["generation"])
        if full_refresh:
            return Loaded(generation, None, "full_refresh: every row is sent and the state is built again")
        if pointer["scope"] != self.scope:
            was, now = pointer["scope"], self.scope
            changed = sorted(k for k in set(was) | set(now) if was.get(k) != now.get(k))
            shown = ", ".join(
                f"{cut(k, 100)}: {cut(was.get(k), 100)} -> {cut(now.get(k), 100)}" for k in changed[:5]
            )
            more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
            return Loaded(
                generation,
                None,
                f"the state at {where} was kept for another {', '.join(cut(k, 100) for k in changed[:5])}{more} ({shown}): every row is sent",
            )
        name = str(pointer["file"])
        path = os.path.join(folder, f"state-{generation}.sqlite")
        try:
            stored = self.location.size(name)
        except FileNotFoundError:
            raise self._damaged(name, f"does not exist, though {POINTER} names it") from None
        try:
            self.location.download(name, path, most=STATE_UNPACK_RATIO * stored + STATE_UNPACK_ALLOWANCE)
        except StateDamagedError as exc:
            raise self._damaged(name, exc.problem) from None
        problem = _state_problem(path)
        if problem:
            raise self._damaged(name, problem)
        return Loaded(generation, path, "", int(pointer["keys"]))

    def write(self, path: str, started_from: int, keys: int, run: str) -> dict[str, Any]:
        """Publish a new state built from generation ``started_from`` (0: none, or a damaged one
        that a full refresh replaces); :class:`StateLockedError` when the pointer moved on
        meanwhile. Returns the new pointer."""
        try:
            pointer = self.pointer()
            current = int(pointer["generation"]) if pointer else 0
        except StateDamagedError:
            pointer, current = None, 0  # a full refresh started over it; still damaged
        if current != started_from:
            raise StateLockedError(
                f"the state at {self.location.shown} moved on to generation {current} while this run imported "
                f"from generation {started_from}; the newer state is kept and this run's is not written"
            )
        generation = current + 1
        name = state_file_name(generation)
        stored = self.location.upload(path, name)
        new = {
            "format": STATE_FORMAT,
            "generation": generation,
            "file": name,
            "scope": self.scope,
            "keys": keys,
            "bytes": stored,
            "written_at": self.clock(),
            "run": run,
        }
        self.location.write_json(POINTER, new)
        if pointer and pointer["file"] != name:
            self.location.remove(str(pointer["file"]))  # checked: the state file of its generation
        return new


def _state_problem(path: str) -> str:
    """What is wrong with a downloaded state file ('' when it is the SQLite table this module
    writes)."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        return f"cannot be opened as SQLite ({exc})"
    try:
        columns = [
            (name, kind.upper(), notnull, pk)
            for _, name, kind, notnull, _, pk in db.execute("PRAGMA table_info(state)")
        ]
        failed = [
            (name, kind.upper(), pk) for _, name, kind, _, _, pk in db.execute("PRAGMA table_info(failed)")
        ]
    except sqlite3.Error as exc:
        return f"is not an SQLite state ({exc})"
    finally:
        db.close()
    if columns != [("k", "INTEGER", 0, 1), ("f", "INTEGER", 1, 0)]:
        found = ", ".join(f"{n} {k}" for n, k, _, _ in columns[:10]) or "none"
        return f"does not hold the table state(k INTEGER PRIMARY KEY, f INTEGER NOT NULL) this provider writes (columns: {found})"
    if failed and failed != [("k", "INTEGER", 1)]:
        return "holds a table failed that is not failed(k INTEGER PRIMARY KEY), the keys this provider writes"
    return ""


@dataclass(frozen=True)
class Loaded:
    """The state an import starts from: its generation, the local SQLite file (None: every row
    is new), and why it is a full import when it is one."""

    generation: int
    path: str | None
    why_full: str = ""
    keys: int = 0


def scope_of(spec: Any, columns: Iterable[str]) -> dict[str, Any]:
    """What a state is kept for: another target or another column set is a full import."""
    target = spec.target
    return {
        "object_type": target.object_type.value,
        "program_id": target.program_id,
        "custom_object_name": target.custom_object_name,
        "list_id": spec.list_id,
        "partition_name": spec.partition_name,
        "program_member_status": spec.program_member_status,
        "lookup_field": spec.lookup_field,
        "columns": list(columns),
    }
