"""Cutting a Parquet source: speed and memory of turning a generated Parquet file of at least 1 GB
(snappy-compressed, row groups of a million rows, the column types of a lead export) into parts,
beside the CSV cutter on the very CSV those parts hold, in the same run. Each side runs in a
process of its own, so peak RSS is the cutter's alone (pyarrow is imported before the mark is
reset: its libraries are not the stage's memory); both write their parts to /dev/null. The Parquet
side runs once more with Arrow's system allocator: pyarrow's default (mimalloc) keeps memory it
freed for reuse, which counts in RSS.

    python benchmarks/parquet_split.py [--gb 1.0] [--part-bytes 9500000] [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from upload_memory import peak_rss_bytes, reset_peak_rss

from marketo_provider.sources.base import DEFAULT_MAX_PART_BYTES

MIB = 1024 * 1024
ROW_GROUP = 1_000_000


def lead_rows(pa: Any, start: int, count: int) -> Any:
    """``count`` lead rows from row ``start``: text, an integer, a decimal, a date, a timestamp
    with a time zone, a boolean and a few nulls, varied by a hash of the row number."""
    pc = pa.compute
    text = pa.string()
    ids = pa.array(range(start, start + count), pa.int64())
    h = pc.bit_wise_and(pc.multiply(ids, 2654435761), 0xFFFFFFFF)
    email = pc.binary_join_element_wise("lead", ids.cast(text), ".", h.cast(text), "@example.com", "")
    first = pc.binary_join_element_wise("First", pc.bit_wise_and(h, 0xFFF).cast(text), "")
    last = pc.binary_join_element_wise("Last", pc.bit_wise_and(pc.shift_right(h, 8), 0xFFFF).cast(text), "")
    company = pc.binary_join_element_wise("Company, ", pc.bit_wise_and(h, 0x3FF).cast(text), "")
    company = pc.if_else(
        pc.equal(pc.bit_wise_and(h, 0x1F0), 0), company, pc.replace_substring(company, ",", "")
    )
    score = pc.if_else(pc.equal(pc.bit_wise_and(h, 0xF), 3), None, pc.bit_wise_and(h, 0x7F).cast(pa.int32()))
    revenue = pc.divide(pc.bit_wise_and(h, 0xFFFFFF).cast(pa.float64()), 100.0).cast(pa.decimal128(12, 2))
    born = pc.bit_wise_and(h, 0x3FFF).cast(pa.int32()).cast(pa.date32())
    micros = pc.add(pc.multiply(ids, 997_001), 1_700_000_000_000_000)
    updated = micros.cast(pa.timestamp("us")).cast(pa.timestamp("us", tz="America/New_York"))
    unsubscribed = pc.if_else(pc.equal(pc.bit_wise_and(h, 0x70), 0), None, pc.equal(pc.bit_wise_and(h, 1), 1))
    return pa.table(
        [email, first, last, company, score, revenue, born, updated, unsubscribed],
        names=[
            "email",
            "firstName",
            "lastName",
            "company",
            "leadScore",
            "annualRevenue",
            "dateOfBirth",
            "updatedAt",
            "unsubscribed",
        ],
    )


def generate(path: Path, size: int) -> tuple[int, int]:
    """Write row groups of a million rows until the file is ``size`` bytes; (rows, row groups)."""
    import pyarrow as pa
    import pyarrow.compute
    import pyarrow.parquet as pq

    rows = groups = 0
    with path.open("wb") as sink:
        writer = None
        while sink.tell() < size:
            table = lead_rows(pa, rows, ROW_GROUP)
            if writer is None:
                writer = pq.ParquetWriter(sink, table.schema, compression="snappy")
            writer.write_table(table, row_group_size=ROW_GROUP)
            rows += table.num_rows
            groups += 1
        assert writer is not None
        writer.close()
    return rows, groups


def as_csv(parquet: Path, csv: Path) -> None:
    """The CSV the Parquet stage writes (its header and body), as a file for the CSV cutter."""
    from marketo_provider.sources import Source, open_body

    with open_body(Source.of(str(parquet))) as (header, body), csv.open("wb") as out:
        out.write(header.line)
        buffer = memoryview(bytearray(8 * MIB))
        while n := body.readinto(buffer):
            out.write(buffer[:n])


def child(path: str, part_bytes: int) -> None:
    """Run in a fresh process: cut the source, print time, parts, bytes and peak RSS growth."""
    import pyarrow
    import pyarrow.compute
    import pyarrow.parquet

    from marketo_provider.sources import Source, source_parts

    source = Source.of(path, max_part_bytes=part_bytes)
    base = reset_peak_rss()
    started = time.perf_counter()
    parts = written = 0
    with open(os.devnull, "wb") as sink, source_parts(source) as cut:
        for part in cut:
            sink.write(part.data)
            parts += 1
            written += part.size
    elapsed = time.perf_counter() - started
    pool = pyarrow.default_memory_pool()
    found = {
        "seconds": elapsed,
        "parts": parts,
        "bytes": written,
        "growth": peak_rss_bytes() - base,
        "arrow_peak": pool.max_memory(),
        "allocator": pool.backend_name,
    }
    print(json.dumps(found))


def run_child(path: Path, part_bytes: int, allocator: str | None = None) -> dict[str, Any]:
    env = dict(os.environ)
    if allocator:
        env["ARROW_DEFAULT_MEMORY_POOL"] = allocator
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(path), "--part-bytes", str(part_bytes)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gb", type=float, default=1.0, help="size of the Parquet file (10^9 bytes)")
    parser.add_argument("--part-bytes", type=int, default=DEFAULT_MAX_PART_BYTES)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--child", metavar="PATH")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.part_bytes)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        parquet = Path(tmp) / "data_0_0_0.snappy.parquet"
        csv = Path(tmp) / "data_0_0_0.csv"
        started = time.perf_counter()
        rows, groups = generate(parquet, int(args.gb * 1e9))
        made = time.perf_counter() - started
        as_csv(parquet, csv)
        parquet_size, csv_size = parquet.stat().st_size, csv.stat().st_size
        print(
            f"source: {parquet_size / 1e9:.2f} GB of Parquet ({parquet_size / MIB:,.0f} MiB, snappy, {rows:,} rows "
            f"in {groups} row groups, written in {made:.0f} s), {csv_size / MIB:,.0f} MiB as CSV"
        )
        results: dict[str, list[dict[str, Any]]] = {"parquet": [], "csv": []}
        for _ in range(args.rounds):  # alternate, so both see the same machine state
            results["parquet"].append(run_child(parquet, args.part_bytes))
            results["csv"].append(run_child(csv, args.part_bytes))
        system = run_child(parquet, args.part_bytes, allocator="system")
    best = {side: min(r["seconds"] for r in runs) for side, runs in results.items()}
    parts = {side: int(runs[0]["parts"]) for side, runs in results.items()}
    assert results["parquet"][0]["bytes"] == results["csv"][0]["bytes"] == system["bytes"], "the same CSV"
    print(
        f"parts: {parts['parquet']} from Parquet, {parts['csv']} from the CSV (at most {args.part_bytes:,} bytes)"
    )
    print(
        f"Parquet -> parts: {csv_size / MIB / best['parquet']:7.1f} MiB/s of CSV, "
        f"{parquet_size / MIB / best['parquet']:6.1f} MiB/s of Parquet, {rows / best['parquet']:,.0f} rows/s "
        f"({best['parquet']:.1f} s, best of {args.rounds})"
    )
    print(
        f"CSV -> parts:     {csv_size / MIB / best['csv']:7.1f} MiB/s of CSV, {rows / best['csv']:,.0f} rows/s "
        f"({best['csv']:.1f} s, best of {args.rounds})"
    )
    print(
        f"Parquet -> parts, system allocator: {csv_size / MIB / system['seconds']:.1f} MiB/s of CSV "
        f"({system['seconds']:.1f} s)"
    )
    print(f"speed ratio Parquet/CSV: {best['csv'] / best['parquet']:.3f}")
    runs = [
        (f"Parquet, pyarrow's default allocator ({results['parquet'][0]['allocator']})", results["parquet"]),
        ("Parquet, ARROW_DEFAULT_MEMORY_POOL=system", [system]),
        ("CSV", results["csv"]),
    ]
    for label, done in runs:
        print(
            f"peak RSS growth while cutting, {label}: {max(r['growth'] for r in done) / MIB:.1f} MiB "
            f"(Arrow's own allocations at most {max(r['arrow_peak'] for r in done) / MIB:.1f} MiB)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
