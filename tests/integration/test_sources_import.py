"""Sources as users have them, imported into the sandbox part by part with the hook: every row
arrives exactly once."""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import pytest

from marketo_provider.sources import Source, SourceError, preflight, source_parts
from marketo_provider.testing import MarketoSandbox
from tests.conftest import fast_hook

COLUMNS = ("email", "firstName", "lastName", "company")


def rows(first: int, count: int) -> list[tuple[str, str, str, str]]:
    return [
        (f"lead{i}@example.com", f"First{i}", f"Last, {i}" if i % 7 == 0 else f"Last{i}", f"Company {i % 13}")
        for i in range(first, first + count)
    ]


def csv_bytes(records: list[tuple[str, ...]], header: tuple[str, ...] | None = COLUMNS) -> bytes:
    lines = [] if header is None else [",".join(header)]
    lines += [",".join(f'"{v}"' if "," in v else v for v in r) for r in records]
    return ("\n".join(lines) + "\n").encode()


def submit(sandbox: MarketoSandbox, source: Source, resume_at: tuple[int, int] | None = None) -> list[bytes]:
    """Submit every part (from ``resume_at`` on) as its own batch; returns the parts' bytes."""
    hook = fast_hook()
    sent = []
    with source_parts(source, resume_at=resume_at) as parts:
        for part in parts:
            hook.submit_import("leads", part.reader(), filename=f"part-{part.index}.csv")
            sent.append(bytes(part.data))
            sandbox.run_until_idle()  # keep Marketo's queue from filling up
    return sent


def imported_exactly_once(sandbox: MarketoSandbox, expected: list[tuple[str, str, str, str]]) -> None:
    got = Counter(tuple(r[c] for c in COLUMNS) for r in sandbox.imported_rows("leads"))
    assert got == Counter(expected)
    assert set(got.values()) == {1}


def test_gzip_source_in_many_parts(marketo_env: MarketoSandbox, tmp_path: Path) -> None:
    expected = rows(0, 3000)
    (tmp_path / "leads.csv.gz").write_bytes(gzip.compress(csv_bytes(expected)))
    source = Source.of(tmp_path / "leads.csv.gz", max_part_bytes=40_000)
    checked = preflight(source, object_type="leads", describe=fast_hook().describe)
    assert checked.parts is not None and checked.parts >= 3 and checked.records == 3000
    parts = submit(marketo_env, source)
    assert len(parts) == checked.parts
    imported_exactly_once(marketo_env, expected)


def test_prefix_of_headerless_gzip_files(marketo_env: MarketoSandbox, tmp_path: Path) -> None:
    unload = tmp_path / "unload"
    unload.mkdir()
    expected = []
    for k in range(4):  # as Snowflake's COPY INTO @stage writes them, without a header line
        batch = rows(k * 700, 700)
        expected += batch
        (unload / f"data_0_0_{k}.csv.gz").write_bytes(gzip.compress(csv_bytes(batch, header=None)))
    source = Source.of(f"{unload}/", columns=COLUMNS, max_part_bytes=30_000)
    checked = preflight(source, object_type="leads", describe=fast_hook().describe)
    assert checked.records == 2800
    parts = submit(marketo_env, source)
    assert len(parts) >= 4 and all(p.startswith(b"email,firstName,lastName,company\n") for p in parts)
    imported_exactly_once(marketo_env, expected)


def test_mapping_renames_two_columns(marketo_env: MarketoSandbox, tmp_path: Path) -> None:
    expected = rows(0, 500)
    header = ("Email Address", "First Name", "lastName", "company")
    (tmp_path / "crm.csv").write_bytes(csv_bytes(expected, header=header))
    source = Source.of(
        tmp_path / "crm.csv",
        column_mapping={"Email Address": "email", "First Name": "firstName"},
        max_part_bytes=10_000,
    )
    checked = preflight(source, object_type="leads", describe=fast_hook().describe)
    assert checked.header.names == COLUMNS
    submit(marketo_env, source)
    imported_exactly_once(marketo_env, expected)


def test_resume_mid_way_through_compressed_files(marketo_env: MarketoSandbox, tmp_path: Path) -> None:
    expected = []
    for k in range(3):
        batch = rows(k * 800, 800)
        expected += batch
        (tmp_path / f"data_{k}.csv.gz").write_bytes(gzip.compress(csv_bytes(batch)))
    source = Source.of(f"{tmp_path}/data_*.csv.gz", max_part_bytes=20_000)
    with source_parts(source) as parts:
        full = [(p.index, p.source_start, p.source_end, bytes(p.data)) for p in parts]
    assert len(full) >= 6
    k = len(full) // 2 + 1  # a part that starts inside the second file
    with source_parts(source) as parts:
        first_run = []
        for part in parts:
            if part.index == k:
                break  # the task died here: parts 0..k-1 were accepted
            fast_hook().submit_import("leads", part.reader(), filename=f"part-{part.index}.csv")
            first_run.append(bytes(part.data))
            marketo_env.run_until_idle()
    resumed = submit(marketo_env, source, resume_at=(k, full[k - 1][2]))
    assert b"".join(first_run + resumed) == b"".join(p[3] for p in full)
    assert len(first_run) + len(resumed) == len(full)
    assert len(marketo_env.jobs) == len(full)  # no part was sent twice
    imported_exactly_once(marketo_env, expected)


def test_object_storage_prefix_and_glob(marketo_env: MarketoSandbox) -> None:
    """A prefix and a glob in object storage reached through a connection (fsspec's memory
    filesystem stands in for S3), imported and resumed like local files."""
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    fs = MemoryFileSystem()
    attach(protocol="memory", conn_id="stage", fs=fs)
    expected = []
    for k in range(4):
        batch = rows(k * 400, 400)
        expected += batch
        fs.pipe(f"/crm-stage/unload/data_0_0_{k}.csv.gz", gzip.compress(csv_bytes(batch, header=None)))
    fs.pipe("/crm-stage/unload/_SUCCESS", b"")
    fs.pipe("/crm-stage/other/data_0_0_9.csv.gz", gzip.compress(csv_bytes(rows(9000, 5), header=None)))
    prefix = Source.of("memory://crm-stage/unload/", conn_id="stage", columns=COLUMNS, max_part_bytes=15_000)
    pattern = Source.of(
        "memory://crm-stage/unload/data_*.csv.gz", conn_id="stage", columns=COLUMNS, max_part_bytes=15_000
    )
    with source_parts(prefix) as parts:
        full = [(p.source_start, bytes(p.data), p.origin) for p in parts]
    with source_parts(pattern) as parts:
        assert [(p.source_start, bytes(p.data), p.origin) for p in parts] == full
    assert full[0][2].startswith("data_0_0_0.csv.gz decompressed gzip bytes 0-")
    k = len(full) // 2
    with source_parts(prefix, resume_at=(k, full[k][0])) as parts:
        assert [(p.source_start, bytes(p.data), p.origin) for p in parts] == full[k:]
    assert preflight(prefix, object_type="leads", describe=fast_hook().describe).records == 1600
    submit(marketo_env, prefix)
    imported_exactly_once(marketo_env, expected)
    with pytest.raises(SourceError, match="no files match the import source memory://crm-stage/nope_"):
        preflight(
            Source.of("memory://crm-stage/nope_*.csv", conn_id="stage"),
            object_type="leads",
            check_columns=False,
        )
