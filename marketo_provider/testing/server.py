"""``MarketoSandbox``: the sandbox served over real HTTP on a free loopback port."""

from __future__ import annotations

import json
import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

from marketo_provider.testing.app import create_app
from marketo_provider.testing.backend import MarketoBackend
from marketo_provider.testing.catalog import CustomObjectType
from marketo_provider.testing.clock import Clock
from marketo_provider.testing.config import SandboxConfig
from marketo_provider.testing.faults import CallRecord, Fault
from marketo_provider.testing.jobs import Job
from marketo_provider.testing.schema import SchemaSource


class MarketoSandbox:
    """A local, faithful Marketo bulk-import server for tests, benchmarks and demos.

    Use it as a context manager::

        with MarketoSandbox(import_seconds=0.2) as sandbox:
            os.environ["AIRFLOW_CONN_MARKETO_DEFAULT"] = sandbox.connection_json()
            ...
            assert len(sandbox.imported_rows("leads")) == 3

    Keyword arguments are :class:`SandboxConfig` fields (``token_life``, ``queued_seconds``,
    ``import_seconds``, ``max_importing``, ``max_queued``, ``rate_limit``, ``concurrency_limit``,
    ``daily_quota``, ...). ``manual_clock=True`` stops time until ``advance`` or ``run_until_idle``.
    ``ssl_certfile`` and ``ssl_keyfile`` serve it over https, as Marketo is (``url`` says https).
    ``schema`` gives it a team's own fields: the path of a schema file of describe answers saved
    from their instance, or that file's parsed JSON (see ``marketo_provider.testing.schema``); a
    bad schema raises :class:`~marketo_provider.testing.schema.SchemaError` naming what to fix.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        manual_clock: bool = False,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        schema: SchemaSource | None = None,
        **config: Any,
    ) -> None:
        self.host = host
        self.port = port
        self.ssl_certfile = ssl_certfile
        self.ssl_keyfile = ssl_keyfile
        self.backend = MarketoBackend(SandboxConfig(**config), Clock(manual=manual_clock), schema)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> MarketoSandbox:
        if self._server is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._socket = sock
        config = uvicorn.Config(
            create_app(self.backend),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
            ssl_certfile=self.ssl_certfile,
            ssl_keyfile=self.ssl_keyfile,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="marketo-sandbox", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the Marketo sandbox did not start")
            time.sleep(0.01)
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> MarketoSandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ---- what a client needs -----------------------------------------------------------------

    @property
    def url(self) -> str:
        """The REST base URL (identity lives under ``<url>/identity``)."""
        scheme = "https" if self.ssl_certfile else "http"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def client_id(self) -> str:
        return self.backend.config.client_id

    @property
    def client_secret(self) -> str:
        return self.backend.config.client_secret

    def connection(self, **extra: Any) -> dict[str, Any]:
        """The Airflow connection, as the dict of ``AIRFLOW_CONN_<ID>`` JSON."""
        conn: dict[str, Any] = {
            "conn_type": "marketo",
            "host": self.url,
            "login": self.client_id,
            "password": self.client_secret,
        }
        if extra:
            conn["extra"] = extra
        return conn

    def connection_json(self, **extra: Any) -> str:
        """JSON for ``AIRFLOW_CONN_MARKETO_DEFAULT`` (or any other connection id)."""
        return json.dumps(self.connection(**extra))

    def env(self, conn_id: str = "marketo_default", **extra: Any) -> dict[str, str]:
        """``{"AIRFLOW_CONN_<ID>": json}``, ready for ``os.environ.update`` or ``monkeypatch``."""
        return {f"AIRFLOW_CONN_{conn_id.upper()}": self.connection_json(**extra)}

    # ---- driving and inspecting --------------------------------------------------------------

    @property
    def clock(self) -> Clock:
        return self.backend.clock

    @property
    def calls(self) -> list[CallRecord]:
        return list(self.backend.calls)

    @property
    def jobs(self) -> list[Job]:
        return list(self.backend.iter_jobs())

    def calls_to(self, pattern: str, method: str | None = None) -> list[CallRecord]:
        return self.backend.calls_to(pattern, method)

    def inject_fault(self, path: str, *, count: int = 1, **kwargs: Any) -> Fault:
        return self.backend.inject_fault(path, count=count, **kwargs)

    def fail_next_job(self, message: str = "Failed to import: internal error") -> None:
        self.backend.fail_next_job(message)

    def fail_job(self, batch_id: int, message: str = "Failed to import: internal error") -> None:
        self.backend.fail_job(batch_id, message)

    def hold_next_jobs(self, count: int = 1) -> None:
        self.backend.hold_next_jobs(count)

    def release(self, batch_id: int | None = None) -> None:
        self.backend.release(batch_id)

    def advance(self, seconds: float) -> None:
        self.backend.clock.advance(seconds)
        self.backend.advance()

    def run_until_idle(self) -> None:
        self.backend.run_until_idle()

    def expire_tokens(self) -> None:
        self.backend.expire_tokens()

    def register_custom_object(self, obj: CustomObjectType) -> None:
        self.backend.register_custom_object(obj)

    def imported_rows(self, object_type: str, custom_object_name: str | None = None) -> list[dict[str, str]]:
        return self.backend.imported_rows(object_type, custom_object_name)

    def reset(self) -> None:
        """Forget jobs, imported rows, leads, calls, faults and call counts (``POST /sandbox-api/reset``
        does the same over HTTP); settings, fields and tokens stay."""
        self.backend.reset()
