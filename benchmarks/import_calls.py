"""The calls an import makes, and its wall time, against the sandbox with Marketo's limits on.

One import of N parts (default 64) runs as a deferrable MarketoBulkImportOperator in a real DAG
(``dag.test()``, the trigger inline), against a sandbox with Marketo's queue (2 importing, 10
queued) and rate limit (100 calls / 20 s). Time is compressed as Marketo's is not: a job imports
in 2 s and the operator polls every second. Reported, from the sandbox's own record of calls:
status calls per part, 606 and 1016 answers, and the wall time against the ideal, ceil(N/2) job
times (two jobs import at once). Then three imports of N/3 parts each share the queue (three
tasks, each its own ``BulkImport`` in a thread, waiting on the worker) and the same figures are
reported for all three.

    python benchmarks/import_calls.py [--parts 64] [--job-seconds 2] [--poll 1] [--skip-shared]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="marketo-bench-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")

ROW = "lead{0}@{1}.example.com,First{0},Last{0},Company {2},{3}\n"
BAD = "lead{0}@{1}.example.com,First{0},Last{0},Company {2},NOT_A_NUMBER\n"


def write_source(path: Path, parts: int, part_bytes: int, tag: str) -> int:
    """A leads file that cuts into ``parts`` parts; every 997th row fails (a text lead score)."""
    header = "email,firstName,lastName,company,leadScore\n"
    budget = parts * (part_bytes - len(header)) - part_bytes // 2
    rows = 0
    with path.open("w") as out:
        out.write(header)
        while out.tell() < budget:
            out.write((BAD if rows % 997 == 996 else ROW).format(rows, tag, rows % 97, rows % 100))
            rows += 1
    return rows


def figures(
    calls: list[Any], parts: int, run_seconds: float, job_seconds: float, imports: int = 1
) -> dict[str, Any]:
    """The import's figures from the sandbox's call record. Its wall time runs from the first call
    Marketo receives to the last (``dag.test()`` spends some seconds starting a task in-process
    before the operator runs; ``run_seconds`` includes that)."""
    downloads = ("failures.json", "warnings.json")
    status = [
        c
        for c in calls
        if c.method == "GET" and c.path.startswith("/bulk/") and not c.path.endswith(downloads)
    ]
    creates = [c for c in calls if c.method == "POST" and c.path == "/bulk/v1/leads.json"]
    rest = [c for c in calls if not c.path.startswith("/identity")]
    ideal = math.ceil(parts / 2) * job_seconds
    wall = rest[-1].at - rest[0].at
    return {
        "imports": imports,
        "parts": parts,
        "rest_calls": len(rest),
        "status_calls": len(status),
        "status_calls_per_part": round(len(status) / parts, 2),
        "create_calls": len(creates),
        "answers_606": sum(1 for c in calls if c.error_code == "606"),
        "answers_1016": sum(1 for c in calls if c.error_code == "1016"),
        "downloads": sum(1 for c in calls if c.path.endswith(downloads)),
        "wall_seconds": round(wall, 1),
        "ideal_seconds": ideal,
        "wall_vs_ideal": round(wall / ideal, 2),
        "run_seconds": round(run_seconds, 1),
    }


def one_import(
    sandbox: Any, folder: Path, parts: int, part_bytes: int, poll: float, job_seconds: float
) -> dict:
    import pendulum
    from airflow.sdk import DAG

    from marketo_provider.operators.bulk_import import MarketoBulkImportOperator
    from marketo_provider.testing.dags import prepare_database, run_dag

    source = folder / "leads.csv"
    rows = write_source(source, parts, part_bytes, "one")
    prepare_database()
    with DAG(
        "bench_import_calls", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False
    ) as dag:
        MarketoBulkImportOperator(
            task_id="import",
            source=str(source),
            max_part_bytes=part_bytes,
            poll_interval=poll,
            deferrable=True,
            check_columns=False,
        )
    started = time.monotonic()
    dr = run_dag(dag)
    wall = time.monotonic() - started
    assert str(dr.state) in ("success", "DagRunState.SUCCESS"), dr.state
    imported = sandbox.imported_rows("leads")
    result = figures(sandbox.calls, parts, wall, job_seconds)
    result["rows_imported_once"] = len(imported) == len({r["email"] for r in imported}) == rows - rows // 997
    return result


def shared_queue(
    sandbox: Any, folder: Path, parts: int, part_bytes: int, poll: float, job_seconds: float
) -> dict:
    import logging

    from marketo_provider.api import ImportSpec
    from marketo_provider.hooks.marketo import MarketoHook
    from marketo_provider.importing import BulkImport, ImportOptions
    from marketo_provider.sources import Source

    before = len(sandbox.calls)
    each = parts // 3
    runs, expected = [], 0
    for i in range(3):
        source = folder / f"leads-{i}.csv"
        rows = write_source(source, each, part_bytes, f"shared{i}")
        expected += rows - rows // 997
        spec = ImportSpec.of("leads")
        options = ImportOptions.of(poll_interval=poll, check_columns=False)
        runs.append(
            BulkImport(
                MarketoHook(),
                spec,
                Source.of(str(source), max_part_bytes=part_bytes),
                options,
                log=logging.getLogger(f"import-{i}"),
            )
        )
    finished: dict[int, float] = {}
    errors: list[BaseException] = []
    started = time.monotonic()

    def go(i: int) -> None:
        try:
            run = runs[i]
            state = run.begin(None)
            assert state is not None
            while (step := run.advance(state)) is not None:
                run.wait(state, step)
            run.conclude(state, lambda key, value: None)
            finished[i] = time.monotonic() - started
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    wall = time.monotonic() - started
    result = figures(sandbox.calls[before:], each * 3, wall, job_seconds, imports=3)
    result["each_finished_at"] = [round(finished[i], 1) for i in range(3)]
    imported = [
        r for r in sandbox.imported_rows("leads") if ".example.com" in r["email"] and "@shared" in r["email"]
    ]
    result["rows_imported_once"] = len(imported) == len({r["email"] for r in imported}) == expected
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--parts", type=int, default=64)
    parser.add_argument("--job-seconds", type=float, default=2.0)
    parser.add_argument("--poll", type=float, default=1.0)
    parser.add_argument("--part-bytes", type=int, default=20_000)
    parser.add_argument("--skip-shared", action="store_true", help="only the single import")
    args = parser.parse_args()

    from marketo_provider.testing import MarketoSandbox

    report: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        MarketoSandbox(import_seconds=args.job_seconds, queued_seconds=0.1) as sandbox,
    ):
        os.environ.update(sandbox.env())
        report["one_import"] = one_import(
            sandbox, Path(tmp), args.parts, args.part_bytes, args.poll, args.job_seconds
        )
        print(json.dumps(report["one_import"]), flush=True)
    if not args.skip_shared:
        time.sleep(1)
        with (
            tempfile.TemporaryDirectory() as tmp,
            MarketoSandbox(import_seconds=args.job_seconds, queued_seconds=0.1) as sandbox,
        ):
            os.environ.update(sandbox.env())
            from marketo_provider.hooks.marketo import clear_token_cache

            clear_token_cache()
            report["three_imports"] = shared_queue(
                sandbox, Path(tmp), args.parts, args.part_bytes, args.poll, args.job_seconds
            )
            print(json.dumps(report["three_imports"]), flush=True)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
