"""The lock of a state folder: ``lock.json``, held by the run importing with the state for a lease
it renews while it imports; another run meets it and stops, saying so. Taking, renewing and
releasing it are each one atomic step on the folder's storage (:mod:`.lock_files`)."""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from marketo_provider.api import MarketoError, MarketoValueError
from marketo_provider.api.redaction import hide_secrets
from marketo_provider.bounds import cut
from marketo_provider.importing.changes.lock_files import LOCK, lock_file
from marketo_provider.storage import StateDamagedError, StateLocation

LOCK_FORMAT = 1


class StateLockedError(MarketoError):
    """Another run is importing with the same state; this one stops before sending anything."""

    permanent = False  # a retry after the other run finished goes on


@dataclass(frozen=True)
class Lease:
    """What ``lock.json`` says: who holds the state, since when, until when."""

    owner: str
    taken_at: float
    lease_until: float

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "format": LOCK_FORMAT,
                "owner": self.owner,
                "taken_at": self.taken_at,
                "lease_until": self.lease_until,
                "token": uuid.uuid4().hex,  # every write differs, also within one clock tick
            },
            sort_keys=True,
        ).encode("utf-8")


def _utc(epoch: float) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))
    except (OverflowError, OSError, ValueError):  # a lock from elsewhere: any number
        return f"{epoch:.6g} (epoch seconds)"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _check_lease(lease_seconds: float) -> None:
    if _number(lease_seconds) is None or lease_seconds <= 0:
        raise MarketoValueError(f"lease_seconds must be a positive number of seconds, not {lease_seconds!r}")


class StateLock:
    """The lock of the state in a :class:`StateLocation`."""

    def __init__(self, location: StateLocation, *, clock: Callable[[], float] = time.time) -> None:
        self.location = location
        self.clock = clock

    def _lease(self, data: bytes) -> Lease:
        """The lease a ``lock.json`` holds, or a :class:`StateDamagedError`."""
        where = self.location.where(LOCK)
        recover = (
            f"If no run is importing with this state, remove {where} (or run once with full_refresh=True, "
            "which replaces it)"
        )
        try:
            held = json.loads(data.decode("utf-8"))
        except ValueError:
            held = None
        if not isinstance(held, dict):
            raise StateDamagedError(where, "is not the JSON object this provider writes", recover)
        version = held.get("format")
        if isinstance(version, int) and not isinstance(version, bool) and version > LOCK_FORMAT:
            raise StateDamagedError(
                where,
                f"was written by a newer release of this provider (lock format {version}; this release reads "
                f"{LOCK_FORMAT}); upgrade this deployment",
                recover,
            )
        if version == LOCK_FORMAT:
            owner, taken, until = (
                held.get("owner"),
                _number(held.get("taken_at")),
                _number(held.get("lease_until")),
            )
        elif version is None:  # the first release's lock: since/until
            owner, taken, until = held.get("owner"), _number(held.get("since")), _number(held.get("until"))
        else:
            owner, taken, until = None, None, None
        if not isinstance(owner, str) or not owner or taken is None or until is None:
            raise StateDamagedError(
                where,
                f"is not a lock this provider writes (it needs format {LOCK_FORMAT}, an owner, and taken_at and "
                "lease_until as epoch seconds)",
                recover,
            )
        return Lease(cut(owner, 200), taken, until)  # messages name the owner: bounded

    def _locked(self, lease: Lease) -> StateLockedError:
        return StateLockedError(
            f"another run ({lease.owner}) has been importing with the state at {self.location.shown} since "
            f"{_utc(lease.taken_at)}, its lease ending {_utc(lease.lease_until)}; this run stops before "
            "sending anything so as not to overwrite it. Retry once that run is done: a lease that is not "
            "renewed ends by itself"
        )

    def lock(self, owner: str, *, lease_seconds: float, replace_damaged: bool = False) -> None:
        """Hold the state for ``owner`` (the run and task) for ``lease_seconds``: taken when free,
        renewed when ``owner`` holds it already (a retry of the same task), taken over when its
        holder's lease ended; else :class:`StateLockedError` naming the holder and when its lease
        ends. ``replace_damaged``: a ``lock.json`` this provider cannot read is replaced (else it is
        a :class:`StateDamagedError`)."""
        _check_lease(lease_seconds)
        self.location.check_writable()  # a clear error, not a raw OSError, before anything is held
        store = lock_file(self.location)
        for _ in range(3):  # a free lock taken, or a stale one removed, by another at the same moment
            now = self.clock()
            with store.guarded():
                held = store.read_or_create(Lease(owner, now, now + lease_seconds).to_bytes())
                if isinstance(held, bool):
                    if held:
                        return
                    continue
                data, tag = held
                try:
                    lease: Lease | None = self._lease(data)
                except StateDamagedError:
                    if not replace_damaged:
                        raise
                    lease = None
                if lease is not None and lease.owner == owner:
                    if store.replace(Lease(owner, lease.taken_at, now + lease_seconds).to_bytes(), tag):
                        return
                    continue
                if lease is not None and lease.lease_until > now:
                    raise self._locked(lease)
                if store.replace(Lease(owner, now, now + lease_seconds).to_bytes(), tag):
                    return  # taken over: only one taker's replace matches the stale lock's tag
        found = store.read()
        if found is not None:
            raise self._locked(self._lease(found[0]))
        raise StateLockedError(
            f"other runs took and released the state at {self.location.shown} at the same moment; this run "
            "stops before sending anything. Retry once they are done"
        )

    def renew(self, owner: str, *, lease_seconds: float) -> None:
        """Extend ``owner``'s lease (one small write); :class:`StateLockedError` when another run
        holds the lock now (it took it over after this lease ended)."""
        _check_lease(lease_seconds)
        store = lock_file(self.location)
        now = self.clock()
        with store.guarded():
            # Released meanwhile (by hand): taken again, unless another run does first.
            taken = store.read_or_create(Lease(owner, now, now + lease_seconds).to_bytes())
            if taken is True:
                return
            found = store.read() if taken is False else taken
            if found is not None:
                lease = self._lease(found[0])
                if lease.owner == owner and store.replace(
                    Lease(owner, lease.taken_at, now + lease_seconds).to_bytes(), found[1]
                ):
                    return
                if lease.owner != owner:
                    raise StateLockedError(
                        f"the state at {self.location.shown} was taken over by another run ({lease.owner}) "
                        f"after this run's lease ended; this run stops so as not to overwrite it"
                    )
        raise StateLockedError(
            f"the lock of the state at {self.location.shown} changed while this run renewed it; this run "
            "stops so as not to overwrite another's state"
        )

    def unlock(self, owner: str) -> None:
        """Release the lock if ``owner`` holds it; never another owner's, and idempotent. A state
        folder that cannot be written any more is logged, not raised (the run is ending, often on
        another error, and the lease ends by itself)."""
        try:
            store = lock_file(self.location)
            with store.guarded():
                found = store.read()
                if found is None:
                    return
                try:
                    lease = self._lease(found[0])
                except StateDamagedError:
                    return  # not ours to judge: the next lock() names it
                if lease.owner == owner:
                    store.delete(found[1])
        except Exception as exc:
            logging.getLogger(__name__).warning(
                "The lock %s could not be released (%s); its lease ends by itself",
                self.location.where(LOCK),
                hide_secrets(f"{type(exc).__name__}: {exc}"),
            )

    def holder(self) -> Lease | None:
        """The lease ``lock.json`` holds now (None when free)."""
        found = lock_file(self.location).read()
        return None if found is None else self._lease(found[0])
