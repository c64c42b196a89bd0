"""``make demo``: a real import of a 25 MB leads file into the sandbox with the example DAG.

Starts the Marketo sandbox, writes a realistic leads export (some rows that fail, some that warn,
quoted multi-line addresses), runs ``example_dags/marketo_leads_from_object_storage.py`` with
``dag.test()`` in a throwaway ``AIRFLOW_HOME``, and prints what happened. The sandbox stops on
exit, Ctrl-C included. To run the sandbox alone, use ``python -m marketo_provider.testing``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from marketo_provider.testing.server import MarketoSandbox

DEFAULT_DAG = "example_dags/marketo_leads_from_object_storage.py"
FIRST_NAMES = [
    "Ava",
    "Liam",
    "Noor",
    "Mateo",
    "Yuki",
    "Amara",
    "Jonas",
    "Priya",
    "Chen",
    "Sofia",
    "Omar",
    "Ines",
]
LAST_NAMES = [
    "Garcia",
    "Okafor",
    "Tanaka",
    "Müller",
    "Singh",
    "Dubois",
    "Kowalski",
    "Haddad",
    "Silva",
    "Olsen",
]
COMPANIES = ["Acme Corp", "Globex", "Initech", "Umbrella, Inc.", "Stark Industries", "Wayne Enterprises"]
CITIES = ["Lisbon", "Osaka", "Lagos", "Zürich", "Austin", "Montréal"]


def write_leads(path: Path, target_bytes: int, seed: int = 7) -> dict[str, int]:
    """A CRM-like leads export: ~1 row in 200 fails (text in leadScore), ~1 in 150 warns (bad email),
    ~1 in 10 has a quoted address with a comma, quotes and a line break."""
    rng = random.Random(seed)
    counts = {"rows": 0, "failing": 0, "warning": 0}
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(
            ["email", "firstName", "lastName", "company", "title", "city", "leadScore", "address"]
        )
        while out.tell() < target_bytes:
            for _ in range(1000):
                i = counts["rows"] = counts["rows"] + 1
                first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
                email = f"{first}.{last}.{i}@example.com".lower()
                score = str(rng.randint(0, 100))
                roll = rng.random()
                if roll < 0.005:
                    score = rng.choice(["high", "N/A", "twelve"])
                    counts["failing"] += 1
                elif roll < 0.005 + 1 / 150:
                    email = f"{first}.{last}.{i}(at)example.com".lower()
                    counts["warning"] += 1
                address = f"{rng.randint(1, 999)} Market St"
                if rng.random() < 0.1:
                    address = f'{address}, Suite {rng.randint(1, 40)}\n"Building {rng.choice("ABC")}"'
                writer.writerow(
                    [
                        email,
                        first,
                        last,
                        rng.choice(COMPANIES),
                        "Data Engineer",
                        rng.choice(CITIES),
                        score,
                        address,
                    ]
                )
    return counts


def run(dag_file: Path, out_dir: Path, megabytes: float) -> int:
    started = time.monotonic()
    out_dir.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="marketo-demo-airflow-"))
    source = out_dir / "leads.csv"
    results_root = out_dir / "results"
    log_file = out_dir / "airflow.log"
    try:
        print(f"Writing a {megabytes:g} MB leads export to {source} ...", flush=True)
        counts = write_leads(source, int(megabytes * 1_000_000))
        print(
            f"  {counts['rows']:,} leads, {counts['failing']} with a bad lead score, {counts['warning']} with a bad email"
        )
        with MarketoSandbox(queued_seconds=0.5, import_seconds=2.0) as sandbox:
            print(f"Marketo sandbox at {sandbox.url}")
            env = {
                **os.environ,
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_FOLDER": str(dag_file.resolve().parent),
                "AIRFLOW_CONN_MARKETO_DEFAULT": sandbox.connection_json(),
                "AIRFLOW_VAR_MARKETO_LEADS_SOURCE": f"file://{source.resolve()}",
                "AIRFLOW_VAR_MARKETO_SOURCE_CONN_ID": "",
                "AIRFLOW_VAR_MARKETO_RESULTS_ROOT": f"file://{results_root.resolve()}",
                "AIRFLOW_VAR_MARKETO_NEWSLETTER_LIST_ID": "1234",
                "AIRFLOW_VAR_MARKETO_POLL_INTERVAL": "1",
            }
            with log_file.open("w") as log:
                print("Preparing a throwaway Airflow database ...", flush=True)
                subprocess.run(
                    [sys.executable, "-m", "airflow", "db", "migrate"],
                    env=env,
                    stdout=log,
                    stderr=log,
                    check=True,
                )
                print(f"Running {dag_file} with dag.test() (log: {log_file}) ...", flush=True)
                child = subprocess.Popen([sys.executable, str(dag_file)], env=env, stdout=log, stderr=log)
                try:
                    child.wait()
                except KeyboardInterrupt:
                    child.terminate()
                    child.wait()
                    raise
            report = read_report(env, "marketo_leads_from_object_storage", "import_leads")
            print_report(report, sandbox, time.monotonic() - started)
            return 0 if report["state"] == "success" else 1
    finally:
        shutil.rmtree(home, ignore_errors=True)


def read_report(env: dict[str, str], dag_id: str, task_id: str) -> dict[str, Any]:
    """Read the run's outcome from the demo's Airflow database (in a child, which owns that home)."""
    code = f"""
