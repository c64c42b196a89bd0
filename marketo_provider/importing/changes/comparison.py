"""What ``changed_rows_only`` adds to one import: the state of its target locked while the import
runs, the previous state loaded to compare the rows with (pre-flight compares each row as it writes
the ledger, :mod:`~marketo_provider.sources.ledger`), and the next state built from it and written
once Marketo confirmed. Which rows Marketo confirmed comes from the import's ledger
(:meth:`~marketo_provider.sources.ledger.Ledger.confirmed`)."""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from marketo_provider.api import ImportSpec
from marketo_provider.importing.changes.state import ChangeState, Loaded, scope_of
from marketo_provider.importing.errors import ImportAbortedError
from marketo_provider.importing.options import ImportOptions
from marketo_provider.importing.state import ImportState
from marketo_provider.sources import AnySource, Ledger, Preflight, open_body
from marketo_provider.storage import StateLocation

# A lock not renewed for this long is taken over: at least a few poll intervals.
MIN_LEASE_SECONDS = 300.0


def lease_seconds(poll_interval: float) -> float:
    """How long the state's lock holds without being renewed: a few poll intervals, at least
    :data:`MIN_LEASE_SECONDS`."""
    return max(MIN_LEASE_SECONDS, 4 * poll_interval)


def build_state(
    previous: str | None,
    out: str,
    confirmed: Iterable[tuple[int, int]],
    failed: Iterable[int] = (),
) -> int:
    """The next state: the previous one with the ``(key, fingerprint)`` pairs Marketo confirmed
    (in the order sent: a later row of a key wins), and the keys whose row Marketo failed this time
    (``failed``: the next import counts their rows as sent again after failing, not as new or
    changed). Returns how many keys it holds."""
    db = sqlite3.connect(out)
    try:
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("CREATE TABLE state (k INTEGER PRIMARY KEY, f INTEGER NOT NULL)")
        copied = 0
        if previous is not None:
            db.execute("ATTACH DATABASE ? AS prev", (f"file:{previous}?mode=ro",))
            copied = db.execute("INSERT INTO state SELECT k, f FROM prev.state").rowcount
            db.commit()
            db.execute("DETACH DATABASE prev")
        db.executemany("INSERT OR REPLACE INTO state VALUES (?, ?)", confirmed)
        db.execute("CREATE TABLE failed (k INTEGER PRIMARY KEY)")
        db.executemany("INSERT OR IGNORE INTO failed VALUES (?)", ((k,) for k in failed))
        db.commit()
        (keys,) = db.execute("SELECT COUNT(*) FROM state").fetchone()
        # The copy fills its pages in key order; keys added in the order sent split pages, so the
        # file is packed again when they are more than a few (always for a first state).
        if int(keys) - copied > copied // 100:
            db.execute("VACUUM")
        return int(keys)
    finally:
        db.close()


