"""How often a deferred import resumes, and how busy it keeps Marketo, in a real Airflow.

One import of N parts (default 64) runs as a deferrable MarketoBulkImportOperator in a real Airflow
(API server, scheduler with LocalExecutor, DAG processor and triggerer as separate processes;
PostgreSQL as the metadata database; started as the system tests start them), against the sandbox
with Marketo's queue (2 importing, 10 queued), its rate limit (100 calls / 20 s) on and jobs of a
few seconds. The same import runs in one run with the provider as it was at ``--before`` (its code
put first on the Airflow processes' PYTHONPATH), at the same ``poll_interval`` and at the one its
docs asked for (``--before-safe-poll``), then with this tree.

Reported for each: resumes (the times the task went from deferred back to running, sampled from
the metadata database every 0.2 s; and the summary's own count where it has one), the median wait
from leaving deferred to running again, task tries, and from the sandbox's record: first upload to
last batch done against the ideal ceil(N / 2) job times, create calls, 606 and 1016 answers, status
calls, and whether every row was imported once.

    python benchmarks/resumes.py [--parts 64] [--job-seconds 5] [--poll 2] [--before 63291e6]
                                 [--before-safe-poll 10] [--skip-before]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DAG_ID = "bench_resumes"
TASK = "import_leads"
PART_BYTES = 20_000
HEADER = "email,firstName,lastName,company,leadScore\n"
ROW = "lead{0}@{1}.example.com,First{0},Last{0},Company {2},{3}\n"

DAG_FILE = f'''
import datetime

import pendulum
from airflow.sdk import DAG

from marketo_provider.operators.bulk_import import MarketoBulkImportOperator

with DAG(
    dag_id="{DAG_ID}",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
):
    MarketoBulkImportOperator(
        task_id="{TASK}",
        source="{{{{ dag_run.conf['source'] }}}}",
        object_type="leads",
        deferrable=True,
        poll_interval="{{{{ dag_run.conf['poll'] }}}}",
        max_part_bytes={PART_BYTES},
        check_columns=False,
        # A resumed attempt failed by Airflow's scheduler (apache/airflow#72716) is tried again;
        # on Airflow 3.3+ the retry carries on from the task state store.
        retries=3,
        retry_delay=datetime.timedelta(seconds=2),
    )
'''


def write_source(path: Path, parts: int, tag: str) -> int:
    """A leads file that cuts into ``parts`` parts of at most PART_BYTES."""
    budget = parts * (PART_BYTES - len(HEADER)) - PART_BYTES // 2
    rows = 0
    with path.open("w") as out:
        out.write(HEADER)
        while out.tell() < budget:
            out.write(ROW.format(rows, tag, rows % 97, rows % 100))
            rows += 1
    return rows


class StateSampler(threading.Thread):
    """Samples the task instance's state every ``every`` seconds: the deferrals, and how long the
    way from deferred back to running took each time."""

    def __init__(self, airflow: Any, run_id: str, every: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.airflow = airflow
        self.run_id = run_id
        self.every = every
        self.samples: list[tuple[float, str | None]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                state = self.airflow.task(DAG_ID, self.run_id, TASK).get("state")
            except Exception:
                state = None
            self.samples.append((time.monotonic(), state))
            time.sleep(self.every)

    def deferrals(self) -> int:
        """Times the task entered deferred (each deferral ends in a resume, or a failure)."""
        states = [s for _, s in self.samples if s is not None]
        return sum(1 for a, b in itertools.pairwise(states) if b == "deferred" and a != "deferred")

    def ways_back(self) -> list[float]:
        """Seconds from the last sample in deferred to the first in running, per resume."""
        out, left = [], None
        for at, state in self.samples:
            if state == "deferred":
                left = at
            elif state == "running" and left is not None:
                out.append(at - left)
                left = None
        return out


def extract(ref: str, into: Path) -> Path:
    """The package ``marketo_provider`` as it was at ``ref``, in a folder of its own."""
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "marketo_provider"], check=True, capture_output=True
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def one_side(
    label: str, code: Path | None, poll: float, args: argparse.Namespace, servers: Any
) -> dict[str, Any]:
    from marketo_provider.testing import MarketoSandbox
    from tests.system.cluster import LocalAirflow
    from tests.system.processes import Processes

    root = Path(tempfile.mkdtemp(prefix=f"marketo-bench-resumes-{label}-"))
    source = root / "leads.csv"
    rows = write_source(source, args.parts, label)
    processes = Processes(root / "logs")
    with MarketoSandbox(queued_seconds=0.2, import_seconds=args.job_seconds) as sandbox:
        env = dict(sandbox.env())
        if code is not None:
            env["PYTHONPATH"] = str(code)
        airflow = LocalAirflow(root / "airflow", processes, servers, {"bench_resumes.py": DAG_FILE}, env)
        try:
            airflow.start()
            airflow.wait_for_dags([DAG_ID])
            sampler = StateSampler(airflow, label)
            sampler.start()
            started = time.monotonic()
            airflow.trigger(DAG_ID, label, {"source": str(source), "poll": str(poll)})
            state = airflow.wait_for_run(DAG_ID, label, timeout=args.timeout)
            run_seconds = time.monotonic() - started
            sampler.stopped.set()
            sampler.join()
            task = airflow.task(DAG_ID, label, TASK)
            summary = _summary(airflow, label)
        finally:
            airflow.stop()
        jobs = [job for job in sandbox.jobs if job.filename.startswith("leads-part")]
        calls = sandbox.calls
        parts = len({job.filename for job in jobs})
        first = min(job.created_at for job in jobs)
        last = max(job.finished_at or 0.0 for job in jobs)
        ideal = math.ceil(parts / 2) * args.job_seconds
        imported = Counter(r["email"] for r in sandbox.imported_rows("leads"))
        ways_back = sampler.ways_back()
        return {
            "side": label,
            "poll_interval": poll,
            "run_state": state,
            "tries": task.get("try_number"),
            "parts": parts,
            "resumes": sampler.deferrals(),
            "resumes_in_summary": summary.get("resumes") if summary else None,
            "resumes_target": math.ceil((parts - 10) / 4) + 2,
            "way_back_median_seconds": round(statistics.median(ways_back), 1) if ways_back else None,
            "first_upload_to_last_done_seconds": round(last - first, 1),
            "ideal_seconds": ideal,
            "vs_ideal": round((last - first) / ideal, 2),
            "create_calls": len([c for c in calls if c.method == "POST" and c.path == "/bulk/v1/leads.json"]),
            "answers_606": sum(1 for c in calls if c.error_code == "606"),
            "answers_1016": sum(1 for c in calls if c.error_code == "1016"),
            "status_calls": len(
                [c for c in calls if c.method == "GET" and c.path.startswith("/bulk/v1/leads/batch/")]
            ),
            "uploads_per_part": dict(Counter(Counter(job.filename for job in jobs).values())),
            "every_row_once": len(imported) == rows and set(imported.values()) == {1},
            "run_seconds": round(run_seconds, 1),
            "logs": str(root / "logs"),
        }


def _summary(airflow: Any, run_id: str) -> dict[str, Any] | None:
    rows = airflow.postgres.query(
        "SELECT value FROM xcom WHERE dag_id = %s AND run_id = %s AND task_id = %s AND key = 'return_value'",
        DAG_ID,
        run_id,
        TASK,
    )
    if not rows:
        return None
    value = rows[0][0]
    return value if isinstance(value, dict) else json.loads(value)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--parts", type=int, default=64)
    parser.add_argument("--job-seconds", type=float, default=5.0)
    parser.add_argument("--poll", type=float, default=2.0)
    parser.add_argument("--before", default="63291e6", help="the git ref to compare with")
    parser.add_argument("--skip-before", action="store_true")
    parser.add_argument(
        "--before-safe-poll",
        type=float,
        default=10.0,
        help="also run the earlier code at the poll_interval its docs asked for on Airflow 3.1 (0: skip)",
    )
    parser.add_argument("--timeout", type=float, default=1500.0, help="seconds one import may take")
    args = parser.parse_args()

    from tests.system.cluster import Servers, find_servers

    servers = find_servers()
    if not isinstance(servers, Servers):
        print(f"cannot run: {servers}", file=sys.stderr)
        return 2
    report: dict[str, Any] = {"parts": args.parts, "job_seconds": args.job_seconds, "poll": args.poll}
    sides: list[tuple[str, Path | None, float]] = []
    if not args.skip_before:
        code = extract(args.before, Path(tempfile.mkdtemp(prefix="marketo-before-")) / "code")
        sides.append(("before", code, args.poll))
        if args.before_safe_poll:
            sides.append(("before-safe-poll", code, args.before_safe_poll))
    sides.append(("after", None, args.poll))
    for label, code_path, poll in sides:
        report[label] = one_side(label, code_path, poll, args, servers)
        print(json.dumps(report[label]), flush=True)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
