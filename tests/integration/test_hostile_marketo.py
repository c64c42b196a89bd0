"""A Marketo that misbehaves (tests/hostile.py, raw sockets on loopback): whatever it answers, a call
ends within its size limit or by the import's deadline, an answer that is not what Adobe documents is
a clear error naming the call, what reaches XCom stays small, and no secret it echoes is shown or
kept. The imports that measure memory run in a child process."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from marketo_provider.api import (
    ImportSpec,
    MarketoAnswerError,
    MarketoQueueFullError,
    MarketoTransportError,
    MarketoValueError,
)
from marketo_provider.api.errors import TransportFailure
from marketo_provider.api.redaction import redact
from marketo_provider.hooks.marketo import MarketoHook, aclose_shared_clients, clear_token_cache
from marketo_provider.importing import BulkImport, ImportFailedError, ImportOptions
from marketo_provider.results.merging import OTHER_REASONS
from marketo_provider.results.publishing import XCOM_MAX_RESULT_BYTES
from marketo_provider.sources import Source
from tests.hostile import (
    CLIENT_SECRET,
    TOKEN,
    HostileMarketo,
    created,
    csv_rows,
    endless,
    json_answer,
    status,
    streamed,
)

STATUS = "/bulk/v1/leads/batch/1040.json"
FAILURES = "/bulk/v1/leads/batch/1040/failures.json"
CREATE = "/bulk/v1/leads.json"
LOG = logging.getLogger("tests.hostile")


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., HostileMarketo]]:
    """Start a hostile Marketo with the given routes, wired in as ``marketo_default``."""
    servers: list[HostileMarketo] = []

    def start(routes: dict[str, Any]) -> HostileMarketo:
        clear_token_cache()
        server = HostileMarketo(routes).__enter__()
        servers.append(server)
        monkeypatch.setenv(*server.env_item())
        return server

    yield start
    for server in servers:
        server.__exit__(None, None, None)


def hook(deadline_in: float | None = None) -> MarketoHook:
    made = MarketoHook(retry_base_seconds=0.01, max_attempts=3, calls_per_window=None)
    if deadline_in is not None:
        made.deadline = time.time() + deadline_in
    return made


def ends(call: Callable[[], Any], within: float) -> BaseException | None:
    """Run ``call`` in a thread; assert it ends within ``within`` seconds (the bound the product
    promises, plus slack) and return what it raised."""
    raised: list[BaseException | None] = [None]

    def run() -> None:
        try:
            call()
        except BaseException as exc:
            raised[0] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(within)
    assert not thread.is_alive(), f"the call did not end within {within} s"
    return raised[0]


def astatus(made: MarketoHook) -> None:
    async def go() -> None:
        try:
            await made.aget_import_status("leads", 1040)
        finally:
            await aclose_shared_clients()

    asyncio.run(go())


# ---- every answer within its size limit and by the deadline ------------------------------------


@pytest.mark.parametrize("transport", ["sync", "async"])
def test_an_endless_status_answer_ends_at_the_size_limit_of_a_status(
    serve: Callable[..., HostileMarketo], transport: str
) -> None:
    serve({STATUS: endless(b" " * 65536)})
    made = hook()  # no deadline: the size limit alone ends it
    call = (lambda: made.get_import_status("leads", 1040)) if transport == "sync" else (lambda: astatus(made))
    raised = ends(call, within=60)
    assert isinstance(raised, MarketoAnswerError)
    assert (
        str(raised)
        == "Marketo's answer to the status of batch 1040 runs past 1,048,576 bytes, the most this call reads"
    )
    assert raised.permanent


@pytest.mark.parametrize("transport", ["sync", "async"])
def test_a_status_answer_that_keeps_trickling_ends_by_the_deadline(
    serve: Callable[..., HostileMarketo], transport: str
) -> None:
    serve({STATUS: endless(b" ", pause=0.01)})  # under the size limit for hours, never done
    made = hook(deadline_in=2.0)
    call = (lambda: made.get_import_status("leads", 1040)) if transport == "sync" else (lambda: astatus(made))
    raised = ends(call, within=2.0 + 30)
    assert isinstance(raised, MarketoTransportError) and raised.failure is TransportFailure.DEADLINE
    assert "status of batch 1040" in str(raised) and "deadline" in str(raised)


def test_an_endless_failures_file_ends_by_the_deadline(
    serve: Callable[..., HostileMarketo], tmp_path: Path
) -> None:
    serve(
        {
            FAILURES: endless(
                b"a@example.com,Invalid email address\n" * 2000, pause=0.005, content_type="text/csv"
            )
        }
    )
    made = hook(deadline_in=2.0)
    with (tmp_path / "failures.csv").open("wb") as dest:
        raised = ends(lambda: made.download_result_file("leads", 1040, "failures", dest), within=2.0 + 30)
    assert isinstance(raised, MarketoTransportError) and raised.failure is TransportFailure.DEADLINE
    assert "failures file of batch 1040" in str(raised)


def test_no_call_is_sent_after_the_deadline(serve: Callable[..., HostileMarketo]) -> None:
    server = serve({STATUS: status()})
    made = hook(deadline_in=-1.0)
    with pytest.raises(MarketoTransportError) as refused:
        made.get_import_status("leads", 1040)
    assert refused.value.failure is TransportFailure.DEADLINE_PASSED and not server.requests


# ---- answers checked ----------------------------------------------------------------------------


BAD_STATUS_ANSWERS = {
    "a negative count": (
        status(numOfRowsFailed=-5),
        "Marketo's answer to the status of batch 1040 has numOfRowsFailed -5, not a count (a whole number, 0 or more)",
    ),
    "a fractional count": (
        status(numOfLeadsProcessed=2.5),
        "Marketo's answer to the status of batch 1040 has numOfLeadsProcessed 2.5, not a count (a whole number, 0 or more)",
    ),
    "another batch": (
        status(batchId=9999),
        "Marketo's answer to the status of batch 1040 is about batch 9999, not batch 1040",
    ),
    "a fractional batch id": (
        status(batchId=1040.7),
        "Marketo's answer to the status of batch 1040 has batchId 1040.7, not a whole number above 0",
    ),
    "malformed errors": (
        json_answer({"requestId": "r", "success": False, "errors": "Too many imports"}),
        "Marketo's answer to the status of batch 1040 has 'errors' that is not a list",
    ),
    "errors without a code": (
        json_answer({"requestId": "r", "success": False, "errors": [{"message": "no code"}]}),
        "Marketo's answer to the status of batch 1040 says success false without a list of errors, each with a code",
    ),
    "no envelope": (
        json_answer([1040]),
        "Marketo's answer to the status of batch 1040 is not Marketo's JSON envelope",
    ),
    "a result that is not a list": (
        json_answer({"requestId": "r", "success": True, "result": {"batchId": 1040}}),
        "Marketo's answer to the status of batch 1040 has a 'result' that is not a list of objects",
    ),
}


@pytest.mark.parametrize("transport", ["sync", "async"])
@pytest.mark.parametrize("case", list(BAD_STATUS_ANSWERS))
def test_a_status_answer_unlike_adobes_is_a_clear_error(
    serve: Callable[..., HostileMarketo], case: str, transport: str
) -> None:
    handler, message = BAD_STATUS_ANSWERS[case]
    serve({STATUS: handler})
    made = hook()
    call = (lambda: made.get_import_status("leads", 1040)) if transport == "sync" else (lambda: astatus(made))
    with pytest.raises(MarketoAnswerError) as raised:
        call()
    assert str(raised.value).startswith(message)
    assert raised.value.permanent


def test_a_fractional_batch_id_in_a_create_answer_is_a_clear_error(
    serve: Callable[..., HostileMarketo], tmp_path: Path
) -> None:
    serve({CREATE: created(batch_id=1040.7)})
    path = tmp_path / "leads.csv"
    path.write_bytes(b"email\nann@example.com\n")
    with pytest.raises(
        MarketoAnswerError, match=r"upload of leads.csv \(leads\) has batchId 1040.7, not a whole"
    ):
        hook().submit_import("leads", path)


def test_malformed_errors_in_a_create_answer_are_a_clear_error_not_a_full_queue(
    serve: Callable[..., HostileMarketo], tmp_path: Path
) -> None:
    serve({CREATE: json_answer({"requestId": "r", "success": False, "errors": [{"code": {"n": 1016}}]})})
    path = tmp_path / "leads.csv"
    path.write_bytes(b"email\nann@example.com\n")
    with pytest.raises(MarketoAnswerError, match="says success false without a list of errors") as raised:
        hook().submit_import("leads", path)
    assert not isinstance(raised.value, MarketoQueueFullError)


def new_import(path: Path, **options: Any) -> BulkImport:
    return BulkImport(
        hook(),
        ImportSpec.of("leads"),
        Source.of(str(path)),
        ImportOptions.of(poll_interval=0.05, check_columns=False, **options),
        log=LOG,
    )


def run_to_end(run: BulkImport, xcom: dict[str, Any]) -> dict[str, Any]:
    state = run.begin(None)
    assert state is not None
    while (wait := run.advance(state)) is not None:
        run.wait(state, wait)
    return run.conclude(state, xcom.__setitem__)


def leads(tmp_path: Path) -> Path:
    path = tmp_path / "leads.csv"
    path.write_bytes(b"email\nann@example.com\nbob@example.com\n")
    return path


def test_a_negative_count_never_turns_an_import_green(
    serve: Callable[..., HostileMarketo], tmp_path: Path
) -> None:
    serve({CREATE: created(), STATUS: status(numOfRowsFailed=-5)})
    with pytest.raises(MarketoAnswerError, match="numOfRowsFailed -5, not a count"):
        run_to_end(new_import(leads(tmp_path), max_failed_rows=0), {})


def test_a_status_about_another_batch_downloads_nothing(
    serve: Callable[..., HostileMarketo], tmp_path: Path
) -> None:
    server = serve({CREATE: created(), STATUS: status(batchId=9999, numOfRowsFailed=1)})
    with pytest.raises(MarketoAnswerError, match="is about batch 9999, not batch 1040"):
        run_to_end(new_import(leads(tmp_path)), {})
    assert [r.path for r in server.requests if "9999" in r.path] == []


# ---- XCom bounded -----------------------------------------------------------------------------


def test_failures_too_large_for_xcom_fail_after_the_summary_asking_for_results_path(
    serve: Callable[..., HostileMarketo], tmp_path: Path
) -> None:
    size = XCOM_MAX_RESULT_BYTES + 1_000_000
    serve(
        {
            CREATE: created(),
            STATUS: status(numOfRowsFailed=2, numOfLeadsProcessed=0),
            FAILURES: streamed(csv_rows(size, lambda n: "Invalid email address")),
        }
    )
    xcom: dict[str, Any] = {}
    with pytest.raises(ImportFailedError, match="set results_path") as failed:
        run_to_end(new_import(leads(tmp_path)), xcom)
    assert f"more than the {XCOM_MAX_RESULT_BYTES:,} bytes kept in XCom" in str(failed.value)
    assert failed.value.permanent  # a retry cannot make them fit
    assert "failures" not in xcom and xcom["return_value"]["batch_ids"] == [1040]
    assert xcom["return_value"]["failure_reasons"]["Invalid email address"] > 2


# ---- no secret echoed --------------------------------------------------------------------------


ECHO = f"you sent {CLIENT_SECRET} with Authorization: Bearer {TOKEN} (token {TOKEN})"


@pytest.mark.parametrize("results", ["xcom", "results_path"])
def test_secrets_echoed_by_the_server_appear_nowhere(
    serve: Callable[..., HostileMarketo],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    results: str,
) -> None:
    def rows() -> Iterator[bytes]:
        yield b"email,Import Failure Reason\n"
        yield f'ann@example.com,"{ECHO}"\n'.encode()
        yield f"bob@example.com,{CLIENT_SECRET}\n".encode()

    serve(
        {
            CREATE: created(),
            STATUS: status(numOfRowsFailed=2, numOfLeadsProcessed=0, message=ECHO),
            FAILURES: streamed(rows),
        }
    )
    results_path = str(tmp_path / "results") if results == "results_path" else None
    xcom: dict[str, Any] = {}
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ImportFailedError) as failed:  # nothing was imported
        run_to_end(new_import(leads(tmp_path), results_path=results_path), xcom)
    kept = [str(failed.value), caplog.text, json.dumps(xcom)]
    if results_path:
        kept.append((tmp_path / "results" / "failures.csv").read_text())
    else:
        assert "ann@example.com" in xcom["failures"]
    for text in kept:
        assert CLIENT_SECRET not in text and TOKEN not in text
    assert xcom["return_value"]["failure_reasons"] == {"you sent *** with Authorization: ***": 1, "***": 1}
    assert xcom["return_value"]["batches"][0]["message"] == "you sent *** with Authorization: ***"


@pytest.mark.parametrize("transport", ["sync", "async"])
def test_a_secret_echoed_in_an_error_appears_neither_in_the_exception_nor_the_log(
    serve: Callable[..., HostileMarketo], caplog: pytest.LogCaptureFixture, transport: str
) -> None:
    serve(
        {
            STATUS: json_answer(
                {"requestId": "r", "success": False, "errors": [{"code": "1003", "message": ECHO}]}
            )
        }
    )
    made = hook()
    caplog.set_level(logging.DEBUG)
    call = (lambda: made.get_import_status("leads", 1040)) if transport == "sync" else (lambda: astatus(made))
    raised = ends(call, within=60)
    assert raised is not None and "Marketo error 1003: you sent ***" in str(raised)
    for text in (str(raised), repr(raised), caplog.text):
        assert CLIENT_SECRET not in text and TOKEN not in text


def test_credentials_in_a_results_uri_are_masked_in_messages(caplog: pytest.LogCaptureFixture) -> None:
    from marketo_provider.results import ResultsLocation

    with pytest.raises(MarketoValueError) as refused:
        ResultsLocation.of("ftp://AKIAKEY:wJalrSECRET@127.0.0.1:1/x/").check_writable()
    assert str(refused.value).startswith(
        "results_path 'ftp://***@127.0.0.1:1/x/' has credentials written in it"
    )
    # Remembered as secrets: whatever else prints them (a storage library, a log line) is cleaned too.
    assert redact("boto: unknown key AKIAKEY for wJalrSECRET") == "boto: unknown key *** for ***"


# ---- whole imports in a child process: memory and time ------------------------------------------


def run_child(server: HostileMarketo, tmp_path: Path, **options: Any) -> dict[str, Any]:
    """Run one import against ``server`` in a child process (its peak memory is its own)."""
    source = leads(tmp_path)
    env = {**os.environ, **dict([server.env_item()])}
    done = subprocess.run(
        [sys.executable, "-m", "tests.hostile_child", str(source), json.dumps(options)],
        env=env,
        capture_output=True,
        text=True,
        timeout=float(options.get("timeout", 60)) + 240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"child import: {report['seconds']} s, peak RSS {report['peak_rss_mib']} MiB, XCom sizes {report['xcom']}"
    )
    report["log"] = done.stderr
    return report


def test_an_import_whose_status_never_ends_stops_by_its_timeout_in_bounded_memory(
    serve: Callable[..., HostileMarketo], tmp_path: Path
) -> None:
    server = serve({CREATE: created(), STATUS: endless(b" ", pause=0.001)})
    report = run_child(server, tmp_path, timeout=5)
    assert report["error"].startswith("ImportAbortedError: the import did not finish within timeout=5 s")
    assert report["peak_rss_mib"] < 300


def test_an_import_whose_failures_never_end_stops_by_its_timeout_in_bounded_memory(
    serve: Callable[..., HostileMarketo], tmp_path: Path
) -> None:
    server = serve(
        {
            CREATE: created(),
            STATUS: status(numOfRowsFailed=1),
            FAILURES: endless(
                b"a@example.com,Invalid email address\n" * 2000, pause=0.005, content_type="text/csv"
            ),
        }
    )
    report = run_child(server, tmp_path, timeout=5)
    assert report["error"].startswith(
        "ImportFailedError: the failures and warnings could not be written to XCom"
    )
    assert "the import's deadline (its timeout) passed before the whole answer came" in report["error"]
    assert report["xcom"]["return_value"] < 10_000  # the summary is published all the same
    assert report["peak_rss_mib"] < 300


def test_a_300_mb_failures_file_of_distinct_reasons_leaves_a_small_summary(
    serve: Callable[..., HostileMarketo], tmp_path: Path
) -> None:
    server = serve(
        {
            CREATE: created(),
            STATUS: status(numOfRowsFailed=1),  # the file holds millions
            FAILURES: streamed(csv_rows(300_000_000, lambda n: f"Invalid value {n} in field Lead Score")),
        }
    )
    report = run_child(server, tmp_path, timeout=600, results_path=str(tmp_path / "results"))
    assert report["error"] is None
    assert report["xcom"]["return_value"] < 1_000_000
    reasons = report["failure_reasons"]
    assert len(reasons) == 101 and reasons[OTHER_REASONS] > 1_000_000
    assert re.search(
        r"The failures file of batch 1040 holds [\d,]{9} rows where its status counts 1", report["log"]
    )
    assert report["peak_rss_mib"] < 300
