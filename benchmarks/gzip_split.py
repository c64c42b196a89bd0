"""Cutting a gzip source: speed and memory of cutting a generated 1 GB (uncompressed) CSV, stored
gzip-compressed, into parts, against ``gzip -dc file > /dev/null`` of the same file in the same
run. Each side runs in its own process, so peak RSS is the cutter's alone; both write what they
produce to /dev/null. The pre-flight pass (UTF-8 check and record count as well) is timed too.

    python benchmarks/gzip_split.py [--mb 1000] [--part-bytes 9500000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from split import generate
from upload_memory import peak_rss_bytes, reset_peak_rss

from marketo_provider.sources.base import DEFAULT_MAX_PART_BYTES

MIB = 1024 * 1024


def child(mode: str, path: str, part_bytes: int) -> None:
    """Run in a fresh process: cut (or pre-flight) the source and print time, parts and peak RSS growth."""
    from marketo_provider.sources import Source, preflight, source_parts

    source = Source.of(path, max_part_bytes=part_bytes)
    base = reset_peak_rss()
    started = time.perf_counter()
    if mode == "cut":
        parts = 0
        with open(os.devnull, "wb") as sink, source_parts(source) as cut:
            for part in cut:
                sink.write(part.data)
                parts += 1
    else:
        parts = preflight(source, object_type="leads", check_columns=False).parts or 0
    elapsed = time.perf_counter() - started
    print(json.dumps({"seconds": elapsed, "parts": parts, "growth": peak_rss_bytes() - base}))


def run_child(mode: str, path: Path, part_bytes: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(path), "--part-bytes", str(part_bytes)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def gunzip(path: Path) -> float:
    started = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        subprocess.run(["gzip", "-dc", str(path)], stdout=sink, check=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=float, default=1000)
    parser.add_argument("--part-bytes", type=int, default=DEFAULT_MAX_PART_BYTES)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.part_bytes)
        return 0
    if shutil.which("gzip") is None:
        print("gzip is not installed")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "leads.csv"
        packed = Path(tmp) / "data_0_0_0.csv.gz"
        generate(plain, int(args.mb * 1_000_000))
        size = plain.stat().st_size
        with packed.open("wb") as out:
            subprocess.run(["gzip", "-c", "-6", str(plain)], stdout=out, check=True)
        plain.unlink()
        packed_size = packed.stat().st_size
        gunzips, cuts, growth, parts = [], [], 0.0, 0
        for _ in range(args.rounds):  # alternate, so both see the same machine state
            gunzips.append(gunzip(packed))
            result = run_child("cut", packed, args.part_bytes)
            cuts.append(result["seconds"])
            growth = max(growth, result["growth"])
            parts = int(result["parts"])
        checked = run_child("preflight", packed, args.part_bytes)
    gunzip_speed = size / min(gunzips) / MIB
    cut_speed = size / min(cuts) / MIB
    check_speed = size / checked["seconds"] / MIB
    limit = args.part_bytes + 16 * MIB
    print(
        f"source: {size / MIB:.1f} MiB of CSV, {packed_size / MIB:.1f} MiB gzip-compressed (level 6), "
        f"cut into {parts} parts of at most {args.part_bytes:,} bytes"
    )
    print(f"gzip -dc > /dev/null:       {gunzip_speed:8.1f} MiB/s of CSV (best of {args.rounds})")
    print(f"cutting into parts:         {cut_speed:8.1f} MiB/s of CSV (best of {args.rounds})")
    print(f"pre-flight (UTF-8, records): {check_speed:7.1f} MiB/s of CSV (one run)")
    print(f"speed ratio cut/gzip -dc: {cut_speed / gunzip_speed:.2f}")
    for label, grown in (("cutting", growth), ("pre-flight", checked["growth"])):
        print(
            f"peak RSS growth while {label}: {grown / MIB:.1f} MiB "
            f"(target < part size + 16 MiB = {limit / MIB:.1f} MiB): {'met' if grown < limit else 'NOT met'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
