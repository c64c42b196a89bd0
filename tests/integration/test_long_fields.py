"""csv's field limit: one limit, at least a part's size, for every reader of a source and of result
files; a field beyond it is a clear error naming the file and line."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from marketo_provider.api import MarketoAnswerError, ObjectType
from marketo_provider.api.limits import MAX_IMPORT_FILE_BYTES
from marketo_provider.bounds import CSV_FIELD_LIMIT
from marketo_provider.results.merging import merge_result_files
from marketo_provider.sources import Source, SourceError, preflight
from marketo_provider.sources.model import resolve_source
from marketo_provider.testing import MarketoSandbox
from tests.conftest import fast_hook


class OneFile:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def download_result_file(self, object_type: Any, batch_id: int, kind: str, dest: Any, **_: Any) -> int:
        dest.write(self.data)
        return len(self.data)


def test_the_limit_is_at_least_a_part() -> None:
    assert CSV_FIELD_LIMIT >= MAX_IMPORT_FILE_BYTES
    assert csv.field_size_limit() >= CSV_FIELD_LIMIT  # raised once the sources are imported


@pytest.mark.parametrize("field", ["x" * 200_000, '""' * 4_000_000])
def test_a_long_quoted_field_passes_the_row_checks(
    marketo_env: MarketoSandbox, tmp_path: Path, field: str
) -> None:
    source = tmp_path / "notes.csv"
    source.write_text(f'email,firstName\nu@example.com,"{field}"\nv@example.com,V\n')
    checked = preflight(
        resolve_source(Source.of(str(source))), object_type="leads", describe=fast_hook().describe
    )
    assert checked.records == 2 and checked.checks is not None


def test_a_field_past_the_part_size_is_named_by_file_and_line(
    marketo_env: MarketoSandbox, tmp_path: Path
) -> None:
    source = tmp_path / "notes.csv"
    source.write_text('email,firstName\nv@example.com,V\nu@example.com,"' + "x" * 300_000 + '"\n')
    with pytest.raises(
        SourceError, match=r"notes.csv: the record starting on line 3 runs past 250,000 bytes"
    ):
        preflight(
            resolve_source(Source.of(str(source), max_part_bytes=250_000)),
            object_type="leads",
            describe=fast_hook().describe,
        )


@pytest.mark.parametrize("traced", [False, True])
def test_a_result_file_field_past_the_limit_is_a_clear_error(traced: bool) -> None:
    data = (
        b"email,Import Failure Reason\na@example.com,x\nb@example.com,"
        + b"r" * (CSV_FIELD_LIMIT + 10)
        + b"\n"
    )
    with pytest.raises(MarketoAnswerError) as raised:
        merge_result_files(
            OneFile(data),
            ObjectType.LEADS,
            [7],
            "failures",
            finder=(lambda batch: lambda values: None) if traced else None,
        )
    assert f"failures file of batch 7 has a field longer than {CSV_FIELD_LIMIT:,} bytes on line 3" in str(
        raised.value
    )
