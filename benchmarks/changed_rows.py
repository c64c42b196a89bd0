"""Importing only what changed, measured in one run:

1. a source of 1 million leads imported in full into the sandbox with ``changed_rows_only``, then
   again after 1% of its rows changed: parts, API calls and wall time of both (target: the second
   run's parts at most ceil(changed bytes / part size) + 1);
2. concluding an import of a 30 MB source with 1,730 failed rows (merge, trace from the ledger,
   the next state), timed alone (target under 5 s);
3. the comparison alone on 10 million keys (pre-flight against a state of 10 million keys, in a
   fresh process): time and peak RSS growth (target under 200 MiB), and the state's size on
   storage (target under 20 bytes a key).

    python benchmarks/changed_rows.py [--rows 1000000] [--keys 10000000]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from upload_memory import peak_rss_bytes, reset_peak_rss

MIB = 1024 * 1024
PART_BYTES = 9_500_000


def write_source(path: Path, rows: int, changed: set[int] = frozenset()) -> None:  # type: ignore[assignment]
    with path.open("w") as out:
        out.write("email,firstName,lastName,company,leadScore\n")
        block = []
        for i in range(rows):
            first = f"Changed{i}" if i in changed else f"First{i}"
            block.append(f"lead{i}@example.com,{first},Last{i},Company {i % 977},{i % 100}\n")
            if len(block) == 100_000:
                out.write("".join(block))
                block.clear()
        out.write("".join(block))


def one_import(path: Path, state: Path) -> dict[str, float]:
    from marketo_provider.api import ImportSpec
    from marketo_provider.hooks.marketo import MarketoHook
    from marketo_provider.importing import BulkImport, ImportOptions
    from marketo_provider.sources import Source

    hook = MarketoHook()
    run = BulkImport(
        hook,
        ImportSpec.of("leads"),
        Source.of(str(path)),
        ImportOptions.of(
            poll_interval=0.5, changed_rows_only=True, state_path=str(state), check_columns=False
        ),
        log=logging.getLogger("benchmark"),
        owner="benchmark",
    )
    started = time.perf_counter()
    begun = run.begin(None)
    assert begun is not None
    while (wait := run.advance(begun)) is not None:
        run.wait(begun, wait)
    summary = run.conclude(begun, lambda key, value: None)
    return {
        "seconds": time.perf_counter() - started,
        "parts": len(summary["batch_ids"]),
        "api_calls": summary["api_calls"],
        "rows_sent": summary["rows_processed"] + summary["rows_failed"],
        "unchanged": summary["changes"]["rows_unchanged"],
    }


def full_then_changed(rows: int) -> None:
    from marketo_provider.testing import MarketoSandbox

    with (
        tempfile.TemporaryDirectory() as tmp,
        MarketoSandbox(queued_seconds=0.5, import_seconds=2.0) as sandbox,
    ):
        for key, value in sandbox.env().items():
            os.environ[key] = value
        path, state = Path(tmp) / "leads.csv", Path(tmp) / "state"
        write_source(path, rows)
        full = one_import(path, state)
        changed = set(range(0, rows, 100))  # 1%
        before = path.stat().st_size
        write_source(path, rows, changed)
        changed_bytes = sum(
            len(f"lead{i}@example.com,Changed{i},Last{i},Company {i % 977},{i % 100}\n") for i in changed
        )
        again = one_import(path, state)
        limit = math.ceil(changed_bytes / PART_BYTES) + 1
        print(
            f"source: {rows:,} leads, {before / 1e6:.0f} MB; 1% changed: {len(changed):,} rows, {changed_bytes / 1e6:.2f} MB"
        )
        for label, run in (("full import", full), ("after 1% changed", again)):
            print(
                f"{label:18s} parts {run['parts']:4d}  API calls {run['api_calls']:5d}  rows sent {run['rows_sent']:>9,}  "
                f"unchanged {run['unchanged']:>9,}  wall {run['seconds']:6.1f} s"
            )
        ok = again["parts"] <= limit
        print(f"second run's parts: {again['parts']} (target <= {limit}): {'met' if ok else 'NOT met'}")
        ratio = again["seconds"] / full["seconds"]
        print(
            f"second run's wall time: {ratio:.2f} x the full run's (target <= 0.35): {'met' if ratio <= 0.35 else 'NOT met'}"
        )


def conclusion(rows: int, failing: int) -> None:
    """Concluding an import whose rows partly failed: the merge of the failures files, each row
    traced to its line from the ledger, and the next state, timed alone."""
    from marketo_provider.api import ImportSpec
    from marketo_provider.hooks.marketo import MarketoHook
    from marketo_provider.importing import BulkImport, ImportOptions
    from marketo_provider.sources import Source
    from marketo_provider.testing import MarketoSandbox

    with (
        tempfile.TemporaryDirectory() as tmp,
        MarketoSandbox(queued_seconds=0.2, import_seconds=0.5) as sandbox,
    ):
        for key, value in sandbox.env().items():
            os.environ[key] = value
        path, state = Path(tmp) / "leads.csv", Path(tmp) / "state"
        bad = set(range(7, rows, rows // failing))
        with path.open("w") as out:
            out.write("email,firstName,lastName,company,leadScore\n")
            for i in range(rows):
                score = "n/a" if i in bad else str(i % 100)
                out.write(f"lead{i}@example.com,First{i},Last{i},Company {i % 977},{score}\n")
        run = BulkImport(
            MarketoHook(),
            ImportSpec.of("leads"),
            Source.of(str(path)),
            ImportOptions.of(
                poll_interval=0.5,
                changed_rows_only=True,
                state_path=str(state),
                results_path=str(Path(tmp) / "out"),
            ),
            log=logging.getLogger("benchmark"),
            owner="benchmark",
        )
        begun = run.begin(None)
        assert begun is not None
        while (wait := run.advance(begun)) is not None:
            run.wait(begun, wait)
        started = time.perf_counter()
        summary = run.conclude(begun, lambda key, value: None)
        seconds = time.perf_counter() - started
        size = path.stat().st_size
    print(
        f"concluding an import of {size / 1e6:.0f} MB with {summary['rows_failed']:,} failed rows "
        f"(merge, trace, state): {seconds:.2f} s (target < 5): {'met' if seconds < 5 else 'NOT met'}"
    )


def compare_child(keys: int, folder: str) -> None:
    """In a fresh process: pre-flight of ``keys`` rows against a state of ``keys`` keys."""
    from marketo_provider.api.fields import Field
    from marketo_provider.sources import Source, preflight

    def describe(kind: object, **_: object) -> dict[str, object]:
        types = {
            n: Field(n, t) for n, t in (("email", "email"), ("firstName", "string"), ("leadScore", "integer"))
        }
        return {"fields": list(types), "dedupe_fields": [], "types": types}

    base = reset_peak_rss()
    started = time.perf_counter()
    checked = preflight(
        Source.of(os.path.join(folder, "leads.csv")),
        object_type="leads",
        describe=describe,
        check_values=False,
        changed_rows_only=True,
        previous=os.path.join(folder, "state.sqlite"),
    )
    print(
        json.dumps(
            {
                "seconds": time.perf_counter() - started,
                "growth": peak_rss_bytes() - base,
                "changes": checked.changes,
            }
        )
    )


def comparison(keys: int) -> None:
    from marketo_provider.importing.changes.comparison import build_state
    from marketo_provider.sources.fingerprints import stable_hash
    from marketo_provider.storage import StateLocation

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "leads.csv"
        with path.open("w") as out:
            out.write("email,firstName,leadScore\n")
            block = []
            for i in range(keys):
                block.append(f"lead{i}@example.com,First{i},{i % 100}\n")
                if len(block) == 200_000:
                    out.write("".join(block))
                    block.clear()
            out.write("".join(block))
        started = time.perf_counter()
        pairs = (
            (
                stable_hash(f"lead{i}@example.com"),
                stable_hash(f"lead{i}@example.com\x1fFirst{i}\x1f{i % 100}"),
            )
            for i in range(keys)
            if i % 100  # 1% of the rows changed since
        )
        stored = build_state(None, str(Path(tmp) / "state.sqlite"), pairs)
        built = time.perf_counter() - started
        size = StateLocation(str(Path(tmp) / "stored")).upload(
            str(Path(tmp) / "state.sqlite"), "state.sqlite.gz"
        )
        out = subprocess.run(
            [sys.executable, __file__, "--compare-child", str(keys), tmp],
            check=True,
            capture_output=True,
            text=True,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"state of {stored:,} keys built in {built:.1f} s; stored gzip-compressed: {size / 1e6:.1f} MB = {size / stored:.1f} bytes a key (target < 20): {'met' if size / stored < 20 else 'NOT met'}"
    )
    changes = result["changes"]
    print(
        f"comparison of {keys:,} rows with it: {result['seconds']:.1f} s ({keys / result['seconds'] / 1e6:.2f} M rows/s); "
        f"{changes['rows_changed'] + changes['rows_new']:,} to send, {changes['rows_unchanged']:,} unchanged"
    )
    growth = result["growth"] / MIB
    above = growth - PART_BYTES / MIB
    print(
        f"peak RSS growth of that pre-flight, its ledger written: {growth:.1f} MiB, {above:.1f} MiB above the part "
        f"buffer (target < 150): {'met' if above < 150 else 'NOT met'}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=10_000_000)
    parser.add_argument("--compare-child", nargs=2, metavar=("KEYS", "FOLDER"))
    args = parser.parse_args()
    if args.compare_child:
        compare_child(int(args.compare_child[0]), args.compare_child[1])
        return 0
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="benchmark-airflow-"))
    logging.basicConfig(level=logging.WARNING)
    full_then_changed(args.rows)
    conclusion(450_000, 1_730)
    comparison(args.keys)
    return 0


if __name__ == "__main__":
    sys.exit(main())
