"""Records left out of what is sent (:class:`DroppingBody`): the bytes handed on are the source's
less exactly the records named, whether they are found a line at a time (no quotes) or record by
record (quoted fields with line breaks), and each part's pieces name the true bytes of the file."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from marketo_provider.sources import Source, open_body
from marketo_provider.sources.dropping import DroppingBody


def records(quoted: bool, count: int, rng: random.Random) -> list[bytes]:
    out = []
    for i in range(count):
        note = f'"line one\nline {i}"' if quoted and rng.random() < 0.2 else f"note{i}"
        out.append(f"u{i}@example.com,{note}\n".encode())
    return out


def read_all(body: DroppingBody) -> bytes:
    got = bytearray()
    buffer = bytearray(7_919)
    while n := body.readinto(memoryview(buffer)):
        got += buffer[:n]
    return bytes(got)


@pytest.mark.parametrize("quoted", [False, True], ids=["lines", "quoted"])
@pytest.mark.parametrize("density", [0.01, 0.5, 0.99])
def test_exactly_the_named_records_are_left_out(tmp_path: Path, quoted: bool, density: float) -> None:
    rng = random.Random(f"{quoted}-{density}")
    rows = records(quoted, 60_000, rng)
    path = tmp_path / "leads.csv"
    path.write_bytes(b"email,notes\n" + b"".join(rows))
    dropped = sorted(i for i in range(len(rows)) if rng.random() < density)
    gone = set(dropped)
    with open_body(Source.of(str(path))) as (_, inner):
        body = DroppingBody(inner, iter(dropped))
        got = read_all(body)
        assert got == b"".join(r for i, r in enumerate(rows) if i not in gone)
        assert body.records_dropped == len(dropped)
        # the pieces of what was handed on are the file's true bytes, records left out between them
        pieces = body.pieces(0, len(got))
        content = path.read_bytes()
        header = len(b"email,notes\n")  # content_start counts the file's bytes, the header's included
        rebuilt = b"".join(
            content[p.content_start + header - header : p.content_start + p.end - p.start] for p in pieces
        )
        assert rebuilt == got
        # where what is handed on ends, in the source: past every record, the ones left out included
        assert body.inner_offset(len(got)) == len(content) - header or (
            dropped and dropped[-1] != len(rows) - 1
        )
