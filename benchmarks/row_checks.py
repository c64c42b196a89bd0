"""The checks' throughput and memory: pre-flight of a generated CSV of 10 million leads (about
1 GB) with every check on (each value against its field's type, empty keys, rows of the wrong
width, repeated keys in SQLite), beside the cutter alone (pre-flight without the checks: UTF-8,
quotes, records), each in a fresh process, in one run.

    python benchmarks/row_checks.py [--rows 10000000] [--part-bytes 9500000] [--profile]

``--profile`` runs the checks once more under cProfile and prints where their time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from upload_memory import peak_rss_bytes, reset_peak_rss

MIB = 1024 * 1024

# The fields as Marketo's lead describe gives them.
FIELDS = [
    ("email", "email", 255),
    ("firstName", "string", 255),
    ("lastName", "string", 255),
    ("company", "string", 255),
    ("leadScore", "integer", None),
    ("annualRevenue", "currency", None),
    ("unsubscribed", "boolean", None),
    ("dateOfBirth", "date", None),
    ("website", "url", 255),
    ("notes", "text", None),
]


def generate(path: Path, rows: int) -> None:
    """Leads with a bad value in one row of 1,000 and a repeated email in one of 5,000."""
    header = ",".join(name for name, _, _ in FIELDS) + "\n"
    good = "lead{0}@example.com,First{0},Last{0},Company {1},{2},{3}.50,{4},19{5:02d}-0{6}-1{7},https://ex{1}.com/,a note about {1}\n"
    bad = "lead{0}@example.com,First{0},Last{0},Company {1},n/a,{3}.50,{4},19{5:02d}-0{6}-1{7},https://ex{1}.com/,a note\n"
    with path.open("w", newline="") as out:
        out.write(header)
        block: list[str] = []
        for i in range(rows):
            key = i - 7 if i % 5000 == 4999 else i
            template = bad if i % 1000 == 999 else good
            block.append(
                template.format(
                    key, i % 977, i % 100, i % 9000, "true" if i % 2 else "false", i % 100, 1 + i % 9, i % 10
                )
            )
            if len(block) == 50_000:
                out.write("".join(block))
                block.clear()
        out.write("".join(block))


def describe(kind: object, **_: object) -> dict[str, object]:
    from marketo_provider.api.fields import Field

    types = {name: Field(name, data_type, length, name) for name, data_type, length in FIELDS}
    return {"fields": list(types), "dedupe_fields": [], "types": types}


def child(mode: str, path: str, part_bytes: int) -> None:
    """In a fresh process: pre-flight with or without the checks; print time, records and peak RSS
    growth (``profile``: the checks under cProfile, and the functions that took the most time)."""
    from marketo_provider.sources import Source, preflight

    source = Source.of(path, max_part_bytes=part_bytes)
    base = reset_peak_rss()
    started = time.perf_counter()
    cpu = time.process_time()
    profiler = cProfile.Profile() if mode == "profile" else None
    if profiler is not None:
        profiler.enable()
    checked = preflight(
        source, object_type="leads", describe=describe, check_columns=True, check_values=mode != "cutter"
    )
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    if profiler is not None:
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(12)
    report = checked.checks
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "cpu": cpu,
                "records": checked.records,
                "growth": peak_rss_bytes() - base,
                "failing": report.rows_failing if report else None,
                "warned": report.rows_warned if report else None,
                "repeated": report.repeated_rows if report else None,
            }
        )
    )


def run_child(mode: str, path: Path, part_bytes: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(path), "--part-bytes", str(part_bytes)],
        check=True,
        capture_output=True,
        text=True,
    )
    if mode == "profile":
        print(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--part-bytes", type=int, default=9_500_000)
    parser.add_argument("--profile", action="store_true", help="profile the checks in one more run")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.part_bytes)
        return 0
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "leads.csv"
        started = time.perf_counter()
        generate(path, args.rows)
        size = path.stat().st_size
        print(
            f"source: {args.rows:,} rows, {size / 1e9:.2f} GB (generated in {time.perf_counter() - started:.0f} s)"
        )
        cutter = run_child("cutter", path, args.part_bytes)
        checks = run_child("checks", path, args.part_bytes)
        if args.profile:
            run_child("profile", path, args.part_bytes)
    print(f"load average (1 minute) before and after: {load_before:.2f}, {os.getloadavg()[0]:.2f}")
    for label, run in (("cutter alone (UTF-8, quotes, records)", cutter), ("every check on", checks)):
        print(
            f"{label:40s} {run['seconds']:7.1f} s  {size / run['seconds'] / 1e6:7.1f} MB/s  "
            f"(CPU {run['cpu']:5.1f} s, {size / run['cpu'] / 1e6:6.1f} MB/s)  "
            f"peak RSS growth {run['growth'] / MIB:6.1f} MiB"
        )
    speed = size / checks["seconds"] / 1e6
    over = (checks["growth"] - args.part_bytes) / MIB
    print(
        f"checks / cutter time: {checks['seconds'] / cutter['seconds']:.2f} "
        f"(CPU: {checks['cpu'] / cutter['cpu']:.2f})"
    )
    print(
        f"rows predicted to fail: {checks['failing']:,}; warned: {checks['warned']:,}; "
        f"rows repeating a key: {checks['repeated']:,}"
    )
    print(
        f"throughput with every check on: {speed:.1f} MB/s (target >= 30): {'met' if speed >= 30 else 'NOT met'}"
    )
    print(f"memory over the part buffer: {over:.1f} MiB (target < 100): {'met' if over < 100 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
