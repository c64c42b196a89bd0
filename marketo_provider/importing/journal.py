"""The import's journal where Airflow has no task state store (3.1, 3.2): the import state JSON,
kept beside what outlives the task (``state_path``, or else the run's ``results_path``), so a
retried task carries on where it stopped instead of sending every part again."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from marketo_provider.storage import StateLocation


def _safe(text: Any) -> str:
    return re.sub(r"[^A-Za-z0-9_.=+-]+", "_", str(text)).strip("._") or "_"


@dataclass(frozen=True)
class Journal:
    """One task's journal: a JSON file in a folder (local or object storage)."""

    location: StateLocation
    name: str

    @classmethod
    def of(cls, context: Mapping[str, Any], options: Any) -> Journal | None:
        """The journal of the task running in ``context``, or None where the task state store keeps
        the state (Airflow 3.3+) or nothing outlives the task (no ``state_path``, no ``results_path``)."""
        if context.get("task_state_store") is not None:
            return None
        ti = context.get("ti")
        if ti is None or not all(hasattr(ti, name) for name in ("dag_id", "task_id", "run_id")):
            return None
        mapped = getattr(ti, "map_index", -1)
        suffix = f".{mapped}" if mapped not in (None, -1) else ""
        task = f"{_safe(ti.task_id)}{suffix}"
        if options.state is not None:
            folder = f"{options.state.path.rstrip('/')}/journal/{_safe(ti.dag_id)}/{task}"
            return cls(StateLocation(folder, options.state.conn_id), f"{_safe(ti.run_id)}.json")
        if options.results.path:
            folder = f"{options.results.path.rstrip('/')}/.marketo-journal"
            return cls(StateLocation(folder, options.results.conn_id), f"{task}.json")
        return None

    @property
    def uri(self) -> str:
        return f"{self.location.path.rstrip('/')}/{self.name}"

    def save(self, data: Mapping[str, Any]) -> None:
        self.location.write_json(self.name, data)

    def load(self) -> dict[str, Any] | None:
        return self.location.read_json(self.name)

    def remove(self) -> None:
        """Remove the journal, and its folder when that is left empty (a local results folder
        holds only the results then)."""
        self.location.remove(self.name)
        folder = self.location.folder()
        if folder.protocol in ("", "file"):
            with contextlib.suppress(OSError):  # other tasks' journals are still there
                folder.rmdir()
