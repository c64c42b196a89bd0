"""`make demo`'s program, on a smaller file: it runs the example DAG and prints the report."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_prints_the_report(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    done = subprocess.run(
        [sys.executable, "-m", "marketo_provider.testing.demo", "--mb", "3", "--out", str(tmp_path / "out")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "Import SUCCESS" in out
    assert "part 0: batch" in out and "total:" in out
    assert "failures: file://" in out and "warnings: file://" in out
    assert "-> Invalid data type in field Lead Score" in out
    failures = next(line.split("file://", 1)[1] for line in out.splitlines() if "failures: file://" in line)
    assert (
        Path(failures)
        .read_text()
        .startswith(
            "email,firstName,lastName,company,title,city,leadScore,address,Source,Source Line,Import Failure Reason"
        )
    )
