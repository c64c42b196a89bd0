"""Where an import's ledger lives (:mod:`marketo_provider.sources.ledger`): a local SQLite file in
a folder of the import's own under the system's temporary folder (a retry or a resume on the same
machine finds it there), and, when the import keeps a journal or a state (``state_path``, else
``results_path``), a compressed copy beside it, so a task resumed or retried on another worker,
and the sensor that concludes an import, read the same decisions. Where neither is found the
ledger is written again with the same single pass over the source; the source's fingerprint,
kept in the import's state, refuses a source that changed in between."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from typing import Any

from marketo_provider.api import MarketoValueError
from marketo_provider.sources import Ledger
from marketo_provider.storage import StateLocation

LEDGERS_FOLDER = "marketo-provider-ledgers"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=+-]+", "_", text).strip("._")[:80] or "_"


_NAME = re.compile(r"[A-Za-z0-9_.=+-]{1,80}-[0-9a-f]{16}\.sqlite\.gz")


class LedgerPlace:
    """The ledger of one import (by its owner and the time it began).

    ``info`` comes back from the import's state, which may have been kept in a shared folder: only
    a name this module writes is taken, and the local file is always under the system's temporary
    folder (nothing else is ever opened or removed)."""

    def __init__(self, info: Mapping[str, Any]) -> None:
        name = str(info.get("name") or "")
        if not _NAME.fullmatch(name):
            raise MarketoValueError(
                f"the import's state names a ledger {name[:100]!r} this provider does not write; the state "
                "was changed by hand. Start a new run"
            )
        self.info = {
            **info,
            "local": os.path.join(tempfile.gettempdir(), LEDGERS_FOLDER, name[: -len(".gz")]),
        }

    @classmethod
    def new(cls, owner: str, started_at: float, options: Any) -> LedgerPlace:
        key = hashlib.sha256(f"{owner}\x1f{started_at!r}".encode()).hexdigest()[:16]
        name = f"{_safe(owner)}-{key}.sqlite"
        local = os.path.join(tempfile.gettempdir(), LEDGERS_FOLDER, name)
        stored = None
        if options.state is not None:
            stored = [f"{options.state.path.rstrip('/')}/ledgers", options.state.conn_id]
        elif options.results.path and (not _local(options.results.path) or not options.wait_for_completion):
            # A local results folder holds only the results (the ledger is on this machine already),
            # unless a sensor concludes the import (it may run on another machine sharing the folder).
            stored = [f"{options.results.path.rstrip('/')}/.marketo-ledger", options.results.conn_id]
        return cls({"local": local, "stored": stored, "name": f"{name}.gz"})

    @property
    def local(self) -> str:
        return str(self.info["local"])

    @property
    def stored(self) -> StateLocation | None:
        where = self.info.get("stored")
        return StateLocation(where[0], where[1]) if where else None

    @property
    def uri(self) -> str | None:
        stored = self.stored
        return f"{stored.path.rstrip('/')}/{self.info['name']}" if stored is not None else None

    def prepare(self) -> str:
        """The local path to write a new ledger to (its folder made, an old file removed)."""
        os.makedirs(os.path.dirname(self.local), exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.local)
        return self.local

    def keep(self) -> None:
        """Store a copy where other workers (and the sensor) find it, when the import has a place."""
        stored = self.stored
        if stored is not None:
            stored.upload(self.local, str(self.info["name"]))

    def open(self, rebuild: Callable[[str], Ledger | None], log: Any) -> Ledger | None:
        """The ledger: the local file, else the stored copy, else written again by ``rebuild``
        (given the local path) from the source."""
        if os.path.exists(self.local):
            try:
                return Ledger(self.local)
            except Exception as exc:  # a file cut short by a process that died: write it again
                log.warning("The ledger at %s cannot be read (%s); it is written again", self.local, exc)
        stored = self.stored
        if stored is not None:
            os.makedirs(os.path.dirname(self.local), exist_ok=True)
            size = self.info.get("bytes")  # the ledger's size when it was stored (earlier releases: none)
            most = size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None
            try:
                stored.download(str(self.info["name"]), self.local, most=most)
                return Ledger(self.local)
            except FileNotFoundError:
                pass
            except Exception as exc:
                log.warning("The stored ledger %s cannot be read (%s); it is written again", self.uri, exc)
        log.info("The import's ledger is not on this machine: the source is read once more to write it again")
        return rebuild(self.prepare())

    def remove(self) -> None:
        """Remove the ledger and its stored copy once the import is concluded."""
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.local)
        stored = self.stored
        if stored is not None:
            with contextlib.suppress(Exception):
                stored.remove(str(self.info["name"]))
                folder = stored.folder()
                if folder.protocol in ("", "file"):
                    folder.rmdir()  # left empty: a local results folder holds only the results


def _local(path: str) -> bool:
    return "://" not in path or path.startswith("file://")


def check_fingerprint(expected: Mapping[str, Any] | None, found: Mapping[str, Any] | None, name: str) -> None:
    """Refuse a source that changed since the import began (its ledger would not line up)."""
    if expected is not None and found is not None and dict(expected) != dict(found):
        raise MarketoValueError(
            f"import source {name} changed since the import began (its files, sizes or first and last bytes "
            "differ): the parts already sent were cut from the earlier source, so the rest cannot be cut "
            "to line up. Restore the source, or start a new run"
        )
