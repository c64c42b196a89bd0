"""The folders an import writes, local or on object storage: the results location
(``results_path``), the state of ``changed_rows_only`` (``state_path``), and the journal and the
ledgers' copies kept under either. A folder is named by an argument and a connection
(:func:`storage_folder`: the URI checks), written in one step (:class:`StateLocation`), and
checked writable before anything is sent (:func:`check_writable`)."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
import tempfile
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from marketo_provider._compat import mask_uri_secrets
from marketo_provider.api import MarketoValueError
from marketo_provider.api.redaction import hide_secrets

__all__ = [
    "MAX_JSON_BYTES",
    "POINTER",
    "StateDamagedError",
    "StateLocation",
    "check_writable",
    "replace_local",
    "storage_folder",
    "uri_scheme",
]

# The state's pointer (``changed_rows_only``), which names the one state file a folder holds.
POINTER = "latest.json"
# The most bytes read of a pointer, a lock or a journal (each is a few hundred bytes).
MAX_JSON_BYTES = 1024 * 1024
# What the state and the ledgers' copies are packed with: the fastest level. Hashes pack little
# whatever the level (a state of 1 million keys: 16.1 MB at level 1, 15.5 MB at 6), and level 6
# took four times as long.
GZIP_LEVEL = 1


def uri_scheme(location: Any) -> str:
    """A location's scheme, lower case (``file`` for a local path)."""
    text = str(location)
    return text.split("://", 1)[0].lower() if "://" in text else "file"


def storage_folder(path: str, conn_id: str | None, argument: str) -> Any:
    """The ObjectStoragePath of a folder an argument (``results_path``, ``state_path``) names, or a
    clear error naming the argument."""
    from airflow.sdk import ObjectStoragePath

    mask_uri_secrets(path)
    path = _checked_uri(path, argument)
    try:
        return ObjectStoragePath(path, conn_id=conn_id) if conn_id else ObjectStoragePath(path)
    except Exception as exc:  # an unknown scheme, a malformed URI
        raise MarketoValueError(
            f"{argument} {hide_secrets(path)!r} is not a location Airflow can write: {hide_secrets(str(exc))}. Use a local "
            "folder, file://, or an object storage URI whose provider is installed (s3://, gs://, ...)"
        ) from None


def _checked_uri(path: str, argument: str) -> str:
    """``path`` as ObjectStoragePath should read it: credentials in the URI are refused (Airflow
    would take ``KEY:SECRET`` for a connection id and log it), and ``file://localhost/x`` is
    ``file:///x`` (RFC 8089) where fsspec would read ``localhost/x`` relative to the working
    directory; a ``file://`` URI naming another host is refused."""
    if "://" not in path:
        return path
    scheme, rest = path.split("://", 1)
    authority, _, below = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    conn_argument = argument.replace("_path", "_conn_id")
    if at and (":" in userinfo or scheme.lower() == "file"):
        raise MarketoValueError(
            f"{argument} {hide_secrets(path)!r} has credentials written in it, which Airflow would take for a "
            f"connection id (and log). Keep them in an Airflow connection and name it with {conn_argument}"
        )
    if scheme.lower() == "file" and host:
        if host.lower() != "localhost":
            raise MarketoValueError(
                f"{argument} {path!r} names the host {host!r}: a file:// URI names a folder on this machine "
                "(file:///path or file://localhost/path); reach another machine through its storage's URI"
            )
        return f"{scheme}:///{below}"
    return path


class StateDamagedError(MarketoValueError):
    """A file of the state folder is not what this provider writes; nothing was sent."""

    def __init__(self, where: str, problem: str, recover: str = "") -> None:
        super().__init__(f"{where} {problem}" + (f". {recover}" if recover else ""))
        self.where = where  # the file, as messages name it
        self.problem = problem


def _plain_name(name: str) -> str:
    """``name`` if it names an entry of the folder itself (no separator, no parent)."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise MarketoValueError(f"{name!r} is not a plain file name inside the state folder")
    return name


@dataclass(frozen=True)
class StateLocation:
    """A folder kept across runs, local or on object storage, and its connection: the state of an
    import target (``state_path``), and the journal and the ledgers' copies kept under it or under
    ``results_path``. Every name read or written is a plain name inside the folder."""

    path: str
    conn_id: str | None = None

    @property
    def shown(self) -> str:
        """The folder as messages name it (credentials masked)."""
        return hide_secrets(self.path.rstrip("/"))

    def where(self, name: str) -> str:
        return f"{self.shown}/{name}"

    def folder(self) -> Any:
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
            replace_local(path, data)
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
            with (
                gzip.GzipFile(fileobj=packed, mode="wb", compresslevel=GZIP_LEVEL) as gz,
                open(path, "rb") as raw,
            ):
                shutil.copyfileobj(raw, gz, 1024 * 1024)
            size = packed.tell()
            packed.seek(0)
            with self._entry(name).open("wb") as out:
                shutil.copyfileobj(packed, out, 1024 * 1024)
        return size

    def check_writable(self) -> None:
        """:func:`check_writable` for ``state_path``."""
        check_writable(self.path, self.conn_id, "state_path")


def replace_local(path: str, data: bytes) -> None:
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


def check_writable(path: str, conn_id: str | None, argument: str) -> None:
    """Write and remove a small file in the folder ``argument`` names, so a folder that cannot be
    written (read-only, a regular file or under one, no credentials) is found before anything is
    sent."""
    location = StateLocation(path, conn_id)
    probe = f".marketo-write-check-{uuid.uuid4().hex[:12]}"
    via = f" (connection {conn_id!r})" if conn_id else ""
    try:
        folder = storage_folder(path, conn_id, argument)
        if folder.protocol in ("", "file") and os.path.exists(folder.path) and not os.path.isdir(folder.path):
            raise NotADirectoryError(f"{location.shown} is a file, not a folder")
        location.write_bytes(probe, b"{}")
        location.remove(probe)
    except MarketoValueError:
        raise
    except Exception as exc:
        raise MarketoValueError(
            f"{argument} {hide_secrets(path)!r}{via} cannot be written: {type(exc).__name__}: {exc}. Nothing was "
            f"sent to Marketo; fix the location or its connection ({argument.replace('_path', '_conn_id')})"
        ) from None
