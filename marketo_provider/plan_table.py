"""The ``validate_only`` plan as a short table for the task log: what would be sent, what is kept
out by cause, what is predicted to fail or warn by reason, and the parts; the source named once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marketo_provider.api.redaction import hide_secrets
from marketo_provider.importing import plan_line

__all__ = [
    "EXAMPLES",
    "plan_lines",
]

EXAMPLES = 5  # places listed per reason


def _n(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else "unknown"


def _places(places: Any, source: str) -> str:
    """``["/data/a.csv, line 21", ...]`` -> ``"lines 21, 41"`` when every place is in the source
    itself; places in other files (a folder's) keep their file's name."""
    texts = [str(p) for p in (places or [])][:EXAMPLES]
    prefix = f"{source}, "
    if texts and all(t.startswith(prefix) for t in texts):
        rest = [t[len(prefix) :] for t in texts]
        unit = rest[0].split(" ", 1)[0]
        if all(r.startswith(unit + " ") for r in rest):
            return f"{unit}s " + ", ".join(r[len(unit) + 1 :] for r in rest)
        return "; ".join(rest)
    return "; ".join(texts)


def _kept_out(plan: Mapping[str, Any]) -> dict[str, int]:
    """Rows kept out by cause (the ledger's counts: ``rows.kept_out``), the causes with rows."""
    rows = plan.get("rows")
    value = rows.get("kept_out") if isinstance(rows, dict) else None
    if isinstance(value, dict):
        return {str(k).replace("_", " "): v for k, v in value.items() if isinstance(v, int) and v}
    return {}


def plan_lines(plan: Mapping[str, Any]) -> list[str]:
    """The lines of the table (no trailing newlines), from :meth:`BulkImport.plan`'s dict."""
    source = hide_secrets(str(plan.get("source") or "the source"))
    records, to_send = plan.get("records"), plan.get("records_to_send")
    checks = plan.get("row_checks") or {}
    rows: list[tuple[str, str, str]] = [("records in the source", _n(records), "")]
    found = plan.get("rows")
    counts: dict[str, Any] = found if isinstance(found, dict) else {}
    kept = counts.get("rows_kept_out")
    if kept is None and isinstance(records, int) and isinstance(to_send, int):
        kept = records - to_send
    rows.append(("kept out", _n(kept), ""))
    for cause, count in _kept_out(plan).items():
        rows.append((f"  {cause}", _n(count), ""))
    size = f"{plan['bytes']:,} bytes" if isinstance(plan.get("bytes"), int) else ""
    rows.append(("to send", _n(to_send), f"in {_n(plan.get('parts'))} parts" + (f", {size}" if size else "")))
    for kind, label in (("failures", "predicted to fail"), ("warnings", "predicted to warn")):
        reasons = checks.get(kind) or {}
        total = checks.get("rows_predicted_to_fail" if kind == "failures" else "rows_predicted_warned")
        rows.append(
            (
                label,
                _n(total if isinstance(total, int) else sum(r.get("rows", 0) for r in reasons.values())),
                "",
            )
        )
        for reason, about in reasons.items():
            expected = f" (expected {about['expected']})" if about.get("expected") else ""
            rows.append((f"  {reason}{expected}", _n(about.get("rows")), _places(about.get("first"), source)))
    repeated = checks.get("rows_repeating_a_key")
    if isinstance(repeated, int) and repeated:
        rows.append(("rows repeating a key", _n(repeated), f"{_n(checks.get('repeated_keys'))} keys"))
    changes = plan.get("changes")
    if isinstance(changes, dict):
        for key, label in (
            ("rows_new", "new"),
            ("rows_changed", "changed"),
            ("rows_sent_again", "sent again after failing last time"),
            ("rows_unchanged", "unchanged"),
        ):
            if key in changes:
                rows.append((f"changed_rows_only: {label}", _n(changes[key]), ""))
    width = max(len(r[0]) for r in rows)
    number = max(len(r[1]) for r in rows)
    lines = [
        f"validate_only: nothing imported. {source} into {plan.get('target') or plan.get('object_type')}:"
    ]
    lines += [f"  {a.ljust(width)}  {b.rjust(number)}  {c}".rstrip() for a, b, c in rows]
    lines.append(f"  {plan_line({**plan, 'source': None})}")  # the counts that add up, what will fail
    origins = plan.get("part_origins") or []
    if origins:
        lines.append("  parts:")
        lines += [f"    {i:>4}  {hide_secrets(str(o))}" for i, o in enumerate(origins)]
    return lines
