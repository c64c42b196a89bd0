"""docs/operators.rst lists every argument of the operator and the sensor, with the defaults the
signatures have."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path
from typing import Any

import pytest

from marketo_provider.operators.bulk_import import MarketoBulkImportOperator
from marketo_provider.sensors.bulk_import import MarketoBulkImportSensor

DOC = (Path(__file__).resolve().parents[2] / "docs" / "operators.rst").read_text()


def section(title: str) -> str:
    start = DOC.index(f"\n{title}\n{'-' * len(title)}\n")
    end = DOC.find("\n----", start + len(title) + 2 * len(title) + 2)
    return DOC[start : DOC.rfind("\n", 0, end) if end != -1 else len(DOC)]


def documented(title: str) -> dict[str, str]:
    """argument -> its default as the docs give it, from the section's table (a simple table for
    the operator, a list-table for the sensor)."""
    text = section(title)
    found: dict[str, str] = {}
    simple = re.findall(r"^``(\w+)``\s{2,}(.+?)\s{2,}", text, flags=re.M)
    if simple:
        return dict(simple)
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if m := re.match(r"^   \* - ``(\w+)``\s*$", line):
            found[m.group(1)] = re.sub(r"^\s*- ", "", lines[i + 1])
    return found


def arguments(cls: type) -> dict[str, Any]:
    return {
        name: p.default
        for name, p in inspect.signature(cls.__init__).parameters.items()  # type: ignore[misc]
        if name not in ("self", "kwargs")
    }


CASES = [
    ("MarketoBulkImportOperator", MarketoBulkImportOperator),
    ("MarketoBulkImportSensor", MarketoBulkImportSensor),
]


@pytest.mark.parametrize(("title", "cls"), CASES)
def test_every_argument_is_documented_and_nothing_else(title: str, cls: type) -> None:
    assert list(documented(title)) == list(arguments(cls))  # in the signature's order too


@pytest.mark.parametrize(("title", "cls"), CASES)
def test_the_documented_defaults_are_the_signatures(title: str, cls: type) -> None:
    signature = arguments(cls)
    checked = 0
    for name, default in documented(title).items():
        literal = re.fullmatch(r"``([^`]+)``", default.strip())
        if default.strip() == "(required)":
            assert signature[name] is inspect.Parameter.empty, name
        elif literal and name != "deferrable":  # deferrable's default is a setting, said so
            value = ast.literal_eval(literal.group(1))
            assert signature[name] == value, (
                f"{name}: the docs say {value!r}, the signature {signature[name]!r}"
            )
            checked += 1
        elif default.strip().startswith("none"):
            assert signature[name] is None, name
            checked += 1
    assert checked >= len(signature) // 2  # most defaults are literals the docs give
