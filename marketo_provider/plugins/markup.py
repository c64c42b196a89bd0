"""What every "Marketo import" page is built of: values escaped and cleaned (no URI credentials, no
held secret: :func:`~marketo_provider.plugins.published.safe`), numbers with their separators,
tables, count rows, times of day, and the query that names a task instance's views."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any
from urllib.parse import urlencode

from marketo_provider.plugins.published import TaskImport, safe


def escaped(value: Any) -> str:
    """A value as HTML text, without credentials or secrets; ``None`` as nothing."""
    return escape(safe(value)) if value is not None else ""


def number(value: Any) -> str:
    """A whole number with thousands separators; any other value as :func:`escaped` text."""
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else escaped(value)


def task_query(task: TaskImport, **extra: str) -> str:
    """The query string that names a task instance (and ``extra``) to the view's routes."""
    return urlencode(
        {
            "dag_id": task.dag_id,
            "run_id": task.run_id,
            "task_id": task.task_id,
            "map_index": str(task.map_index),
            **extra,
        }
    )


def html_table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, element_id: str = "") -> str:
    """A table of ready-made cells under escaped headers."""
    id_attr = f' id="{element_id}"' if element_id else ""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(row) + "</tr>" for row in rows)
    return f"<table{id_attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def count_row(label: str, key: str, value: Any, note: str = "") -> list[str]:
    """A label, a count (``data-count`` names it for tests and scripts) and a note."""
    return [
        f"<th>{escape(label)}</th>",
        f'<td class="n" data-count="{escape(key)}">{number(value) if value is not None else "not published"}</td>',
        f'<td class="muted">{escape(note)}</td>',
    ]


def clock(value: Any) -> str:
    """``03:04:05.120`` (UTC) of an ISO 8601 time; the text as it is when it is not one."""
    from datetime import datetime, timezone

    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        return escaped(value)
    return moment.strftime("%H:%M:%S.%f")[:12] if moment.microsecond else moment.strftime("%H:%M:%S")
