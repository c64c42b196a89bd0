"""The one line a ``validate_only`` plan is logged with: what would be sent, what is kept out and
why, and what is predicted to fail, from the counts of the ledger pre-flight wrote."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marketo_provider.sources import counts_line

REASONS_SHOWN = 3


def plan_line(plan: Mapping[str, Any]) -> str:
    """What the import would do, in one line whose numbers add up."""
    source = plan.get("source")
    parts = plan.get("parts")
    head = f"{source}: " if source else ""
    rows = plan.get("rows")
    if rows:
        text = head + counts_line(rows)
    elif plan.get("records") is not None:
        text = head + f"{plan['records']:,} records, every one sent (the values were not checked)"
    else:
        text = head + "a query: its rows are read once, as they are imported"
    if parts is not None:
        text += f"; {parts:,} part{'' if parts == 1 else 's'} when every record is sent"
    checks = plan.get("row_checks") or {}
    failing = checks.get("rows_predicted_to_fail") or 0
    if failing:
        reasons = list((checks.get("failures") or {}).items())
        shown = "; ".join(f"{v.get('rows', 0):,} x {r!r}" for r, v in reasons[:REASONS_SHOWN])
        more = len(reasons) - REASONS_SHOWN
        certain = checks.get("rows_certain_to_fail") or 0
        text += f". {failing:,} rows are predicted to fail ({certain:,} certain to): {shown}" + (
            f" and {more} more reasons" if more > 0 else ""
        )
    else:
        text += ". No row is predicted to fail"
    return text
