"""What ``changed_rows_only`` needs of one import: the state of its target (locked while the
import runs, loaded to compare with, written once Marketo confirmed), the files downloaded for it,
and the keys of the rows Marketo failed (not confirmed)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import Any

from marketo_provider.api import COMPLETE, ImportSpec
from marketo_provider.importing.batches import ImportAbortedError, ImportOptions
from marketo_provider.importing.state import ImportState
from marketo_provider.incremental import ChangeState, Loaded, build_state, scope_of
from marketo_provider.sources import AnySource, Preflight, source_parts
from marketo_provider.sources.body import open_body
from marketo_provider.sources.checks import RowRules, fingerprints
from marketo_provider.sources.preflight import KeptOut


class ChangedRows:
    """The changed-rows side of a :class:`~marketo_provider.importing.run.BulkImport`."""

    def __init__(
        self, spec: ImportSpec, source: AnySource, options: ImportOptions, *, owner: str, log: Any
    ) -> None:
        self.spec = spec
        self.source = source
        self.options = options
        self.owner = owner
        self.log = log
        self.failed_keys: set[int] = set()  # stable hashes of the keys of rows Marketo failed
        self._work: tempfile.TemporaryDirectory[str] | None = None
        self._previous: dict[int, str] = {}  # generation -> the downloaded state file
        self._change_store: ChangeState | None = None

    def store(self) -> ChangeState | None:
        """The state of this import's target and columns (None unless ``changed_rows_only``)."""
        if not self.options.changed_rows_only or self.options.state is None:
            return None
        if self._change_store is None:
            with open_body(self.source) as (header, _):
                columns = header.names
            self._change_store = ChangeState(self.options.state, scope_of(self.spec, columns))
        return self._change_store

    def workdir(self) -> str:
        if self._work is None:
            self._work = tempfile.TemporaryDirectory(prefix="marketo-state-")
        return self._work.name

    def load(self, state: ImportState | None) -> Loaded | None:
        store = self.store()
        if store is None:
            return None
        loaded = store.load(self.workdir(), full_refresh=self.options.full_refresh)
        if loaded.path is not None:
            self._previous[loaded.generation] = loaded.path
        return loaded

    def previous(self, state: ImportState) -> str | None:
        """The state file the import compares with (downloaded again in a new process)."""
        change = state.change
        if not change or change.get("full"):
            return None
        generation = int(change["generation"])
        if generation not in self._previous:
            loaded = self.load(state)
            if loaded is None or loaded.path is None or loaded.generation != generation:
                where = self.options.state.path if self.options.state else "?"
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
            "changed_rows_only (state generation %d): %s rows new, %s changed, %s unchanged (not sent); "
            "%s keys confirmed before are no longer in the source",
            loaded.generation,
            *(
                f"{counts.get(k, 0):,}"
                for k in ("rows_new", "rows_changed", "rows_unchanged", "keys_vanished")
            ),
        )

    def summary(self, state: ImportState) -> dict[str, Any] | None:
        if not self.options.changed_rows_only or state.change is None:
            return None
        store = self.store()
        return {
            **state.change.get("counts", {}),
            "full": state.change.get("full"),
            "why_full": state.change.get("why_full") or None,
            "state_path": store.uri if store is not None else None,
            "state_generation": state.change.get("generation"),
        }

    def write(self, state: ImportState, kept_out: KeptOut | None) -> dict[str, Any]:
        """The next state: the previous one with every keyed row of the parts Marketo completed,
        except rows it failed; written only if the pointer has not moved on."""
        store = self.store()
        assert store is not None and state.change is not None and state.row_rules is not None
        rules = RowRules.from_json(state.row_rules)
        completed = {
            p.part
            for p in state.submitted
            if p.batch_id in state.finished and state.finished[p.batch_id].get("status") == COMPLETE
        }
        failed = self.failed_keys

        def confirmed() -> Iterator[tuple[int, int]]:
            with source_parts(self.source, expected_header=state.header or None, kept_out=kept_out) as parts:
                for part in parts:
                    if part.index in completed:
                        for key, fingerprint in fingerprints(part, rules):
                            if key not in failed:
                                yield key, fingerprint

        out = os.path.join(self.workdir(), "next.sqlite")
        if os.path.exists(out):
            os.remove(out)
        keys = build_state(self.previous(state), out, confirmed())
        pointer = store.write(out, int(state.change["generation"]), keys, self.owner)
        self.log.info(
            "Kept what Marketo confirmed as state generation %d (%s keys, %s bytes) at %s",
            pointer["generation"],
            f"{keys:,}",
            f"{pointer['bytes']:,}",
            store.uri,
        )
        return pointer

    def release(self) -> None:
        """Let go of the state's lock (if this import holds it) and the files it downloaded."""
        store = self.store() if self.options.changed_rows_only else None
        if store is not None:
            store.unlock(self.owner)
        if self._work is not None:
            self._work.cleanup()
            self._work = None
            self._previous.clear()
