"""Errors no retry can fix fail the task at once, before anything is imported, with a message that
says what to fix and holds no secret; text a server echoes never reaches a message or an event."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from marketo_provider._compat import AirflowException, AirflowFailException
from marketo_provider.api import ImportTarget, MarketoError, ObjectType
from marketo_provider.hooks.marketo import MarketoHook, clear_token_cache
from marketo_provider.importing import ImportState
from marketo_provider.operators.bulk_import import MarketoBulkImportOperator
from marketo_provider.testing import MarketoSandbox
from marketo_provider.triggers.bulk_import import MarketoBulkImportTrigger
from tests.conftest import free_port
from tests.helpers import leads_csv


class FakeTI:
    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


def use_connection(monkeypatch: pytest.MonkeyPatch, **conn: Any) -> None:
    clear_token_cache()
    monkeypatch.setenv("AIRFLOW_CONN_MARKETO_DEFAULT", json.dumps({"conn_type": "marketo", **conn}))


def run_operator(source: Path, **kwargs: Any) -> tuple[BaseException, float]:
    op = MarketoBulkImportOperator(task_id="import", source=str(source), poll_interval=0.05, **kwargs)
    started = time.monotonic()
    with pytest.raises(AirflowException) as raised:
        op.execute({"ti": FakeTI()})  # type: ignore[arg-type]
    return raised.value, time.monotonic() - started


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "leads.csv"
    path.write_bytes(leads_csv(20)[0])
    return path


@pytest.fixture
def sandbox_conn(sandbox: MarketoSandbox, monkeypatch: pytest.MonkeyPatch) -> MarketoSandbox:
    use_connection(monkeypatch, host=sandbox.url, login=sandbox.client_id, password=sandbox.client_secret)
    return sandbox


def assert_failed_fast(
    sandbox: MarketoSandbox | None, error: BaseException, elapsed: float, secrets: tuple[str, ...] = ()
) -> None:
    assert isinstance(error, AirflowFailException), error  # no Airflow retry can fix it
    assert elapsed < 15  # the bound fail-fast promises, with default retry settings
    text = str(error)
    for secret in secrets:
        assert secret not in text
    if sandbox is not None:
        assert sandbox.calls_to("/bulk/*/leads.json") == [] and sandbox.calls_to("/bulk/v1/leads.json") == []


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("http://127.0.0.1:{free}", "connection was refused: check the host and port"),
        ("https://127.0.0.1:{port}", "TLS handshake failed; if the server speaks plain HTTP write http://"),
        ("127.0.0.1:{port}", "TLS handshake failed; if the server speaks plain HTTP write http://"),
    ],
)
def test_a_wrong_host_port_or_scheme_fails_at_once(
    sandbox: MarketoSandbox, monkeypatch: pytest.MonkeyPatch, source: Path, host: str, expected: str
) -> None:
    use_connection(
        monkeypatch,
        host=host.format(free=free_port(), port=sandbox.port),
        login=sandbox.client_id,
        password=sandbox.client_secret,
    )
    error, elapsed = run_operator(source)
    assert expected in str(error)
    assert_failed_fast(sandbox, error, elapsed, (sandbox.client_secret, "client_secret="))
    assert sandbox.calls == []


def test_refused_credentials_fail_at_once_naming_the_connection(
    sandbox: MarketoSandbox, monkeypatch: pytest.MonkeyPatch, source: Path
) -> None:
    use_connection(monkeypatch, host=sandbox.url, login=sandbox.client_id, password="wrong-secret")
    error, elapsed = run_operator(source)
    assert "refused the client id / client secret of Airflow connection 'marketo_default'" in str(error)
    assert_failed_fast(sandbox, error, elapsed, ("wrong-secret",))
    assert len(sandbox.calls_to("/identity/oauth/token")) == 1  # not retried


def test_a_wrong_identity_url_is_a_404_naming_what_to_check(
    sandbox: MarketoSandbox, monkeypatch: pytest.MonkeyPatch, source: Path
) -> None:
    use_connection(
        monkeypatch,
        host=sandbox.url,
        login=sandbox.client_id,
        password=sandbox.client_secret,
        extra={"identity_url": sandbox.url + "/elsewhere"},
    )
    error, elapsed = run_operator(source)
    assert "the identity service is not at this URL" in str(error) and "identity_url" in str(error)
    assert_failed_fast(sandbox, error, elapsed, (sandbox.client_secret,))


@pytest.mark.parametrize("code", ["603", "1003", "1006"])
def test_codes_no_retry_can_fix_fail_at_once(sandbox_conn: MarketoSandbox, source: Path, code: str) -> None:
    sandbox_conn.inject_fault("/rest/v1/leads/describe2.json", code=code, count=5)
    error, elapsed = run_operator(source)
    assert f"Marketo error {code}" in str(error)
    assert_failed_fast(sandbox_conn, error, elapsed)
    assert len(sandbox_conn.calls_to("/rest/v1/leads/describe2.json")) == 1  # not retried


@pytest.mark.parametrize("code", ["1008", "1011"])
def test_a_refused_create_fails_at_once_saying_what_was_submitted(
    sandbox_conn: MarketoSandbox, source: Path, code: str
) -> None:
    sandbox_conn.inject_fault("/bulk/v1/leads.json", code=code, count=5)
    error, elapsed = run_operator(source)
    assert isinstance(error, AirflowFailException) and f"Marketo error {code}" in str(error)
    assert "submitted: none" in str(error) and elapsed < 15
    assert len(sandbox_conn.calls_to("/bulk/v1/leads.json")) == 1


@pytest.mark.parametrize(
    ("verify", "expected"),
    [("flase", "extra 'verify' is 'flase'"), ("/nonexistent/ca.pem", "which does not exist")],
)
def test_a_bad_verify_setting_names_the_extra(
    sandbox: MarketoSandbox, monkeypatch: pytest.MonkeyPatch, source: Path, verify: str, expected: str
) -> None:
    use_connection(
        monkeypatch,
        host=sandbox.url,
        login=sandbox.client_id,
        password=sandbox.client_secret,
        extra={"verify": verify},
    )
    error, elapsed = run_operator(source)
    assert expected in str(error)
    assert_failed_fast(sandbox, error, elapsed)
    assert sandbox.calls == []


def test_connection_test_answers_within_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    use_connection(monkeypatch, host=f"http://127.0.0.1:{free_port()}", login="id", password="s3cret")
    started = time.monotonic()
    ok, message = MarketoHook().test_connection()
    assert not ok and "connection was refused" in message and "s3cret" not in message
    assert time.monotonic() - started < 15


# ---- a server (or proxy) that echoes the request in its error answers ---------------------------


class _Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"error": "bad request", "you sent": dict(self.headers), "url": self.path}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def echo_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_echoed_request_never_reaches_a_message_or_an_event(
    sandbox: MarketoSandbox,
    echo_server: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    use_connection(
        monkeypatch,
        host=echo_server,
        login=sandbox.client_id,
        password=sandbox.client_secret,
        extra={"identity_url": sandbox.url + "/identity"},
    )
    hook = MarketoHook(max_attempts=1)
    with pytest.raises(MarketoError) as raised:
        hook.get_import_status("leads", 1001)
    token = sandbox.backend._current_token
    assert token and token not in str(raised.value) and "HTTP 400" in str(raised.value)
    state = ImportState.for_batches(ImportTarget(ObjectType.LEADS), [1001], time.time() + 30)

    async def first_event() -> dict[str, Any]:
        async for event in MarketoBulkImportTrigger(state.to_json(), poll_interval=0.01).run():
            return event.payload
        raise AssertionError("no event")

    event = asyncio.run(first_event())
    assert event["event"] == "error" and "HTTP 400" in event["message"]
    assert token not in json.dumps(event) and sandbox.client_secret not in json.dumps(event)
    assert token not in caplog.text and sandbox.client_secret not in caplog.text
