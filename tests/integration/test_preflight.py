"""Pre-flight checks against the sandbox's describe calls: every bad input is refused with a clear
message, and the sandbox receives no import call."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from marketo_provider.sources import Preflight, Source, SourceError, preflight, resolve_source, source_parts
from marketo_provider.testing import MarketoSandbox
from tests.conftest import fast_hook
from tests.s3 import S3Server


def run(tmp_path: Path, data: bytes, **kwargs: object) -> Preflight:
    source = tmp_path / "source.csv"
    source.write_bytes(data)
    settings = {
        k: kwargs.pop(k)
        for k in ("file_format", "max_part_bytes", "columns", "column_mapping")
        if k in kwargs
    }
    options: dict = {"object_type": "leads", "describe": fast_hook().describe, **kwargs}
    return preflight(resolve_source(source, **settings), **options)


def assert_nothing_imported(sandbox: MarketoSandbox) -> None:
    assert sandbox.calls_to("/bulk/v1/*") == []


BAD_INPUTS = [
    ("empty file", b"", {}, "is empty"),
    ("blank header", b"\n\na@example.com\n", {}, "is blank"),
    ("empty column name", b"email,,company\n", {}, "empty column names"),
    ("duplicate column", b"email,company,company\n", {}, "more than once: company"),
    ("padded name", b"email, company\n", {}, "leading or trailing spaces: ' company'"),
    ("wrong delimiter", b"email;company\na@example.com;Acme\n", {}, "set file_format='ssv'"),
    (
        "leads without lookup column",
        b"firstName,company\nA,Acme\n",
        {},
        "no 'email' column, the lookup field",
    ),
    (
        "leads with another lookup field",
        b"email,company\n",
        {"lookup_field": "externalCompanyId"},
        "no 'externalCompanyId' column",
    ),
    (
        "members without email",
        b"firstName,company\n",
        {"object_type": "program_members"},
        "no 'email' column, which program member imports need",
    ),
    (
        "custom object without dedupe field",
        b"make,year\nHonda,2020\n",
        {"object_type": "custom_objects", "custom_object_name": "car_c"},
        "no 'vin' column, the custom object's dedupe field",
    ),
    ("near-miss column name", b"Emial,company\n", {}, "is 'Emial' meant to be 'email'"),
    (
        "unknown columns",
        b"email,favoriteColor,compnay\n",
        {},
        "'favoriteColor'; 'compnay' \\(closest: company",
    ),
    ("not UTF-8", b"email,firstName\na@example.com,Jos\xe9\n", {}, "not UTF-8: line 2"),
    (
        "unterminated quote",
        b'email,firstName\na@example.com,"Ann\nb@example.com,Bob\n',
        {},
        "unterminated quote in the record starting on line 2",
    ),
    (
        "record larger than a part",
        b"email,firstName\na@example.com," + b"x" * 3000 + b"\n",
        {"max_part_bytes": 2000},
        "record starting on line 2 runs past 2,000 bytes",
    ),
]


@pytest.mark.parametrize(("case", "data", "kwargs", "message"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_refused_before_any_import(
    marketo_env: MarketoSandbox, tmp_path: Path, case: str, data: bytes, kwargs: dict, message: str
) -> None:
    with pytest.raises(SourceError, match=message):
        run(tmp_path, data, **kwargs)
    assert_nothing_imported(marketo_env)


def test_missing_source(marketo_env: MarketoSandbox, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"import source .*nope\.csv does not exist"):
        preflight(Source.of(tmp_path / "nope.csv"), object_type="leads", describe=fast_hook().describe)
    with pytest.raises(SourceError, match="does not exist"):
        preflight(
            Source.of(f"file://{tmp_path}/nope.csv"), object_type="leads", describe=fast_hook().describe
        )
    with pytest.raises(SourceError, match="is a folder"):
        preflight(Source.of(tmp_path), object_type="leads", describe=fast_hook().describe)
    assert marketo_env.calls == []


def test_column_check_can_be_turned_off(marketo_env: MarketoSandbox, tmp_path: Path) -> None:
    result = run(tmp_path, b"email,favoriteColor\na@example.com,blue\n", check_columns=False)
    assert result.parts == 1 and marketo_env.calls == []  # leads need no describe call then


def test_program_members_may_carry_lead_fields(marketo_env: MarketoSandbox, tmp_path: Path) -> None:
    result = run(
        tmp_path, b"email,firstName,registrationCode\na@example.com,A,R1\n", object_type="program_members"
    )
    assert result.parts == 1
    assert {c.path for c in marketo_env.calls if c.path.startswith("/rest")} == {
        "/rest/v1/programs/members/describe.json",
        "/rest/v1/leads/describe2.json",
    }


def test_header_only_source_imports_nothing(marketo_env: MarketoSandbox, tmp_path: Path) -> None:
    result = run(tmp_path, b"\xef\xbb\xbfemail,firstName\r\n")
    assert result.empty and result.header.names == ("email", "firstName")
    assert_nothing_imported(marketo_env)


def test_good_source_counts_parts(marketo_env: MarketoSandbox, tmp_path: Path) -> None:
    data = b"email,firstName\n" + b"".join(b"lead%d@example.com,Name%d\n" % (i, i) for i in range(2000))
    result = run(tmp_path, data, max_part_bytes=10_000)
    assert result.parts == len(data) // 9_000 + 1 or result.parts > 4
    assert result.lines == 2000 and result.body_bytes == len(data) - len(b"email,firstName\n")
    with source_parts(Source.of(tmp_path / "source.csv", max_part_bytes=10_000)) as parts:
        sizes = [p.size for p in parts]
    assert len(sizes) == result.parts and max(sizes) <= 10_000


def test_object_storage_and_file_uris(tmp_path: Path) -> None:
    from airflow.sdk import ObjectStoragePath

    source = tmp_path / "leads.csv"
    source.write_bytes(b"email\na@example.com\n")
    for given in (str(source), source, f"file://{source}", ObjectStoragePath(f"file://{source}")):
        with source_parts(Source.of(given)) as parts:
            assert [bytes(p.data) for p in parts] == [b"email\na@example.com\n"]


def test_part_reader_uploads_without_copying(marketo_env: MarketoSandbox, tmp_path: Path) -> None:
    (tmp_path / "leads.csv").write_bytes(b"email,firstName\n" + b"a@example.com,A\n" * 200)
    hook = fast_hook()
    with source_parts(Source.of(tmp_path / "leads.csv", max_part_bytes=1000)) as parts:
        batches = [
            hook.submit_import("leads", part.reader(), filename=f"part-{part.index}.csv")["batchId"]
            for part in parts
        ]
    assert len(batches) == 4
    marketo_env.advance(30)
    assert len(marketo_env.imported_rows("leads")) == 200


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with S3Server() as server:
        yield server


def test_object_storage_source_with_a_connection(
    marketo_env: MarketoSandbox, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An s3:// source reached through the Amazon provider and an aws connection (moto's S3 server
    on loopback), read as a stream, resumed mid-way by seeking; results written back to S3."""
    from marketo_provider.results.location import write_to_object_storage
    from marketo_provider.results.merging import MergedFile

    monkeypatch.setenv(*s3.env_item())
    bucket = s3.bucket()
    data = b"email,firstName\n" + b"".join(b"lead%d@example.com,N%d\n" % (i, i) for i in range(500))
    s3.put(f"s3://{bucket}/leads.csv", data)
    source = Source.of(f"s3://{bucket}/leads.csv", conn_id=s3.conn_id, max_part_bytes=3000)
    checked = preflight(source, object_type="leads", describe=fast_hook().describe)
    assert checked.parts > 3 and checked.lines == 500
    with source_parts(source) as parts:
        all_parts = [(p.index, p.source_start, p.source_end, bytes(p.data)) for p in parts]
    assert b"".join(d.split(b"\n", 1)[1] for *_, d in all_parts) == data.split(b"\n", 1)[1]
    second = all_parts[2]
    with source_parts(source, resume_at=(2, second[1])) as parts:
        resumed = [(p.index, p.source_start, p.source_end, bytes(p.data)) for p in parts]
    assert resumed == all_parts[2:]
    with pytest.raises(SourceError, match="does not exist"):
        preflight(
            Source.of(f"s3://{bucket}/nope.csv", conn_id=s3.conn_id), object_type="leads", check_columns=False
        )
    merged = MergedFile(kind="failures", file=io.BytesIO(b"email,Import Failure Reason\nx,y\n"), batches=1)
    uri = write_to_object_storage(merged, f"s3://{bucket}/results/run1/", "csv", s3.conn_id)
    assert uri == f"s3://{bucket}/results/run1/failures.csv"
    assert s3.get(uri) == b"email,Import Failure Reason\nx,y\n"
    assert s3.keys(f"s3://{bucket}/") == ["leads.csv", "results/run1/failures.csv"]
