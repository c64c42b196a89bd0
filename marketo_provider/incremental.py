"""Import only what changed: what Marketo confirmed, kept where it outlives runs.

The state of one import target is a folder (``state_path``: local or any object storage):

``latest.json``
    the pointer: the generation, the state file, the scope it was kept for (object, list,
    partition, program and status, custom object, lookup field, columns), how many keys.
``state-<generation>.sqlite.gz``
    per key (a 64-bit hash of the key's values), a 64-bit fingerprint of the values Marketo
    confirmed last: an SQLite table ``state(k, f)``, gzip-compressed.
``lock.json``
    held by the run that is importing with this state, for a lease it renews while it imports;
    another run meets it and stops, saying so. ``lock.guard`` (local folders only) is the empty
    file whose operating-system lock makes taking, renewing and releasing ``lock.json`` atomic.
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

import contextlib
import errno
import gzip
import hashlib
import json
import logging
import math
import os
import shutil
import sqlite3
import tempfile
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from marketo_provider.api import MarketoError, MarketoValueError, hide_secrets
from marketo_provider.bounds import cut

POINTER = "latest.json"
LOCK = "lock.json"
LOCK_GUARD = "lock.guard"
STATE_FORMAT = 1
LOCK_FORMAT = 1
# The most bytes read of a pointer, a lock or a journal (each is a few hundred bytes).
MAX_JSON_BYTES = 1024 * 1024
# A state file unpacks to at most this many times its stored size plus this allowance (SQLite
# pages of hashes pack about 2:1; gzip can pack zeros 1000:1, which no state holds).
STATE_UNPACK_RATIO = 20
STATE_UNPACK_ALLOWANCE = 64 * 1024 * 1024


class StateLockedError(MarketoError):
    """Another run is importing with the same state; this one stops before sending anything."""

    permanent = False  # a retry after the other run finished goes on


class StateDamagedError(MarketoValueError):
    """A file of the state folder is not what this provider writes; nothing was sent."""

    def __init__(self, where: str, problem: str, recover: str = "") -> None:
        super().__init__(f"{where} {problem}" + (f". {recover}" if recover else ""))
        self.where = where  # the file, as messages name it
        self.problem = problem


def state_file_name(generation: int) -> str:
    """The only name a pointer of ``generation`` may give its state file."""
    return f"state-{generation:08d}.sqlite.gz"


def _plain_name(name: str) -> str:
    """``name`` if it names an entry of the folder itself (no separator, no parent)."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise MarketoValueError(f"{name!r} is not a plain file name inside the state folder")
    return name


