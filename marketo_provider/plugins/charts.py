"""The pages' charts, as inline SVG (no script, nothing fetched): bars by reason, and the parts of
an import on a time axis."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from marketo_provider.plugins.markup import escaped


def bar_chart(title: str, counts: Mapping[str, int], *, element_id: str, colour: str) -> str:
    """Horizontal bars, one per reason, as inline SVG (largest first)."""
    items = sorted(((str(k), int(v)) for k, v in counts.items()), key=lambda kv: (-kv[1], kv[0]))
    if not items:
        return ""
    top = max(v for _, v in items) or 1
    label_w, bar_w, row_h = 330, 300, 22
    height = row_h * len(items) + 8
    rows = []
    for i, (reason, count) in enumerate(items):
        y = 4 + i * row_h
        width = max(2, round(bar_w * count / top))
        label = reason if len(reason) <= 52 else reason[:51] + "…"
        rows.append(
            f'<g class="bar" data-reason="{escaped(reason)}" data-rows="{count}">'
            f"<title>{escaped(reason)}: {count:,} rows</title>"
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" font-size="12" fill="currentColor">{escaped(label)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{width}" height="{row_h - 6}" fill="{colour}"></rect>'
            f'<text x="{label_w + width + 4}" y="{y + 15}" font-size="12" fill="currentColor">{count:,}</text></g>'
        )
    return (
        f'<svg id="{element_id}" role="img" aria-label="{escaped(title)}" xmlns="http://www.w3.org/2000/svg" '
        f'width="{label_w + bar_w + 70}" height="{height}" viewBox="0 0 {label_w + bar_w + 70} {height}">'
        f"{''.join(rows)}</svg>"
    )


def _seconds(value: Any) -> float | None:
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp() if value else None
    except ValueError:
        return None


def timeline(batches: Sequence[Mapping[str, Any]]) -> str:
    """The parts on a time axis, as inline SVG: from submitted (Marketo's answer to the upload) to
    done, grey while queued and coloured from the poll that first saw it importing. The times are
    the import's own (its polls see a change, they do not witness it), so a phase shorter than the
    poll interval may not show; the gaps between parts are the waits for a queue slot."""
    rows = []
    for b in batches:
        submitted, importing, done = (_seconds(b.get(f"{k}_at")) for k in ("submitted", "importing", "done"))
        if submitted is not None and done is not None:
            rows.append((b, submitted, importing, done))
    if not rows:
        return ""
    start = min(r[1] for r in rows)
    end = max(r[3] for r in rows)
    span = max(end - start, 1.0)
    label_w, width, row_h = 120, 520, 20
    height = row_h * len(rows) + 30

    def x(t: float) -> float:
        return round(label_w + width * (t - start) / span, 1)

    bars = []
    for i, (b, submitted, importing, done) in enumerate(rows):
        y = 4 + i * row_h
        begin = importing if importing is not None else done
        bars.append(
            f'<g class="part" data-part="{escaped(b.get("part"))}" data-batch="{escaped(b.get("batch_id"))}">'
            f"<title>part {escaped(b.get('part'))}, batch {escaped(b.get('batch_id'))}: submitted "
            f"{escaped(b.get('submitted_at'))}, importing {escaped(b.get('importing_at') or 'not seen')}, done "
            f"{escaped(b.get('done_at'))}</title>"
            f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end" font-size="12" fill="currentColor">'
            f"part {escaped(b.get('part'))}</text>"
            f'<rect class="queued" x="{x(submitted):g}" y="{y + 3}" width="{max(x(begin) - x(submitted), 1):g}" '
            f'height="{row_h - 6}" fill="#a0aec0"></rect>'
            f'<rect class="importing" x="{x(begin):g}" y="{y + 3}" width="{max(x(done) - x(begin), 1):g}" '
            f'height="{row_h - 6}" fill="#3182ce"></rect></g>'
        )
    axis_y = 4 + len(rows) * row_h + 14
    bars.append(
        f'<text x="{label_w}" y="{axis_y}" font-size="11" fill="currentColor">0 s</text>'
        f'<text x="{label_w + width}" y="{axis_y}" text-anchor="end" font-size="11" fill="currentColor">'
        f"{span:,.0f} s</text>"
    )
    return (
        f'<svg id="timeline" role="img" aria-label="The parts on a timeline" xmlns="http://www.w3.org/2000/svg" '
        f'width="{label_w + width + 20}" height="{height}" viewBox="0 0 {label_w + width + 20} {height}">'
        f"{''.join(bars)}</svg>"
        '<p class="muted">Grey: in Marketo\'s queue, or not yet seen importing; blue: importing, from the '
        "poll that first saw it. The times are the import's own polls, so a phase shorter than the poll "
        "interval may not show.</p>"
    )
