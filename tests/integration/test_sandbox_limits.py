"""The sandbox's own limits: a schema file is read within a size and a nesting depth, and bad
paging on ``/sandbox-api/`` is a 400 whatever its length."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from marketo_provider.testing import MarketoSandbox
from marketo_provider.testing.schema import MAX_SCHEMA_BYTES, MAX_SCHEMA_DEPTH, SchemaError, load_schema


def test_a_schema_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    huge = tmp_path / "huge.json"
    with huge.open("wb") as out:
        out.truncate(MAX_SCHEMA_BYTES + 1)  # sparse: no disk written
    with pytest.raises(
        SchemaError, match=rf"schema file .*huge.json is larger than {MAX_SCHEMA_BYTES:,} bytes"
    ):
        load_schema(huge)


def test_an_endless_schema_file_is_refused() -> None:
    with pytest.raises(SchemaError, match="schema file /dev/zero is larger than"):
        load_schema("/dev/zero")


@pytest.mark.parametrize("depth", [200_000, MAX_SCHEMA_DEPTH + 1])
def test_a_schema_nested_too_deep_is_refused(tmp_path: Path, depth: int) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text('{"leads": ' + "[" * depth + "]" * depth + "}")
    with pytest.raises(
        SchemaError, match=rf"deep.json nests arrays and objects more than {MAX_SCHEMA_DEPTH} deep"
    ):
        load_schema(deep)


def test_a_schema_within_the_limits_is_read(tmp_path: Path) -> None:
    fine = tmp_path / "fine.json"
    fine.write_text(
        json.dumps(
            {
                "leads": [
                    {
                        "id": 1,
                        "displayName": "Email",
                        "dataType": "email",
                        "rest": {"name": "email", "readOnly": False},
                    }
                ]
            }
        )
    )
    assert load_schema(fine) is not None


@pytest.mark.parametrize("value", ["9" * 5_000, "1" * 19])
def test_paging_with_a_huge_offset_is_a_400(sandbox: MarketoSandbox, value: str) -> None:
    answer = requests.get(f"{sandbox.url}/sandbox-api/rows/leads", params={"offset": value}, timeout=10)
    assert answer.status_code == 400
    assert "offset must be a whole number 0 or more, of at most 18 digits" in answer.text
    assert len(answer.text) < 1_000