@dataclass(frozen=True)
class StateLocation:
    """Where the state of an import target is kept: a folder URI and its connection."""

    path: str
    conn_id: str | None = None

    @property
    def shown(self) -> str:
        """The folder as messages name it (credentials masked)."""
        return hide_secrets(self.path.rstrip("/"))

    def where(self, name: str) -> str:
        return f"{self.shown}/{name}"

    def folder(self) -> Any:
        from marketo_provider.results import storage_folder

        return storage_folder(self.path, self.conn_id, "state_path")

    def local_dir(self) -> str | None:
        """The folder's path on this machine (created), or None on object storage."""
        folder = self.folder()
        if folder.protocol not in ("", "file"):
            return None
        os.makedirs(folder.path, exist_ok=True)
        return str(folder.path)

    def _entry(self, name: str) -> Any:
        folder = self.folder()
        entry = folder / _plain_name(name)
        if folder.protocol in ("", "file"):
            folder.mkdir(parents=True, exist_ok=True)
            # A link would lead reads (and writes) outside the folder; a folder is no file of ours.
            self._refuse_odd(os.path.join(str(folder.path), name), name, links=True)
        return entry

    def _refuse_odd(self, local: str, name: str, *, links: bool) -> None:
        if (links and os.path.islink(local)) or (os.path.isdir(local) and not os.path.islink(local)):
            raise StateDamagedError(
                self.where(name),
                f"is a {'symbolic link' if os.path.islink(local) else 'folder'}, not a file this provider "
                "writes; remove it",
            )

    def read_bytes(self, name: str, most: int = MAX_JSON_BYTES, *, strict: bool = True) -> bytes | None:
        """The file's bytes (None when there is none); more than ``most`` is a damaged file (or,
        not ``strict``, its first ``most + 1`` bytes, which no JSON reader takes for whole)."""
        entry = self._entry(name)
        try:
            with entry.open("rb") as handle:
                data = handle.read(most + 1)
        except FileNotFoundError:
            return None
        if len(data) > most and strict:
            raise StateDamagedError(
                self.where(name), f"is larger than the {most:,} bytes this provider ever writes there"
            )
        return bytes(data)

    def read_json(self, name: str) -> dict[str, Any] | None:
        """A JSON object this provider wrote (None when there is none); anything else is a
        :class:`StateDamagedError`."""
        data = self.read_bytes(name)
        if data is None:
            return None
        try:
            parsed = json.loads(data.decode("utf-8"))
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise StateDamagedError(
                self.where(name),
                "is not the JSON object this provider writes (it may be truncated or written by something else)",
            )
        return parsed

    def write_json(self, name: str, data: Mapping[str, Any]) -> None:
        """Replace the file in one step: on a local folder a new file renamed over the old one, on
        object storage one PUT."""
        self.write_bytes(name, json.dumps(data, sort_keys=True).encode("utf-8"))

    def write_bytes(self, name: str, data: bytes) -> None:
        local = self.local_dir()
        if local is not None:
            path = os.path.join(local, _plain_name(name))
            self._refuse_odd(path, name, links=False)  # a link is replaced, never written through
            _replace_local(path, data)
            return
        with self._entry(name).open("wb") as handle:
            handle.write(data)

    def remove(self, name: str) -> None:
        entry = self._entry(name)
        with contextlib.suppress(FileNotFoundError):
            if entry.exists():
                entry.unlink()

    def download(self, name: str, dest: str, *, most: int | None = None) -> None:
        """Unpack the gzip file ``name`` into ``dest``; more than ``most`` bytes unpacked, or a
        file that is not gzip, is a :class:`StateDamagedError`."""
        try:
            source = self._entry(name).open("rb")
        except FileNotFoundError:
            raise StateDamagedError(self.where(name), f"does not exist, though {POINTER} names it") from None
        written = 0
        try:
            with source, gzip.open(source, "rb") as unpacked, open(dest, "wb") as out:
                while chunk := unpacked.read(1024 * 1024):
                    written += len(chunk)
                    if most is not None and written > most:
                        raise StateDamagedError(
                            self.where(name),
                            f"unpacks to more than {most:,} bytes, far more than a state of its size holds",
                        )
                    out.write(chunk)
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise StateDamagedError(
                self.where(name), f"is not a complete gzip file ({type(exc).__name__}: {exc})"
            ) from None

    def size(self, name: str) -> int:
        return int(self._entry(name).stat().st_size)

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
        """Write and remove a small file in the folder, so a state folder that cannot be written
        (read-only, a regular file, no credentials) is found before anything is sent."""
        probe = f".marketo-write-check-{uuid.uuid4().hex[:12]}"
        via = f" (connection {self.conn_id!r})" if self.conn_id else ""
        try:
            folder = self.folder()
            if (
                folder.protocol in ("", "file")
                and os.path.exists(folder.path)
                and not os.path.isdir(folder.path)
            ):
                raise NotADirectoryError(f"{self.shown} is a file, not a folder")
            self.write_bytes(probe, b"{}")
            self.remove(probe)
        except MarketoValueError:
            raise
        except Exception as exc:
            raise MarketoValueError(
                f"state_path {self.shown!r}{via} cannot be written: {type(exc).__name__}: {exc}. Nothing was "
                "sent to Marketo; fix the location or its connection (state_conn_id)"
            ) from None


def _replace_local(path: str, data: bytes) -> None:
    """Write ``path`` as a new file renamed over the old one: readers see the old or the new."""
    folder, name = os.path.split(path)
    fd, temp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder or ".")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temp)
        raise


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
        _replace_local(self.path, data)
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


class ChangeState:
    """The confirmed state of one import target in a :class:`StateLocation`."""

    def __init__(
        self, location: StateLocation, scope: Mapping[str, Any], *, clock: Callable[[], float] = time.time
    ) -> None:
        self.location = location
        self.scope = dict(scope)
        self.clock = clock

    @property
    def uri(self) -> str:
        """The pointer's URI as messages, logs and the summary show it (credentials masked)."""
        return self.location.where(POINTER)

    # -- the lock

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
                found = store.read()
                if found is None:
                    if store.create(Lease(owner, now, now + lease_seconds).to_bytes()):
                        return
                    continue
                data, tag = found
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
            found = store.read()
            if found is None:
                # Released meanwhile (by hand): take it again, unless another run does first.
                if store.create(Lease(owner, now, now + lease_seconds).to_bytes()):
                    return
                found = store.read()
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


def _check_lease(lease_seconds: float) -> None:
    if _number(lease_seconds) is None or lease_seconds <= 0:
        raise MarketoValueError(f"lease_seconds must be a positive number of seconds, not {lease_seconds!r}")


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
    except sqlite3.Error as exc:
        return f"is not an SQLite state ({exc})"
    finally:
        db.close()
    if columns != [("k", "INTEGER", 0, 1), ("f", "INTEGER", 1, 0)]:
        found = ", ".join(f"{n} {k}" for n, k, _, _ in columns[:10]) or "none"
        return f"does not hold the table state(k INTEGER PRIMARY KEY, f INTEGER NOT NULL) this provider writes (columns: {found})"
    return ""


@dataclass(frozen=True)
class Loaded:
    """The state an import starts from: its generation, the local SQLite file (None: every row
    is new), and why it is a full import when it is one."""

    generation: int
    path: str | None
    why_full: str = ""
    keys: int = 0


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
