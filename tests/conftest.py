"""Test set-up: a throwaway AIRFLOW_HOME before anything imports Airflow, and sandbox fixtures."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

# One per process: each pytest-xdist worker (`make test` runs the suite on every core) has its own
# AIRFLOW_HOME, so its own SQLite metadata database, migrated once per worker (tests/e2e/conftest.py).
_AIRFLOW_HOME = tempfile.mkdtemp(
    prefix=f"marketo-provider-tests-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-"
)
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")

import pytest  # noqa: E402

from marketo_provider.testing import MarketoSandbox  # noqa: E402


@pytest.fixture(autouse=True)
def no_exit_window(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Triggers run in the test's own process here (no scheduler, no worker to race), so their
    events need not wait out Airflow's window for a deferring worker's exit (10 s by default).
    System tests run real Airflow processes, which keep it."""
    if request.path.parent.name == "system":
        return
    monkeypatch.setattr("marketo_provider.triggers.bulk_import.exit_window_seconds", lambda: 0.0)


@pytest.fixture
def sandbox() -> Iterator[MarketoSandbox]:
    """A fast sandbox: jobs queue for 0.05 s and import for 0.1 s."""
    with MarketoSandbox(queued_seconds=0.05, import_seconds=0.1) as sb:
        yield sb


@pytest.fixture
def manual_sandbox() -> Iterator[MarketoSandbox]:
    """A sandbox whose clock only moves when the test says so."""
    with MarketoSandbox(manual_clock=True, queued_seconds=1.0, import_seconds=5.0) as sb:
        yield sb


@pytest.fixture
def marketo_env(sandbox: MarketoSandbox, monkeypatch: pytest.MonkeyPatch) -> MarketoSandbox:
    """The fast sandbox, wired in as the ``marketo_default`` connection, with a clean token cache."""
    from marketo_provider.hooks.marketo import clear_token_cache

    clear_token_cache()
    for key, value in sandbox.env().items():
        monkeypatch.setenv(key, value)
    return sandbox


def fast_hook(conn_id: str = "marketo_default", **kwargs: object):  # type: ignore[no-untyped-def]
    """A hook whose retries wait milliseconds instead of seconds."""
    from marketo_provider.hooks.marketo import MarketoHook

    options = {
        "retry_base_seconds": 0.01,
        "rate_limit_wait_seconds": 0.05,
        "max_attempts": 5,
        "calls_per_window": None,  # the sandbox's rate limit is what these tests meet
        **kwargs,
    }
    return MarketoHook(conn_id, **options)  # type: ignore[arg-type]


def free_port() -> int:
    """A local TCP port nothing listens on (free at the time of the call)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Under pytest-xdist (``-n``): the grouping and order of ``tests/parallel.py``."""
    from tests.parallel import GroupScheduling

    return GroupScheduling(config, log)  # type: ignore[arg-type]
