"""A body over the limit is refused before it is read: by its Content-Length, or as a chunked body
streams in, on every path (uploads: the 10 MB file limit and its multipart framing; others: 64 KiB).
An answer given before the body is read (a refusal by the headers alone) closes the connection, so
the rest of the body is never read either."""

from __future__ import annotations

import select
import socket

import pytest
import requests

from marketo_provider.testing import MarketoSandbox
from marketo_provider.testing.spec import MAX_BODY_BYTES, MULTIPART_FRAMING_BYTES
from tests.helpers import RawClient

BIG = 400_000_000
CHUNK = 64 * 1024
MULTIPART = "multipart/form-data; boundary=b"
FILE_PART = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\n'


def request_head(sandbox: MarketoSandbox, method_path: str, content_type: str, *headers: str) -> bytes:
    lines = [
        f"{method_path} HTTP/1.1",
        f"Host: 127.0.0.1:{sandbox.port}",
        f"Content-Type: {content_type}",
        *headers,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    sock.settimeout(10)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def wait_closed(sock: socket.socket) -> None:
    """Wait until the server closes the connection. A server that closes with bytes of the body
    unread resets it, and a reset may discard the answer in flight: what it answered is read from
    the sandbox's record instead."""
    sock.settimeout(10)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass


def bearer(sandbox: MarketoSandbox) -> str:
    return f"Authorization: Bearer {RawClient(sandbox).authenticate()}"


@pytest.mark.parametrize(
    "path",
    [
        "/identity/oauth/token",
        "/bulk/v1/leads.json?format=csv",
        "/rest/v1/leads/describe2.json",
        "/sandbox-api/reset",
    ],
)
def test_a_declared_length_over_the_limit_is_refused_before_any_byte_of_the_body(
    sandbox: MarketoSandbox, path: str
) -> None:
    with socket.create_connection(("127.0.0.1", sandbox.port), timeout=10) as sock:
        sock.sendall(
            request_head(sandbox, f"POST {path}", MULTIPART, f"Content-Length: {BIG}", bearer(sandbox))
        )
        answer = read_answer(sock)  # no byte of the body was sent, and the server answered and closed
    assert answer.startswith(b"HTTP/1.1 413 ") and b"connection: close" in answer.lower()
    if not path.startswith("/sandbox-api"):
        assert sandbox.calls[-1].path == path.split("?")[0] and sandbox.calls[-1].status == 413


def test_an_upload_may_exceed_the_file_limit_by_its_framing_only() -> None:
    with MarketoSandbox(max_file_bytes=1000) as sb:
        token = bearer(sb)
        for length, wait, answered in ((1000 + MULTIPART_FRAMING_BYTES + 1, 10, True), (2000, 0.5, False)):
            with socket.create_connection(("127.0.0.1", sb.port), timeout=10) as sock:
                head = request_head(
                    sb, "POST /bulk/v1/leads.json?format=csv", MULTIPART, f"Content-Length: {length}", token
                )
                sock.sendall(head)
                readable, _, _ = select.select([sock], [], [], wait)
                assert bool(readable) is answered, length  # under the limit, it waits for the body
        assert sb.calls_to("/bulk/v1/leads.json")[0].status == 413
        # a file over the limit inside a body under it: read, then 413 as before
        too_big = b"email\n" + b"a@example.com\n" * 100
        assert RawClient(sb).upload("/bulk/v1/leads.json", too_big).status_code == 413


@pytest.mark.parametrize(
    ("method_path", "content_type", "limit"),
    [
        ("POST /identity/oauth/token", "application/x-www-form-urlencoded", MAX_BODY_BYTES),
        ("POST /bulk/v1/leads.json?format=csv", MULTIPART, 100_000 + MULTIPART_FRAMING_BYTES),
    ],
)
def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(
    method_path: str, content_type: str, limit: int
) -> None:
    """A chunked body has no length to refuse it by: the sandbox counts it as it streams and
    answers 413 once it passes the limit, without waiting for the rest (the client never ends it)."""
    with MarketoSandbox(max_file_bytes=100_000) as sb:
        token = bearer(sb) if "/bulk/" in method_path else "X-No-Token: 1"
        with socket.create_connection(("127.0.0.1", sb.port), timeout=10) as sock:
            sock.sendall(request_head(sb, method_path, content_type, "Transfer-Encoding: chunked", token))
            first = FILE_PART if content_type == MULTIPART else b""
            for _ in range(limit // CHUNK + 2):  # just past the limit, and the body's end never comes
                chunk, first = first + b"x" * (CHUNK - len(first)), b""
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            wait_closed(sock)  # closed by the sandbox, though the body never ended
        assert sb.calls[-1].status == 413


def test_an_answer_before_the_body_closes_the_connection(sandbox: MarketoSandbox) -> None:
    """A call refused by its headers alone (here: no access token, 601) is answered at once, and the
    connection closes, so the body the client has yet to send is never read."""
    with socket.create_connection(("127.0.0.1", sandbox.port), timeout=10) as sock:
        sock.sendall(
            request_head(
                sandbox, "POST /bulk/v1/leads.json?format=csv", MULTIPART, "Transfer-Encoding: chunked"
            )
        )
        answer = read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 200 ") and b"connection: close" in answer.lower()
    assert b'"code":"601"' in answer


def test_small_bodies_still_reach_the_calls(sandbox: MarketoSandbox) -> None:
    """Below the limit nothing changes: credentials in a form body are read to say they are not used."""
    form = {"client_id": "x", "client_secret": "y", "pad": "z" * (MAX_BODY_BYTES - 100)}
    answer = requests.post(sandbox.url + "/identity/oauth/token", data=form, timeout=10)
    assert answer.status_code == 401 and "sent in the request body" in answer.json()["error_description"]
