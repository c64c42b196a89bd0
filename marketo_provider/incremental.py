"""Import only what changed: what Marketo confirmed, kept where it outlives runs.

The state of one import target is a folder (``state_path``: local or any object storage):

``latest.json``
    the pointer: the generation, the state file, the scope it was kept for (object, list,
    partition, program and status, custom object, lookup field, columns), how many keys.
``state-<generation>.sqlite.gz``
    per key (a 64-bit hash of the key's values), a 64-bit fingerprint of the values Marketo
    confirmed last: an SQLite table ``state(k, f)``, gzip-compressed.
``lock.json``
    held by the run that is importing with this state; another run meets it and stops, saying so.
``journal/``
    the import's journal (parts accepted, batch ids, parts in flight) where Airflow has no task
    state store, so a retried task carries on where it stopped.

A new state is written only after the import concludes, as a new file, and the pointer is
replaced last (readers follow the pointer, so a state is never seen half written); it is written
only when the pointer still names the generation the import started from, so newer state is never
overwritten with older.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from marketo_provider.api import MarketoError, MarketoValueError

POINTER = "latest.json"
LOCK = "lock.json"
STATE_FORMAT = 1


class StateLockedError(MarketoError):
    """Another run is importing with the same state; this one stops before sending anything."""

    permanent = False  # a retry after the other run finished goes on


@dataclass(frozen=True)
class StateLocation:
    """Where the state of an import target is kept: a folder URI and its connection."""

    path: str
    conn_id: str | None = None

    def folder(self) -> Any:
        from marketo_provider.results import storage_folder

        return storage_folder(self.path, self.conn_id, "state_path")

    def _entry(self, name: str) -> Any:
        folder = self.folder()
        if folder.protocol in ("", "file"):
            folder.mkdir(parents=True, exist_ok=True)
        return folder / name

    def read_json(self, name: str) -> dict[str, Any] | None:
        entry = self._entry(name)
        try:
            if not entry.exists():
                return None
            with entry.open("rb") as handle:
                data = json.loads(handle.read(1024 * 1024).decode("utf-8"))
        except ValueError:
            raise MarketoValueError(
                f"{self.path.rstrip('/')}/{name} is not the JSON this provider writes"
            ) from None
        return data if isinstance(data, dict) else None

    def write_json(self, name: str, data: Mapping[str, Any]) -> None:
        with self._entry(name).open("wb") as handle:
            handle.write(json.dumps(data, sort_keys=True).encode("utf-8"))

    def remove(self, name: str) -> None:
        entry = self._entry(name)
        try:
            if entry.exists():
                entry.unlink()
        except FileNotFoundError:
            pass

    def download(self, name: str, dest: str) -> None:
        with (
            self._entry(name).open("rb") as source,
            gzip.open(source, "rb") as unpacked,
            open(dest, "wb") as out,
        ):
            shutil.copyfileobj(unpacked, out, 1024 * 1024)

    def upload(self, path: str, name: str) -> int:
        """Write ``path`` gzip-compressed as ``name``; returns the bytes stored."""
        with tempfile.TemporaryFile() as packed:
            with gzip.GzipFile(fileobj=packed, mode="wb", compresslevel=6) as gz, open(path, "rb") as raw:
                shutil.copyfileobj(raw, gz, 1024 * 1024)
            size = packed.tell()
            packed.seek(0)
            with self._entry(name).open("wb") as out:
                shutil.copyfileobj(packed, out, 1024 * 1024)
        return size

    def check_writable(self) -> None:
        probe = f".marketo-write-check-{uuid.uuid4().hex[:12]}"
        try:
            self.write_json(probe, {})
            self.remove(probe)
        except MarketoValueError:
            raise
        except Exception as exc:
            via = f" (connection {self.conn_id!r})" if self.conn_id else ""
            raise MarketoValueError(
                f"state_path {self.path!r}{via} cannot be written: {type(exc).__name__}: {exc}. Nothing was "
                "sent to Marketo; fix the location or its connection (state_conn_id)"
            ) from None


@dataclass(frozen=True)
class Loaded:
    """The state an import starts from: its generation, the local SQLite file (None: every row
    is new), and why it is a full import when it is one."""

    generation: int
    path: str | None
    why_full: str = ""
    keys: int = 0


class ChangeState:
    """The confirmed state of one import target in a :class:`StateLocation`."""

    def __init__(self, location: StateLocation, scope: Mapping[str, Any]) -> None:
        self.location = location
        self.scope = dict(scope)

    @property
    def uri(self) -> str:
        return f"{self.location.path.rstrip('/')}/{POINTER}"

    # -- the lock

    def lock(self, owner: str, *, lease_seconds: float) -> None:
        """Hold the state for ``owner`` (the run and task) for ``lease_seconds``: a lock held by
        another owner and not expired stops this run."""
        until = time.time() + lease_seconds
        held = self.location.read_json(LOCK)
        if held and held.get("owner") != owner and float(held.get("until") or 0) > time.time():
            since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(held.get("since") or 0)))
            raise StateLockedError(
                f"another run ({held.get('owner')}) has been importing with the state at {self.location.path} "
                f"since {since}; this run stops before sending anything so as not to overwrite it. Retry "
                f"once that run is done, or, if it died, remove {self.location.path.rstrip('/')}/{LOCK}"
            )
        token = uuid.uuid4().hex
        self.location.write_json(LOCK, {"owner": owner, "since": time.time(), "until": until, "token": token})
        again = self.location.read_json(LOCK)
        if not again or again.get("token") != token:
            raise StateLockedError(
                f"another run took the state at {self.location.path} at the same moment; this run stops "
                "before sending anything. Retry once that run is done"
            )

    def renew(self, owner: str, *, lease_seconds: float) -> None:
        """Keep the lock ``owner`` holds for another ``lease_seconds``."""
        held = self.location.read_json(LOCK)
        if held and held.get("owner") != owner:
            raise StateLockedError(
                f"the lock of the state at {self.location.path} was taken over by {held.get('owner')}"
            )
        self.location.write_json(
            LOCK,
            {
                **(held or {"owner": owner, "since": time.time(), "token": uuid.uuid4().hex}),
                "until": time.time() + lease_seconds,
            },
        )

    def unlock(self, owner: str) -> None:
        held = self.location.read_json(LOCK)
        if held and held.get("owner") == owner:
            self.location.remove(LOCK)

    # -- reading and writing

    def pointer(self) -> dict[str, Any] | None:
        return self.location.read_json(POINTER)

    def load(self, folder: str, *, full_refresh: bool = False) -> Loaded:
        """The state to compare with, downloaded into ``folder``."""
        pointer = self.pointer()
        generation = int(pointer.get("generation") or 0) if pointer else 0
        if pointer is None:
            return Loaded(0, None, f"no state at {self.location.path} yet: every row is sent")
        if full_refresh:
            return Loaded(generation, None, "full_refresh: every row is sent and the state is built again")
        if pointer.get("format") != STATE_FORMAT:
            return Loaded(
                generation, None, f"the state at {self.location.path} is of another format: every row is sent"
            )
        if pointer.get("scope") != self.scope:
            was, now = pointer.get("scope") or {}, self.scope
            changed = sorted(k for k in set(was) | set(now) if was.get(k) != now.get(k))
            return Loaded(
                generation,
                None,
                f"the state at {self.location.path} was kept for another {', '.join(changed)} "
                f"({', '.join(f'{k}: {was.get(k)!r} -> {now.get(k)!r}' for k in changed)}): every row is sent",
            )
        path = os.path.join(folder, f"state-{generation}.sqlite")
        self.location.download(str(pointer["file"]), path)
        return Loaded(generation, path, "", int(pointer.get("keys") or 0))

    def write(self, path: str, started_from: int, keys: int, run: str) -> dict[str, Any]:
        """Publish a new state built from generation ``started_from``; refused (None returned) when
        the pointer moved on meanwhile. Returns the new pointer."""
        pointer = self.pointer()
        current = int(pointer.get("generation") or 0) if pointer else 0
        if current != started_from:
            raise StateLockedError(
                f"the state at {self.location.path} moved on to generation {current} while this run imported "
                f"from generation {started_from}; the newer state is kept and this run's is not written"
            )
        generation = current + 1
        name = f"state-{generation:08d}.sqlite.gz"
        stored = self.location.upload(path, name)
        new = {
            "format": STATE_FORMAT,
            "generation": generation,
            "file": name,
            "scope": self.scope,
            "keys": keys,
            "bytes": stored,
            "written_at": time.time(),
            "run": run,
        }
        self.location.write_json(POINTER, new)
        if pointer and pointer.get("file") and pointer["file"] != name:
            self.location.remove(str(pointer["file"]))  # the pointer no longer names it
        return new


def build_state(previous: str | None, out: str, confirmed: Iterable[tuple[int, int]]) -> int:
    """The next state: the previous one with the ``(key, fingerprint)`` pairs Marketo confirmed
    (in the order sent: a later row of a key wins). Returns how many keys it holds."""
    db = sqlite3.connect(out)
    try:
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("CREATE TABLE state (k INTEGER PRIMARY KEY, f INTEGER NOT NULL)")
        if previous is not None:
            db.execute("ATTACH DATABASE ? AS prev", (f"file:{previous}?mode=ro",))
            db.execute("INSERT INTO state SELECT k, f FROM prev.state")
            db.commit()
            db.execute("DETACH DATABASE prev")
        db.executemany("INSERT OR REPLACE INTO state VALUES (?, ?)", confirmed)
        db.commit()
        (keys,) = db.execute("SELECT COUNT(*) FROM state").fetchone()
        db.execute("VACUUM")
        return int(keys)
    finally:
        db.close()


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
