"""Where ``lock.json`` lives, each storage with its one atomic step: on a local folder under the
operating system's lock on ``lock.guard`` (created by a hard link of a complete file, replaced by
a rename), on S3 by conditional writes, elsewhere by a write read back. Each reads the lock with a
tag, creates it when absent, and replaces or deletes it only when unchanged."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
from collections.abc import Iterator
from typing import Any

from marketo_provider.storage import MAX_JSON_BYTES, StateLocation, replace_local

__all__ = ["LOCK", "LOCK_GUARD", "lock_file"]

LOCK = "lock.json"
LOCK_GUARD = "lock.guard"


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


def lock_file(location: StateLocation) -> _LockFile:
    local = location.local_dir()
    if local is not None:
        return _LocalLockFile(location, local)
    folder = location.folder()
    if folder.protocol in ("s3", "s3a") and hasattr(folder.fs, "call_s3"):
        return _S3LockFile(location, folder)
    return _LockFile(location)
