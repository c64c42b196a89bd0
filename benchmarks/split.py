"""Cutting speed and memory: cut a generated 200 MB CSV into parts, and copy it with
shutil.copyfileobj, in the same run. Both read the same file and write what they produce to a
file in the same folder in writes of the same size (copyfileobj's 64 KiB), so the ratio compares
like with like: the only difference is the cutting.

    python benchmarks/split.py [--mb 200] [--part-bytes 9500000]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from marketo_provider.sources import Source, source_parts
from marketo_provider.sources.base import DEFAULT_MAX_PART_BYTES

sys.path.insert(0, str(Path(__file__).parent))
from upload_memory import peak_rss_bytes, reset_peak_rss

WRITE_BYTES = shutil.COPY_BUFSIZE  # type: ignore[attr-defined]


def generate(path: Path, size: int) -> None:
    plain = "lead{0}@example.com,First{0},Last{0},Company {1},{2},plain note\n"
    quoted = 'lead{0}@example.com,First{0},Last{0},"Company, {1}",{2},"line one\nline ""two""\nline three"\n'
    with path.open("w", newline="") as out:
        out.write("email,firstName,lastName,company,leadScore,notes\n")
        i = 0
        block: list[str] = []
        while out.tell() < size:
            block.clear()
            for _ in range(10_000):
                template = quoted if i % 20 == 0 else plain
                block.append(template.format(i, i % 977, i % 100))
                i += 1
            out.write("".join(block))


def copy(source: Path, dest: Path) -> float:
    started = time.perf_counter()
    with source.open("rb") as src, dest.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    return time.perf_counter() - started


def cut(source: Path, dest: Path, part_bytes: int) -> tuple[float, int, int]:
    reset_base = reset_peak_rss()
    started = time.perf_counter()
    parts = 0
    with source_parts(Source.of(str(source), max_part_bytes=part_bytes)) as cut_parts, dest.open("wb") as dst:
        for part in cut_parts:
            data = part.data
            for at in range(0, len(data), WRITE_BYTES):
                dst.write(data[at : at + WRITE_BYTES])
            parts += 1
    elapsed = time.perf_counter() - started
    return elapsed, parts, peak_rss_bytes() - reset_base


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=float, default=200)
    parser.add_argument("--part-bytes", type=int, default=DEFAULT_MAX_PART_BYTES)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    mib = 1024 * 1024
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "source.csv"
        generate(source, int(args.mb * 1_000_000))
        size = source.stat().st_size
        copies, cuts, growth, parts = [], [], 0, 0
        for _ in range(args.rounds):  # alternate, so both see the same machine state
            copies.append(copy(source, Path(tmp) / "copy.csv"))
            elapsed, parts, grown = cut(source, Path(tmp) / "parts.csv", args.part_bytes)
            cuts.append(elapsed)
            growth = max(growth, grown)
    copy_speed = size / min(copies) / mib
    cut_speed = size / min(cuts) / mib
    ratio = cut_speed / copy_speed
    print(f"source: {size / mib:.1f} MiB, cut into {parts} parts of at most {args.part_bytes:,} bytes")
    print(f"shutil.copyfileobj: {copy_speed:8.1f} MiB/s (best of {args.rounds})")
    print(f"cutting into parts: {cut_speed:8.1f} MiB/s (best of {args.rounds})")
    print(f"speed ratio cut/copy: {ratio:.2f} (target >= 0.50): {'met' if ratio >= 0.5 else 'NOT met'}")
    limit = args.part_bytes + 16 * mib
    print(
        f"peak RSS growth while cutting: {growth / mib:.1f} MiB (target < part size + 16 MiB = {limit / mib:.1f} MiB): "
        f"{'met' if growth < limit else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