class ChangedRows:
    """The changed-rows side of an import (the operator's, or the sensor's that concludes it).

    :param store: the state of the import's target and columns (None unless ``changed_rows_only``).
    """

    def __init__(
        self, store: ChangeState | None, *, full_refresh: bool, owner: str, log: Any, poll_interval: float
    ) -> None:
        self._store = store
        self.full_refresh = full_refresh
        self.owner = owner
        self.log = log
        self.lease = lease_seconds(poll_interval)
        self._work: tempfile.TemporaryDirectory[str] | None = None
        self._previous: dict[int, str] = {}  # generation -> the downloaded state file
        self._locked = False

    @classmethod
    def of(
        cls, spec: ImportSpec, source: AnySource, options: ImportOptions, *, owner: str, log: Any
    ) -> ChangedRows:
        store = None
        if options.changed_rows_only and options.state is not None:
            location = options.state

            def columns() -> Sequence[str]:
                with open_body(source) as (header, _):
                    return header.names

            store = _LazyStore(location, lambda: scope_of(spec, columns()))
        return cls(
            store,  # type: ignore[arg-type]
            full_refresh=options.full_refresh,
            owner=owner,
            log=log,
            poll_interval=options.poll_interval,
        )

    @classmethod
    def of_context(
        cls, context: Mapping[str, Any], *, owner: str, log: Any, poll_interval: float
    ) -> ChangedRows:
        """The changed-rows side of an import concluded elsewhere (the sensor), from what the
        operator's summary carries (:meth:`context`)."""
        path, conn_id, scope = context["state_path"], context.get("state_conn_id"), context["scope"]
        return cls(
            ChangeState(StateLocation(path, conn_id), scope),
            full_refresh=bool(context.get("full_refresh")),
            owner=owner,
            log=log,
            poll_interval=poll_interval,
        )

    def context(self) -> dict[str, Any] | None:
        """What a sensor needs to write the state this import compared with."""
        store = self.store()
        if store is None:
            return None
        return {
            "state_path": store.location.path,
            "state_conn_id": store.location.conn_id,
            "scope": store.scope,
            "full_refresh": self.full_refresh,
        }

    def lease_context(self) -> dict[str, Any] | None:
        """The lock this run holds, for a trigger to renew while it waits (:func:`renew_lease`)."""
        store = self.store()
        if store is None:
            return None
        location = store.location
        return {
            "state_path": location.path,
            "state_conn_id": location.conn_id,
            "owner": self.owner,
            "seconds": self.lease,
        }

    def store(self) -> ChangeState | None:
        store = self._store
        if isinstance(store, _LazyStore):
            self._store = store = store.get()
        return store

    @property
    def on(self) -> bool:
        return self._store is not None

    # ---- the lock ----------------------------------------------------------------------------

    def lock(self) -> None:
        """Take the state's lock for this run (renewed when this run holds it already)."""
        store = self.store()
        if store is not None:
            store.lock(self.owner, lease_seconds=self.lease, replace_damaged=self.full_refresh)
            self._locked = True

    def renew(self, seconds: float | None = None) -> None:
        """Keep the lock for another lease (or ``seconds``, e.g. while waiting elsewhere)."""
        store = self.store()
        if store is not None:
            store.renew(self.owner, lease_seconds=max(self.lease, seconds or 0.0))

    def release(self) -> None:
        """Let go of the state's lock (if this run holds it) and the files it downloaded."""
        store = self.store() if self._store is not None else None
        if store is not None:
            store.unlock(self.owner)
        self._locked = False
        if self._work is not None:
            self._work.cleanup()
            self._work = None
            self._previous.clear()

    # ---- the state ---------------------------------------------------------------------------

    def workdir(self) -> str:
        if self._work is None:
            self._work = tempfile.TemporaryDirectory(prefix="marketo-state-")
        return self._work.name

    def load(self) -> Loaded | None:
        store = self.store()
        if store is None:
            return None
        loaded = store.load(self.workdir(), full_refresh=self.full_refresh)
        if loaded.path is not None:
            self._previous[loaded.generation] = loaded.path
        return loaded

    def previous(self, state: ImportState) -> str | None:
        """The state file the import compared with (downloaded again in a new process)."""
        change = state.change
        if not change or change.get("full"):
            return None
        generation = int(change["generation"])
        if generation not in self._previous:
            loaded = self.load()
            if loaded is None or loaded.path is None or loaded.generation != generation:
                store = self.store()
                where = store.location.path if store else "?"
                raise ImportAbortedError(
                    f"the state at {where} is no longer generation {generation}, which earlier parts were "
                    f"compared with. {state.accounting()}"
                )
        return self._previous[generation]

    def log_changes(self, checked: Preflight, loaded: Loaded) -> None:
        counts = checked.changes or {}
        if loaded.path is None:
            self.log.info("changed_rows_only: %s", loaded.why_full)
        self.log.info(
            "changed_rows_only (state generation %d): %s rows new, %s changed, %s sent again after failing "
            "last time, %s unchanged (not sent); %s keys confirmed before are no longer in the source",
            loaded.generation,
            *(
                f"{counts.get(k, 0):,}"
                for k in ("rows_new", "rows_changed", "rows_sent_again", "rows_unchanged", "keys_vanished")
            ),
        )

    def summary(self, state: ImportState) -> dict[str, Any] | None:
        if self._store is None or state.change is None:
            return None
        store = self.store()
        return {
            **state.change.get("counts", {}),
            "full": state.change.get("full"),
            "why_full": state.change.get("why_full") or None,
            "state_path": store.uri if store is not None else None,
            "state_generation": state.change.get("generation"),
        }

    def write(self, state: ImportState, ledger: Ledger, ranges: Sequence[tuple[int, int]]) -> dict[str, Any]:
        """The next state: the previous one with the row each key ends up with in Marketo, among
        the ordinal ``ranges`` of the parts Marketo completed and accounted for, less the rows it
        failed; written only if the pointer has not moved on."""
        store = self.store()
        assert store is not None and state.change is not None
        out = os.path.join(self.workdir(), "next.sqlite")
        if os.path.exists(out):
            os.remove(out)
        keys = build_state(self.previous(state), out, ledger.confirmed(ranges), ledger.failed_keys())
        pointer = store.write(out, int(state.change["generation"]), keys, self.owner)
        self.log.info(
            "Kept what Marketo confirmed as state generation %d (%s keys, %s bytes) at %s",
            pointer["generation"],
            f"{keys:,}",
            f"{pointer['bytes']:,}",
            store.uri,
        )
        return pointer


def renew_lease(lease: Mapping[str, Any]) -> None:
    """Renew the lock :meth:`ChangedRows.lease_context` describes (from the triggerer)."""
    store = ChangeState(StateLocation(str(lease["state_path"]), lease.get("state_conn_id")), {})
    store.renew(str(lease["owner"]), lease_seconds=float(lease["seconds"]))


class _LazyStore:
    """The state, made once it is needed (its scope names the source's columns: a read of the
    source's header)."""

    def __init__(self, location: StateLocation, scope: Any) -> None:
        self.location = location
        self._scope = scope

    def get(self) -> ChangeState:
        return ChangeState(self.location, self._scope())
