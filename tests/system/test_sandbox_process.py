"""A sandbox started from the shell, read from other processes over its own HTTP paths; its memory
when a client sends a body far over the limit."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from marketo_provider.hooks.marketo import clear_token_cache
from tests.conftest import fast_hook, free_port
from tests.helpers import write_schema

CLI = [sys.executable, "-m", "marketo_provider.testing"]


@pytest.fixture
def shell_sandbox(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    """``python -m marketo_provider.testing --port N --schema FILE`` and the connection it printed."""
    schema = write_schema(tmp_path / "describe-answers.json")
    port = free_port()
    args = [
        "--port",
        str(port),
        "--schema",
        str(schema),
        "--queued-seconds",
        "0.05",
        "--import-seconds",
        "0.1",
    ]
    proc = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else ""
        yield proc, json.loads(line)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The sandbox's CLI in a process of its own."""
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60)


def test_another_process_reads_the_rows_a_shell_started_sandbox_imported(
    shell_sandbox: tuple[subprocess.Popen[str], dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, conn = shell_sandbox
    url = conn["host"]
    monkeypatch.setenv("AIRFLOW_CONN_MARKETO_DEFAULT", json.dumps(conn))
    clear_token_cache()
    hook = fast_hook()
    source = tmp_path / "leads.csv"
    source.write_text("email,accountTier\n" + "".join(f"lead{i}@example.com,gold\n" for i in range(150)))
    batch = hook.submit_import("leads", source)["batchId"]
    deadline = time.monotonic() + 20
    while hook.get_import_status("leads", batch)["status"] != "Complete":
        assert time.monotonic() < deadline
        time.sleep(0.1)

    # a page by default, and the count on stderr
    page = cli("rows", "leads", "--url", url)
    assert page.returncode == 0, page.stderr
    assert len(page.stdout.splitlines()) == 100
    assert "rows 1-100 of 150; more from --offset 100, or --all" in page.stderr
    every = cli("rows", "leads", "--url", url, "--all")
    rows = [json.loads(line) for line in every.stdout.splitlines()]
    assert rows == [{"email": f"lead{i}@example.com", "accountTier": "gold"} for i in range(150)]
    (job,) = [json.loads(line) for line in cli("jobs", "--url", url).stdout.splitlines()]
    assert (job["batch_id"], job["status"], job["rows_processed"]) == (batch, "Complete", 150)
    calls = cli("calls", "--url", url, "--path", "/bulk/*").stdout
    assert conn["password"] not in cli("calls", "--url", url).stdout and "/bulk/v1/leads.json" in calls

    # the same over plain HTTP, with no token
    answer = requests.get(f"{url}/sandbox-api/rows/leads", params={"offset": 149}, timeout=10).json()
    assert answer["total"] == 150 and answer["rows"] == [rows[-1]]

    reset = cli("reset", "--url", url)
    assert reset.returncode == 0 and json.loads(reset.stdout) == {"reset": True}
    empty = cli("rows", "leads", "--url", url)
    assert empty.stdout == "" and "rows 0-0 of 0" in empty.stderr


def test_the_cli_says_what_is_wrong(shell_sandbox: tuple[subprocess.Popen[str], dict[str, Any]]) -> None:
    _, conn = shell_sandbox
    unknown = cli("rows", "custom_objects", "car_c", "--url", conn["host"])
    assert unknown.returncode == 1
    assert "error: no custom object 'car_c' in this sandbox; it has subscription_c" in unknown.stderr
    nobody = cli("jobs", "--url", f"http://127.0.0.1:{free_port()}")
    assert nobody.returncode == 1 and "error: no sandbox answers at" in nobody.stderr


def test_a_bad_schema_file_stops_the_command_with_what_to_fix(tmp_path: Path) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"leads": {"success": False, "errors": [{"code": "601", "message": "x"}]}}))
    started = cli("--port", "0", "--schema", str(schema))
    assert started.returncode == 2
    assert f"{schema}, leads: the saved answer is Marketo's error 601" in started.stderr


def send_huge(port: int, head: str, chunked: bool, total: int = 400_000_000) -> int:
    """Send up to ``total`` bytes of body until the server closes; returns how many were sent."""
    block = b"x" * (1024 * 1024)
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode())
        try:
            while sent < total:
                sock.sendall(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
                sent += len(block)
        except (BrokenPipeError, ConnectionResetError):
            pass
    return sent


def test_a_400_mb_body_leaves_the_sandbox_memory_as_it_was(
    shell_sandbox: tuple[subprocess.Popen[str], dict[str, Any]],
) -> None:
    """Before the limit, a 400 MB POST to the identity path grew the sandbox from 37 MB to 1.2 GB."""
    proc, conn = shell_sandbox
    port = int(conn["host"].rsplit(":", 1)[1])
    sandbox = psutil.Process(proc.pid)
    token_path = "POST /identity/oauth/token HTTP/1.1\r\nHost: x\r\n"
    form = "Content-Type: application/x-www-form-urlencoded\r\n"
    requests.get(f"{conn['host']}/sandbox-api/jobs", timeout=10)  # the server has answered once
    before = sandbox.memory_info().rss
    sent_declared = send_huge(port, token_path + form + "Content-Length: 400000000\r\n\r\n", chunked=False)
    sent_chunked = send_huge(port, token_path + form + "Transfer-Encoding: chunked\r\n\r\n", chunked=True)
    after = sandbox.memory_info().rss
    growth_mib = (after - before) / 2**20
    print(
        f"sandbox RSS {before / 2**20:.0f} MiB -> {after / 2**20:.0f} MiB; sent {sent_declared:,} and {sent_chunked:,} bytes"
    )
    assert growth_mib < 32
    assert sent_declared < 400_000_000 and sent_chunked < 400_000_000  # the sandbox closed on them
    calls = requests.get(f"{conn['host']}/sandbox-api/calls", timeout=10).json()["calls"]
    assert [(c["path"], c["status"]) for c in calls] == [("/identity/oauth/token", 413)] * 2
