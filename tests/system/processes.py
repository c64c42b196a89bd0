"""Processes that system tests start: each in a session of its own with its output in a log file,
stopped with everything it started, even when the test fails."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def stop_tree(
    *processes: subprocess.Popen[Any] | psutil.Process, sig: int = signal.SIGTERM, grace: float = 3
) -> None:
    """Stop processes and every process they started, all at once. Task workers put themselves in
    process groups of their own, so killing a group alone can leave a stuck worker running. What
    is still running ``grace`` seconds after the signal is killed (nothing waits for a throwaway
    deployment's graceful shutdown)."""
    tree: list[psutil.Process] = []
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            root = psutil.Process(process.pid)
            tree += [root, *root.children(recursive=True)]  # listed before parents exit and orphan them
    for process in processes:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
    for proc in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(sig)
    _, alive = psutil.wait_procs(tree, timeout=grace if sig != signal.SIGKILL else 10)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(alive, timeout=10)
    for process in processes:
        if isinstance(process, subprocess.Popen):
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)


class Processes:
    """Named long-running processes with logs under one folder; ``stop_all`` at teardown."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        logs.mkdir(parents=True, exist_ok=True)
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self._starts: dict[str, int] = {}

    def start(
        self,
        name: str,
        args: list[str],
        *,
        env: dict[str, str],
        cwd: Path | None = None,
        user: str | None = None,
    ) -> subprocess.Popen[bytes]:
        if name in self.running and self.running[name].poll() is None:
            raise RuntimeError(f"{name} is already running")
        self._starts[name] = self._starts.get(name, 0) + 1
        log_path = self.log_path(name)
        with log_path.open("ab") as log:
            log.write(f"\n==== start {self._starts[name]}: {' '.join(args)}\n".encode())
            log.flush()
            process = subprocess.Popen(
                args,
                env=env,
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                user=user,
            )
        self.running[name] = process
        return process

    def airflow(self, name: str, *args: str, env: dict[str, str], cwd: Path | None = None) -> None:
        self.start(name, [sys.executable, "-m", "airflow", *args], env=env, cwd=cwd)

    def log_path(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def log(self, name: str) -> str:
        path = self.log_path(name)
        return path.read_text(errors="replace") if path.exists() else ""

    def alive(self, name: str) -> bool:
        return name in self.running and self.running[name].poll() is None

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        process = self.running.pop(name, None)
        if process is not None:
            stop_tree(process, sig=sig)

    def stop_all(self) -> None:
        """Airflow's processes first, together, then the servers they use."""
        servers = [name for name in ("postgres", "redis") if name in self.running]
        stop_tree(*(p for name, p in self.running.items() if name not in servers))
        stop_tree(*(self.running[name] for name in servers))
        self.running.clear()

    def tails(self, chars: int = 3000) -> str:
        """The end of every log, for an assertion message."""
        return "\n".join(
            f"---- {path.name}\n{path.read_text(errors='replace')[-chars:]}"
            for path in sorted(self.logs.glob("*.log"))
        )
