"""The lock of a state folder: ``lock.json``, held by the run importing with the state for a lease
it renews while it imports; another run meets it and stops, saying so. Taking, renewing and
releasing it are each one atomic step on the folder's storage: on a local folder under the
operating system's lock on ``lock.guard`` (``lock.json`` created by a hard link of a complete file,
replaced by a rename), on S3 by conditional writes, elsewhere by a write read back."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import math
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from marketo_provider.api import MarketoError, MarketoValueError
from marketo_provider.api.redaction import hide_secrets
from marketo_provider.bounds import cut
from marketo_provider.storage import MAX_JSON_BYTES, StateDamagedError, StateLocation, replace_local

LOCK = "lock.json"
LOCK_GUARD = "lock.guard"
LOCK_FORMAT = 1


class StateLockedError(MarketoError):
    """Another run is importing with the same state; this one stops before sending anything."""

    permanent = False  # a retry after the other run finished goes on


# ---- the lock's storage: read with a tag, create if absent, replace or delete if unchanged ------


class _LockFile:
    """``lock.json`` where the storage offers nothing better: a write read back (two runs that
    write at the same moment may both read their own write)."""

    def __init__(self, location: StateLocation) -> None:
        self.location = location

    @contextlib.contextmanager
    def guarded(self) -> Iterator[None]:
        yield

    def read(self) -> tuple[bytes, str] | None:
        data = self.location.read_bytes(LOCK, strict=False)  # a lock too large reads as damaged
        return None if data is None else (data, hashlib.sha256(data).hexdigest())

    def read_or_create(self, data: bytes) -> tuple[bytes, str] | bool:
        """The lock as it is (its bytes and tag); where there is none, ``data`` created as the lock:
        True, or False when another run created one at the same moment."""
        found = self.read()
        if found is None:
            return self.create(data)
        return found

    def create(self, data: bytes) -> bool:
        if self.read() is not None:
            return False
        self.location.write_bytes(LOCK, data)
        again = self.read()
        return again is not None and again[0] == data

    def replace(self, data: bytes, tag: str) -> bool:
        now = self.read()
        if now is None or now[1] != tag:
            return False
        self.location.write_bytes(LOCK, data)
        again = self.read()
        return again is not None and again[0] == data

    def delete(self, tag: str) -> bool:
        now = self.read()
        if now is None or now[1] != tag:
            return False
        self.location.remove(LOCK)
        return True


class _LocalLockFile(_LockFile):
    """A local folder: every step holds the operating system's lock on ``lock.guard`` (released
    by the kernel if the process dies) for the few milliseconds it takes; ``lock.json`` is created
    by a hard link of a complete file (never seen half written) and replaced by a rename."""

    def __init__(self, location: StateLocation, folder: str) -> None:
        super().__init__(location)
        self.path = os.path.join(folder, LOCK)
        self.guard = os.path.join(folder, LOCK_GUARD)

    @contextlib.contextmanager
    def guarded(self) -> Iterator[None]:
        import fcntl

        fd = os.open(self.guard, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the flock

    def create(self, data: bytes) -> bool:
        folder = os.path.dirname(self.path)
        fd, temp = tempfile.mkstemp(prefix=".lock.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.link(temp, self.path)  # fails if lock.json exists: create-exclusive, complete
            return True
        except FileExistsError:
            return False
        finally:
            with contextlib.suppress(OSError):
                os.remove(temp)

    def replace(self, data: bytes, tag: str) -> bool:
        now = self.read()
        if now is None or now[1] != tag:
            return False
        replace_local(self.path, data)
        return True

    def delete(self, tag: str) -> bool:
        now = self.read()
        if now is None or now[1] != tag:
            return False
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path)
        return True


class _S3LockFile(_LockFile):
    """S3: conditional writes. Created with ``If-None-Match: *``, replaced and deleted with
    ``If-Match: <etag>`` (what S3 documents for compare-and-swap), so two runs never both win."""

    def __init__(self, location: StateLocation, folder: Any) -> None:
        super().__init__(location)
        self.fs = folder.fs
        bucket_key = f"{str(folder.path).rstrip('/')}/{LOCK}"
        self.bucket, _, self.key = bucket_key.partition("/")

    def _call(self, method: str, **kwargs: Any) -> Any:
        return self.fs.call_s3(method, Bucket=self.bucket, Key=self.key, **kwargs)

    def read(self) -> tuple[bytes, str] | None:
        from fsspec.asyn import sync

        async def get() -> tuple[bytes, str] | None:
            try:
                answer = await self.fs._call_s3("get_object", Bucket=self.bucket, Key=self.key)
            except FileNotFoundError:
                return None
            body = await answer["Body"].read(MAX_JSON_BYTES + 1)
            return bytes(body), str(answer["ETag"])

        found: tuple[bytes, str] | None = sync(self.fs.loop, get)
        return found

    def create(self, data: bytes) -> bool:
        return self._conditional("put_object", Body=data, IfNoneMatch="*")

    def replace(self, data: bytes, tag: str) -> bool:
        return self._conditional("put_object", Body=data, IfMatch=tag)

    def delete(self, tag: str) -> bool:
        return self._conditional("delete_object", IfMatch=tag)

    def _conditional(self, method: str, **kwargs: Any) -> bool:
        try:
            self._call(method, **kwargs)
        except Exception as exc:
            if _condition_failed(exc):
                return False
            raise
        finally:
            self.fs.invalidate_cache(f"{self.bucket}/{self.key}")
        return True


def _condition_failed(exc: BaseException) -> bool:
    """Whether S3 refused a conditional request: 412 Precondition Failed, 409 a conflicting
    conditional write, or 404 for an If-Match on what is gone (s3fs translates them to OSErrors)."""
    seen: BaseException | None = exc
    while seen is not None:
        response = getattr(seen, "response", None)
        if isinstance(response, dict):
            error = response.get("Error") or {}
            status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
            if error.get("Code") in (
                "PreconditionFailed",
                "ConditionalRequestConflict",
                "NoSuchKey",
                "412",
                "409",
            ):
                return True
            if status in (409, 412):
                return True
        seen = seen.__cause__
    if isinstance(exc, FileExistsError | FileNotFoundError):
        return True
    return isinstance(exc, OSError) and exc.errno in (errno.EINVAL, errno.EBUSY) and "recondition" in str(exc)


def _lock_file(location: StateLocation) -> _LockFile:
    local = location.local_dir()
    if local is not None:
        return _LocalLockFile(location, local)
    folder = location.folder()
    if folder.protocol in ("s3", "s3a") and hasattr(folder.fs, "call_s3"):
        return _S3LockFile(location, folder)
    return _LockFile(location)


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
        store = _lock_file(self.location)
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
        store = _lock_file(self.location)
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
            store = _lock_file(self.location)
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
        found = _lock_file(self.location).read()
        return None if found is None else self._lease(found[0])
