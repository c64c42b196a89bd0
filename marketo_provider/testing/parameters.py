"""Checking a call's parameters against the ones Adobe documents for it.

Strict by choice where the docs are silent: a parameter the spec does not list for the call, one
given twice, or a value not of the spec's type is refused with 1003 naming it, so a client that
sends something Marketo does not document learns it here rather than in production.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from marketo_provider.testing.errors import SandboxError
from marketo_provider.testing.spec import INT32_MAX, INT32_MIN, QueryParameter


def path_pattern(template: str) -> re.Pattern[str]:
    """The regex of a path template: each ``{name}`` one path segment, captured as ``name``."""
    return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$")


def check_query(pairs: Iterable[tuple[str, str]], documented: tuple[QueryParameter, ...]) -> dict[str, str]:
    """The query parameters as a dict, once each is known, given once, present when required and
    of the documented type; otherwise :class:`SandboxError` 1003 naming what is wrong."""
    pairs = list(pairs)
    by_name = {p.name: p for p in documented}
    unknown = sorted({name for name, _ in pairs if name not in by_name})
    if unknown:
        takes = ", ".join(by_name) if by_name else "no query parameters"
        raise SandboxError(
            "1003", f"Unknown query parameter(s): {', '.join(unknown)}; this call takes {takes}"
        )
    repeated = sorted(name for name, n in Counter(name for name, _ in pairs).items() if n > 1)
    if repeated:
        raise SandboxError("1003", f"Query parameter(s) given more than once: {', '.join(repeated)}")
    values = dict(pairs)
    missing = [p.name for p in documented if p.required and not values.get(p.name)]
    if missing:
        raise SandboxError("1003", f"Missing required query parameter(s): {', '.join(missing)}")
    for name, value in values.items():
        if by_name[name].type == "integer" and not _is_int32(value):
            raise SandboxError("1003", f"{name} must be an integer, not '{value}'")
    return values


def _is_int32(value: str) -> bool:
    # The spec's type is int32; a list id that is negative or names no list is a question of
    # meaning the docs do not answer, so only the type is checked.
    text = value[1:] if value[:1] in "+-" else value
    return text.isascii() and text.isdigit() and INT32_MIN <= int(value) <= INT32_MAX


def path_int(name: str, value: str) -> int:
    """A path parameter the spec types as an integer (batchId) or that names a Marketo id
    (programId, typed string in the spec but an id all the same); 1003 naming it otherwise."""
    if not (value.isascii() and value.isdigit()) or int(value) > INT32_MAX:
        raise SandboxError("1003", f"{name} must be a whole number, not '{value}'")
    return int(value)


__all__ = ["check_query", "path_int"]
