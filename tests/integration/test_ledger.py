"""The row ledger over real HTTP against the sandbox: pre-flight decides about each row once, and
every later step reads its decisions instead of reading the source again."""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path
from typing import Any

import pytest

from marketo_provider.api import ImportSpec
from marketo_provider.importing import BulkImport, ImportAbortedError, ImportOptions
from marketo_provider.sources import Source, listing
from marketo_provider.testing import MarketoSandbox
from tests.conftest import fast_hook

LOG = logging.getLogger("tests.ledger")


def run(source: Source, xcom: dict[str, Any], state: Path | None = None, **options: Any) -> dict[str, Any]:
    extra = {"changed_rows_only": True, "state_path": str(state)} if state is not None else {}
    job = BulkImport(
        fast_hook(),
        ImportSpec.of("leads"),
        source,
        ImportOptions.of(poll_interval=0.05, **options, **extra),
        log=LOG,
        owner="dag/task/run",
    )
    begun = job.begin(None)
    assert begun is not None
    while (wait := job.advance(begun)) is not None:
        job.wait(begun, wait)
    return job.conclude(begun, xcom.__setitem__)


def test_a_part_names_the_true_byte_ranges_around_a_row_kept_out(
    marketo_env: MarketoSandbox, tmp_path: Path
) -> None:
    path = tmp_path / "leads.csv"
    header = "email,firstName,leadScore\n"
    rows = [f"u{i:03d}@example.com,Name{i:03d},{i % 90}\n" for i in range(120)]
    rows[60] = "u060@example.com,Name060,n/a\n"  # Marketo would refuse it: kept out mid-file
    path.write_text(header + "".join(rows))
    size = path.stat().st_size
    summary = run(Source.of(str(path), max_part_bytes=100_000), {}, on_invalid_rows="skip")
    (only,) = summary["batches"]
    start = len(header) + sum(len(r) for r in rows[:60])
    end = start + len(rows[60])
    assert only["origin"] == f"leads.csv bytes {len(header)}-{start:,}; leads.csv bytes {end:,}-{size:,}"
    assert summary["rows"]["kept_out"]["refused"] == 1 and summary["rows_processed"] == 119


def test_failures_refused_before_upload_alone_are_under_the_names_sent(
    marketo_env: MarketoSandbox, tmp_path: Path
) -> None:
    path = tmp_path / "leads.csv"
    path.write_text("Email,FirstName,LeadScore\na@example.com,Ann,3\nb@example.com,Bob,lots\n")
    xcom: dict[str, Any] = {}
    run(Source.of(str(path)), xcom, on_invalid_rows="skip")
    rows = list(csv.reader(io.StringIO(xcom["failures"])))
    # describe's spelling, as the header was sent; then where the row is, and why
    assert rows[0] == ["email", "firstName", "leadScore", "Source", "Source Line", "Import Failure Reason"]
    assert rows[1][:5] == ["b@example.com", "Bob", "lots", str(path), "3"]
    assert rows[1][5].startswith("Refused before upload: Invalid data type in field")


class CountingFile(io.FileIO):
    read_bytes = 0
    opened = 0

    def __init__(self, path: str, mode: str) -> None:
        super().__init__(path, mode)
        CountingFile.opened += 1

    def readinto(self, buffer: Any) -> int:
        n = super().readinto(buffer) or 0
        CountingFile.read_bytes += n
        return n

    def read(self, size: int = -1) -> bytes:
        data = super().read(size)
        CountingFile.read_bytes += len(data or b"")
        return data or b""


