"""What imports leave in the instance: leads, static list members, program members, and every
imported row by object (for tests that check each source row arrived exactly once)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

from marketo_provider.testing.catalog import LEAD_FIELDS
from marketo_provider.testing.spec import ImportTarget, ObjectType


@dataclass
class ImportedRow:
    batch_id: int
    row: dict[str, str]
    program_id: int | None = None  # program members: the program the row was imported into


class LeadStore:
    """Leads by id, found by any lookup field; static lists and program memberships.

    Not thread-safe on its own: :class:`MarketoBackend` serialises calls.
    """

    def __init__(self, lead_fields: Iterable[str] | None = None) -> None:
        # the lead fields a row's values are kept for (program member rows carry other fields too)
        self.lead_fields = (
            frozenset(f.name for f in LEAD_FIELDS) if lead_fields is None else frozenset(lead_fields)
        )
        self.leads: dict[int, dict[str, str]] = {}
        self.static_lists: dict[int, set[int]] = {}
        self.program_members: dict[int, dict[int, str]] = {}  # program id -> lead id -> status
        self.imported: dict[str, list[ImportedRow]] = {}  # ImportTarget.key -> rows
        self._index: dict[str, dict[str, int]] = {}  # lookup field -> value -> lead id
        self._lead_ids = itertools.count(1)

    def exists(self, lead_id: int) -> bool:
        return lead_id in self.leads

    def rows(self, key: str) -> list[dict[str, str]]:
        return [r.row for r in self.imported.get(key, [])]

    def page(
        self, key: str, offset: int, limit: int, program_id: int | None = None, batch_id: int | None = None
    ) -> tuple[int, list[ImportedRow]]:
        """``(total, rows)``: the imported rows of ``key`` (of one program, of one batch, when
        given) from ``offset``, at most ``limit`` of them, and how many there are in all."""
        rows = self.imported.get(key, [])
        if program_id is not None or batch_id is not None:
            rows = [r for r in rows if program_id in (None, r.program_id) and batch_id in (None, r.batch_id)]
        return len(rows), rows[offset : offset + limit]

    def store(
        self,
        target: ImportTarget,
        batch_id: int,
        rows: list[dict[str, str]],
        lookup_field: str | None,
        params: dict[str, str],
    ) -> None:
        """Keep a finished job's imported rows; leads and program members also upsert the lead
        each row names by ``lookup_field``."""
        self.imported.setdefault(target.key, []).extend(
            ImportedRow(batch_id, row, target.program_id) for row in rows
        )
        if lookup_field is None:
            return
        for row in rows:
            lead_id = self.upsert(lookup_field, row)
            if target.object_type is ObjectType.LEADS and "listId" in params:
                self.static_lists.setdefault(int(params["listId"]), set()).add(lead_id)
            if target.object_type is ObjectType.PROGRAM_MEMBERS and target.program_id is not None:
                self.program_members.setdefault(target.program_id, {})[lead_id] = params[
                    "programMemberStatus"
                ]

    def upsert(self, lookup_field: str, row: dict[str, str]) -> int:
        """Create or update the lead ``row`` names by ``lookup_field``; ``id`` updates only."""
        values = {k: v for k, v in row.items() if k in self.lead_fields and k != "id"}
        if lookup_field == "id":
            lead_id = int(row["id"])
        else:
            index = self._index.get(lookup_field)
            if index is None:  # first lookup on this field: index the leads once
                index = {lead[lookup_field]: i for i, lead in self.leads.items() if lead.get(lookup_field)}
                self._index[lookup_field] = index
            lead_id = index.get(row[lookup_field], 0)
            if not lead_id:
                lead_id = next(self._lead_ids)
                self.leads[lead_id] = {}
        lead = self.leads[lead_id]
        for field_name, index in self._index.items():
            old, new = lead.get(field_name), values.get(field_name)
            if new is not None and new != old:
                if old:
                    index.pop(old, None)
                if new:
                    index[new] = lead_id
        lead.update(values)
        return lead_id


__all__ = ["ImportedRow", "LeadStore"]
