"""Real Airflow processes: the CLI sees the provider and tests the connection against the sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from marketo_provider.testing import MarketoSandbox


def airflow(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "airflow", *args], capture_output=True, text=True, env=env, timeout=180
    )


def test_connections_test_against_the_sandbox() -> None:
    with MarketoSandbox() as sandbox:
        env = {**os.environ, **sandbox.env(), "AIRFLOW__CORE__TEST_CONNECTION": "Enabled"}
        ok = airflow("connections", "test", "marketo_default", env=env)
        assert "Connection success!" in ok.stdout, ok.stdout + ok.stderr
        assert sandbox.client_secret not in ok.stdout + ok.stderr
        bad = {
            **env,
            **{k: v.replace(sandbox.client_secret, "wrong-secret") for k, v in sandbox.env().items()},
        }
        refused = airflow("connections", "test", "marketo_default", env=bad)
        out = refused.stdout + refused.stderr
        assert "Connection failed" in out and "Client Secret" in out and "wrong-secret" not in out


def test_sandbox_command_prints_the_connection() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "marketo_provider.testing",
            "--port",
            "0",
            "--client-id",
            "cli-id",
            "--client-secret",
            "cli-secret",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        import json

        conn = json.loads(line)
        assert conn["conn_type"] == "marketo" and conn["host"].startswith("http://127.0.0.1:")
        assert (conn["login"], conn["password"]) == ("cli-id", "cli-secret")
        import requests

        token = requests.post(
            conn["host"] + "/identity/oauth/token",
            params={
                "grant_type": "client_credentials",
                "client_id": conn["login"],
                "client_secret": conn["password"],
            },
            timeout=5,
        )
        assert token.status_code == 200
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0


def test_airflow_providers_list_cli() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list", "--output", "json"],
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=180,
        check=True,
    ).stdout
    names = [p["package_name"] for p in json.loads(out[out.index("[{") :])]
    assert "airflow-provider-marketo" in names