def test_skip_keep_last_and_changed_rows_read_the_source_twice_at_most(
    marketo_env: MarketoSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = listing._local_file

    def counting(path: str, label: str, size: int) -> listing.SourceFile:
        found = real(path, label, size)
        return listing.SourceFile(found.name, found.label, found.size, lambda: CountingFile(path, "rb"))

    monkeypatch.setattr(listing, "_local_file", counting)
    path = tmp_path / "leads.csv"
    rows = [
        f"u{i % 9000:05d}@example.com,Name{i},{'n/a' if i % 97 == 0 else i % 90}\n" for i in range(30_000)
    ]
    path.write_text("email,firstName,leadScore\n" + "".join(rows))
    size = path.stat().st_size
    options = {"on_invalid_rows": "skip", "on_repeated_keys": "keep_last"}
    source = Source.of(str(path), max_part_bytes=100_000)
    for night in (1, 2):
        if night == 2:
            path.write_text("email,firstName,leadScore\n" + "".join(rows).replace("Name2", "Renamed2"))
            size = path.stat().st_size
        CountingFile.read_bytes = CountingFile.opened = 0
        xcom: dict[str, Any] = {}
        summary = run(source, xcom, tmp_path / "state", **options)
        assert len(summary["batch_ids"]) >= 2 and summary["rows_failed"] == 0
        # pre-flight and the cut read it through; every other opening reads its head (the header, the
        # fingerprint), at most 64 KiB
        through = CountingFile.read_bytes - CountingFile.opened * 64 * 1024
        assert through <= 2 * size, (CountingFile.read_bytes, CountingFile.opened, size)


def test_only_what_marketo_accounted_for_is_confirmed(
    marketo_env: MarketoSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, state = tmp_path / "leads.csv", tmp_path / "state"
    path.write_text("email,firstName\n" + "".join(f"u{i}@example.com,Name{i}\n" for i in range(300)))
    source = Source.of(str(path), max_part_bytes=3_000)
    real = type(fast_hook()).get_import_status
    short: list[int] = []

    def status(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        entry = dict(real(self, *args, **kwargs))
        if entry.get("status") == "Complete" and entry["batchId"] == min(short or [entry["batchId"]]):
            short.append(entry["batchId"])
            entry["numOfLeadsProcessed"] -= 3  # a status that does not account for every row sent
        return entry

    monkeypatch.setattr(type(fast_hook()), "get_import_status", status)
    first = run(source, {}, state)
    (batch,) = set(short)
    assert list(first["changes"]["batches_not_confirmed"]) == [str(batch)]
    assert "of the " in first["changes"]["batches_not_confirmed"][str(batch)]
    monkeypatch.setattr(type(fast_hook()), "get_import_status", real)
    part = next(b for b in first["batches"] if b["batch_id"] == batch)
    before = len(marketo_env.imported_rows("leads"))
    second = run(source, {}, state)
    resent = marketo_env.imported_rows("leads")[before:]
    # the next night sends again exactly the rows of the batch whose counts did not add up
    assert len(resent) == second["rows_processed"] == part["rows_processed"] + 3
    assert not (state / "lock.json").exists()


def test_a_retry_that_lost_the_ledger_writes_it_again_reading_the_source_once_more(
    marketo_env: MarketoSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    real = listing._local_file

    def counting(path: str, label: str, size: int) -> listing.SourceFile:
        found = real(path, label, size)
        return listing.SourceFile(found.name, found.label, found.size, lambda: CountingFile(path, "rb"))

    monkeypatch.setattr(listing, "_local_file", counting)
    path = tmp_path / "leads.csv"
    rows = [
        f"u{i % 9000:05d}@example.com,Name{i},{'n/a' if i % 97 == 0 else i % 90}\n" for i in range(30_000)
    ]
    path.write_text("email,firstName,leadScore\n" + "".join(rows))
    size = path.stat().st_size
    source = Source.of(str(path), max_part_bytes=100_000)
    options = ImportOptions.of(
        poll_interval=0.05,
        on_invalid_rows="skip",
        on_repeated_keys="keep_last",
        changed_rows_only=True,
        state_path=str(tmp_path / "state"),
    )
    CountingFile.read_bytes = CountingFile.opened = 0
    first = BulkImport(fast_hook(), ImportSpec.of("leads"), source, options, log=LOG, owner="dag/task/run")
    begun = first.begin(None)
    assert begun is not None
    # one part goes, then an upload is refused and the task stops
    marketo_env.inject_fault("/bulk/v1/leads.json", method="POST", code="1003", skip=1)
    with pytest.raises(ImportAbortedError):
        first.advance(begun)
    assert len(begun.submitted) == 1 and not begun.all_submitted
    saved = begun.to_json()
    assert begun.ledger is not None
    os.remove(begun.ledger["local"])  # the retry runs on another worker: no ledger there
    for stored in (tmp_path / "state" / "ledgers").glob("*"):
        stored.unlink()  # nor a stored copy
    retry = BulkImport(fast_hook(), ImportSpec.of("leads"), source, options, log=LOG, owner="dag/task/run")
    state = retry.begin(saved)
    assert state is not None
    while (wait := retry.advance(state)) is not None:
        retry.wait(state, wait)
    summary = retry.conclude(state, {}.__setitem__)
    assert summary["rows_processed"] == 9000 and len(summary["batch_ids"]) == len(set(summary["batch_ids"]))
    names = [r["firstName"] for r in marketo_env.imported_rows("leads")]
    assert len(names) == len(set(names)) == 9000  # every row once
    # pre-flight, the ledger written again, and one cut shared by the two tries (the first try's
    # cut had read ahead up to a MiB of decompressed records and a part past its last part)
    through = CountingFile.read_bytes - CountingFile.opened * 64 * 1024
    assert through <= 3 * size + 1024 * 1024 + 100_000, (CountingFile.read_bytes, CountingFile.opened, size)


def test_a_stored_ledger_copy_that_unpacks_past_its_size_is_written_again(tmp_path: Path) -> None:
    import gzip

    from marketo_provider.importing.ledgers import LedgerPlace

    name = "dag_task_run-0123456789abcdef.sqlite.gz"
    folder = tmp_path / "state" / "ledgers"
    folder.mkdir(parents=True)
    (folder / name).write_bytes(gzip.compress(b"\0" * (4 * 1024 * 1024)))  # 4 MiB for a ledger of 8 KiB
    place = LedgerPlace({"name": name, "stored": [str(folder), None], "bytes": 8192})
    Path(place.local).unlink(missing_ok=True)
    rebuilt: list[str] = []
    messages: list[str] = []

    class Log:
        def warning(self, message: str, *args: object) -> None:
            messages.append(message % args)

        def info(self, message: str, *args: object) -> None:
            messages.append(message % args)

    assert place.open(lambda path: rebuilt.append(path), Log()) is None
    assert rebuilt == [place.local]  # written again from the source, not unpacked whole
    assert any("unpacks to more than 8,192 bytes" in m for m in messages), messages
    assert not Path(place.local).exists()  # what was unpacked is gone before the ledger is written again
