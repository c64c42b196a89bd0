"""A Marketo that misbehaves, on a loopback port: raw sockets, so it can send what no web framework
would (a body that never ends, a body that trickles, answers that lie about batches and counts,
secrets echoed back).

    with HostileMarketo({"/bulk/v1/leads/batch/1040.json": endless(b"x" * 65536)}) as server:
        monkeypatch.setenv(*server.env_item())
        ...  # MarketoHook() / an import against it

Routes map a path (the query left out) to a handler that writes the whole answer to the socket.
The identity call answers :data:`TOKEN` unless a route says otherwise. Every handler stops when
the client goes away or the server stops.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

CLIENT_ID = "hostile-client-id"
CLIENT_SECRET = "s3cr3t-CLIENT-value-4242"  # what the connection sends as its client secret
TOKEN = "tok3n-ACCESS-value-1717:ab"  # what the identity call hands out
TOKEN_PATH = "/identity/oauth/token"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]


Handler = Callable[[Request, socket.socket, threading.Event], None]


def _head(status: int, content_type: str, length: int | None) -> bytes:
    lines = [f"HTTP/1.1 {status} X", f"Content-Type: {content_type}", "Connection: close"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def json_answer(body: Any, status: int = 200) -> Handler:
    """Answer with ``body`` as JSON."""
    data = json.dumps(body).encode()

    def handle(request: Request, conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(_head(status, "application/json;charset=UTF-8", len(data)) + data)

    return handle


def endless(chunk: bytes, *, pause: float = 0.0, content_type: str = "application/json") -> Handler:
    """A body that never ends: ``chunk`` again and again (``pause`` seconds apart), no length given."""

    def handle(request: Request, conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(_head(200, content_type, None))
        while not stop.is_set():
            conn.sendall(chunk)
            if pause:
                time.sleep(pause)

    return handle


def streamed(blocks: Callable[[], Iterable[bytes]], content_type: str = "text/csv;charset=UTF-8") -> Handler:
    """A body of the given blocks (made afresh for each request), no length given."""

    def handle(request: Request, conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(_head(200, content_type, None))
        for block in blocks():
            if stop.is_set():
                return
            conn.sendall(block)

    return handle


def created(batch_id: Any = 1040) -> Handler:
    """The create answer of Adobe's docs, with the given batch id."""
    return json_answer(
        {
            "requestId": "r1",
            "success": True,
            "result": [{"batchId": batch_id, "importId": str(batch_id), "status": "Queued"}],
        }
    )


def status(**entry: Any) -> Handler:
    """A status answer whose entry is batch 1040, Complete, without failures, and ``entry``."""
    body = {
        "batchId": 1040,
        "importId": "1040",
        "status": "Complete",
        "numOfLeadsProcessed": 1,
        "numOfRowsFailed": 0,
        "numOfRowsWithWarning": 0,
        "message": "Import completed",
        **entry,
    }
    return json_answer({"requestId": "r2", "success": True, "result": [body]})


class HostileMarketo:
    def __init__(self, routes: dict[str, Handler] | None = None) -> None:
        self.routes: dict[str, Handler] = {
            TOKEN_PATH: json_answer(
                {"access_token": TOKEN, "token_type": "bearer", "expires_in": 3599, "scope": "x"}
            ),
            **(routes or {}),
        }
        self.requests: list[Request] = []
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)  # so that the accepting thread sees the stop
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)

    def env_item(self, conn_id: str = "marketo_default", **extra: Any) -> tuple[str, str]:
        conn: dict[str, Any] = {
            "conn_type": "marketo",
            "host": self.url,
            "login": CLIENT_ID,
            "password": CLIENT_SECRET,
        }
        if extra:
            conn["extra"] = extra
        return f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn)

    def __enter__(self) -> HostileMarketo:
        self._accepting.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._accepting.join(timeout=5)
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(30)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                request = _read_request(conn)
                self.requests.append(request)
                handler = self.routes.get(request.path) or json_answer({"error": "no route"}, status=404)
                handler(request, conn, self._stop)
            except OSError:
                return  # the client went away


def _read_request(conn: socket.socket) -> Request:
    """Read one request, its body (of a given Content-Length) read and dropped."""
    data = b""
    while b"\r\n\r\n" not in data:
        more = conn.recv(65536)
        if not more:
            raise ConnectionResetError("no request")
        data += more
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {
        k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)
    }
    left = int(headers.get("content-length", "0")) - len(rest)
    while left > 0:
        more = conn.recv(min(left, 1 << 20))
        if not more:
            break
        left -= len(more)
    return Request(method, target.split("?", 1)[0], headers)


def csv_rows(
    total_bytes: int, reason: Callable[[int], str], header: bytes = b"email,Import Failure Reason\n"
) -> Callable[[], Iterator[bytes]]:
    """A failures file of about ``total_bytes``: the header, then rows ``l<i>@example.com,<reason(i)>``
    in blocks of ten thousand."""

    def blocks() -> Iterator[bytes]:
        yield header
        sent = len(header)
        i = 0
        while sent < total_bytes:
            block = "".join(f"l{n}@example.com,{reason(n)}\n" for n in range(i, i + 10_000)).encode()
            i += 10_000
            sent += len(block)
            yield block

    return blocks
