"""Stable 64-bit hashes of a row's key and values (the ledger's and the confirmed state's), and the
fingerprint that says a source is still the one a ledger was written from."""

from __future__ import annotations

import sys
import zlib
from array import array
from collections.abc import Sequence
from typing import Any

from marketo_provider.sources.listing import list_files
from marketo_provider.sources.model import QuerySource

SEP = "\x1f"  # between the values of a row, and a key's parts, before they are hashed
_HALF = next(t for t in "IL" if array(t).itemsize == 4)  # an unsigned 32-bit integer
_HIGH = 1 if sys.byteorder == "little" else 0  # where the high half of a 64-bit integer lies


def stable_hash(text: str) -> int:
    """A 64-bit hash of ``text`` that every process computes alike (unlike ``hash``), as a signed
    integer SQLite stores: two C checksums side by side."""
    data = text.encode("utf-8", "surrogatepass")
    value = (zlib.crc32(data) << 32) | zlib.adler32(data)
    return value - (1 << 64) if value >= 1 << 63 else value


def stable_hashes(data: Sequence[bytes]) -> list[int]:
    """:func:`stable_hash` of many UTF-8 texts at once, computed in C: each text's two checksums
    laid side by side in memory and read back as one signed 64-bit integer."""
    pairs = array(_HALF, bytes(8 * len(data)))
    pairs[_HIGH::2] = array(_HALF, map(zlib.crc32, data))
    pairs[1 - _HIGH :: 2] = array(_HALF, map(zlib.adler32, data))
    return memoryview(pairs).cast("B").cast("q").tolist()


def source_fingerprint(source: Any) -> dict[str, Any] | None:
    """What says a source is still the one a ledger was written from: its files' names and sizes,
    and the first and last bytes of its first and last files (None for a query: read once)."""
    if isinstance(source, QuerySource):
        return None
    files = list_files(source)
    digest = 0
    total = 0
    for f in files:
        digest = stable_hash(f"{digest}{SEP}{f.name}{SEP}{f.size}")
        total += f.size or 0
    ends = []
    for f in {id(x): x for x in (files[:1] + files[-1:])}.values():
        ends.append(_ends(f))
    return {"files": len(files), "bytes": total, "names_and_sizes": digest, "ends": ends}


def _ends(file: Any, size: int = 256) -> list[str]:
    """The first and last bytes of a file (hex), as far as it can be read without reading it all."""
    with file.open() as handle:
        head = handle.read(size)
        tail = b""
        try:
            if file.size and file.size > size and handle.seekable():
                handle.seek(file.size - size)
                tail = handle.read(size)
        except (OSError, ValueError):
            tail = b""
    return [head.hex(), tail.hex()]
