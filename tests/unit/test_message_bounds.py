"""Messages that list columns name the first few and count the rest, whatever the header holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketo_provider.api.targets import header_name_problems
from marketo_provider.sources import Source, SourceError, preflight
from marketo_provider.sources.header import Header, map_header, unknown_columns_problem
from marketo_provider.sources.model import resolve_source

MANY = 100_000


def test_100000_unknown_columns_give_a_short_message() -> None:
    names = tuple(f"column_{i}" for i in range(MANY))
    header = Header(names=("email", *names), line=b"", source_offset=0, delimiter=",")
    problem = unknown_columns_problem(header, ["email", "firstName", "lastName"])
    assert problem is not None and len(problem) < 2_000, len(problem or "")
    assert problem.startswith("has columns Marketo does not know: 'column_0'")
    assert f"and {MANY - 5:,} more ({MANY:,} of {MANY + 1:,} columns)" in problem


def test_a_column_mapping_naming_many_missing_columns_gives_a_short_message() -> None:
    names = tuple(f"c{i}" for i in range(MANY))
    mapping = {f"missing{i}": f"x{i}" for i in range(1_000)}
    with pytest.raises(SourceError) as raised:
        map_header(names, b"", 0, Source.of("x.csv").file_format, mapping, "x.csv")
    message = str(raised.value)
    assert len(message) < 2_000 and "and 995 more" in message
    assert f"its {MANY:,} columns are 'c0', 'c1', 'c2', 'c3', 'c4' and {MANY - 5:,} more" in message


def test_many_empty_padded_or_repeated_names_give_a_short_message() -> None:
    names = ["", " a", "b"] * 30_000
    problems = header_name_problems(names, Source.of("x.csv").file_format)
    assert problems and all(len(p) < 1_000 for p in problems), [len(p) for p in problems]


def test_files_with_other_headers_are_named_by_their_first_difference(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    first = ["email", *(f"c{i}" for i in range(50_000))]
    other = [*first[:40_000], "changed", *first[40_001:]]
    (folder / "a.csv").write_text(",".join(first) + "\n" + "u@example.com" + "," * 50_000 + "\n")
    (folder / "b.csv").write_text(",".join(other) + "\n" + "v@example.com" + "," * 50_000 + "\n")
    with pytest.raises(SourceError) as raised:
        preflight(
            resolve_source(Source.of(f"{folder}/")), object_type="leads", describe=None, check_columns=False
        )
    message = str(raised.value)
    assert len(message) < 2_000, len(message)
    assert "column 40001 is 'changed' where the first file has 'c39999'" in message


def test_a_header_of_a_million_columns_is_not_called_missing(tmp_path: Path) -> None:
    source = tmp_path / "wide.csv"
    source.write_text(",".join(f"c{i}" for i in range(1_000_000)) + "\n")
    with pytest.raises(SourceError) as raised:
        preflight(resolve_source(Source.of(str(source))), object_type="leads", describe=None)
    message = str(raised.value)
    assert "is the header missing" not in message and len(message) < 1_000
    assert "or its header names more columns than any Marketo object has fields" in message