import json
from airflow.models.dagrun import DagRun
from airflow.utils.session import create_session
from marketo_provider.testing.dags import task_xcom
with create_session() as session:
    run = session.query(DagRun).filter_by(dag_id={dag_id!r}).order_by(DagRun.id.desc()).first()
    print(json.dumps({{"state": str(run.state), "summary": task_xcom(run, {task_id!r})}}))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def print_report(report: dict[str, Any], sandbox: MarketoSandbox, seconds: float) -> None:
    summary = report["summary"] or {}
    print()
    print(f"Import {report['state'].upper()} in {seconds:.0f} s")
    for batch in summary.get("batches", []):
        print(
            f"  part {batch['part']}: batch {batch['batch_id']} {batch['status']:<9} "
            f"{batch['rows_processed']:>7,} processed {batch['rows_failed']:>4} failed {batch['rows_with_warning']:>4} warned"
        )
    if summary:
        print(
            f"  total: {summary['rows_processed']:,} rows processed, {summary['rows_failed']:,} failed, "
            f"{summary['rows_with_warning']:,} with warnings"
        )
        refused = [c for c in sandbox.calls_to("/bulk/v1/leads.json") if c.error_code == "1016"]
        if refused:
            print(f"  Marketo's queue was full {len(refused)} time(s); the import waited for a slot")
        print(f"  failures: {summary['failures_path']}")
        print(f"  warnings: {summary['warnings_path']}")
        if summary.get("failures_path"):
            text = Path(summary["failures_path"].removeprefix("file://")).read_text(encoding="utf-8")
            rows = list(csv.DictReader(io.StringIO(text)))
            print("  first failures:")
            for row in rows[:5]:
                print(
                    f"    {row['email']:<40} leadScore={row['leadScore']!r:<10} -> {row['Import Failure Reason']}"
                )


def default_dag() -> str:
    """The checkout's example DAG, or the copy an installed wheel ships in the package."""
    if Path(DEFAULT_DAG).exists():
        return DEFAULT_DAG
    return str(Path(__file__).resolve().parents[1] / "example_dags" / Path(DEFAULT_DAG).name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m marketo_provider.testing.demo", description=__doc__)
    parser.add_argument("--dag", default=default_dag(), help=f"the example DAG file (default {DEFAULT_DAG})")
    parser.add_argument(
        "--out", default="demo-output", help="where the source and results go (default demo-output/)"
    )
    parser.add_argument(
        "--mb", type=float, default=25, help="size of the generated leads file in MB (default 25)"
    )
    args = parser.parse_args(argv)
    dag_file = Path(args.dag)
    if not dag_file.exists():
        parser.error(f"{dag_file} not found; run the demo from the repository's top folder")
    try:
        return run(dag_file, Path(args.out), args.mb)
    except KeyboardInterrupt:
        print("\nInterrupted; the sandbox is stopped.")
        return 130


if __name__ == "__main__":
    sys.exit(main())
