"""Peak memory of one upload: MarketoHook.submit_import against marketorestpython's import_lead.

Both upload the same 9.9 MB file to the same sandbox, each in a fresh process. Once everything is
imported and a token is held, the kernel's peak-RSS mark is reset (/proc/self/clear_refs); growth
is the peak RSS during the upload (VmHWM) minus the RSS at the reset, so only the upload counts.

    python benchmarks/upload_memory.py [--mb 9.9]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak_rss() -> int:
    """Reset the kernel's high-water mark to the current RSS and return that RSS in bytes."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_kib("VmRSS") * 1024


def peak_rss_bytes() -> int:
    """The peak RSS since the last reset (VmHWM), or since start where resetting is not allowed."""
    try:
        return _status_kib("VmHWM") * 1024
    except (OSError, RuntimeError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def write_source(path: Path, size: int) -> None:
    row = 0
    with path.open("w", newline="") as out:
        out.write("email,firstName,lastName,company,leadScore\n")
        written = out.tell()
        while written < size:
            line = f"lead{row}@example.com,First{row},Last{row},Company {row % 977},{row % 100}\n"
            written += out.write(line)
            row += 1
    with path.open("r+b") as f:  # trim to the exact size at a record boundary
        f.truncate(size)
        f.seek(0)
        data = f.read()
        cut = data.rindex(b"\n") + 1
        f.truncate(cut)


def worker(kind: str, source: str, conn: dict) -> dict:
    if kind == "ours":
        os.environ["AIRFLOW_CONN_MARKETO_DEFAULT"] = json.dumps(conn)
        from marketo_provider.hooks.marketo import MarketoHook

        hook = MarketoHook()
        hook.test_connection()  # the token fetched before the measure
        before = reset_peak_rss()
        entry = hook.submit_import("leads", source)
    else:
        from marketorestpython.client import MarketoClient

        client = MarketoClient("000-AAA-000", conn["login"], conn["password"])
        client.host = conn["host"]
        client.authenticate()
        before = reset_peak_rss()
        entry = client.execute(method="import_lead", file=source, format="csv", lookupField="email")[0]
    after = peak_rss_bytes()
    return {"kind": kind, "growth_bytes": after - before, "batch_id": entry["batchId"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=float, default=9.9, help="file size in MB (default 9.9)")
    parser.add_argument("--worker", choices=["ours", "theirs"], help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--conn", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.source, json.loads(args.conn))))
        return 0

    from marketo_provider.testing import MarketoSandbox

    with tempfile.TemporaryDirectory() as tmp, MarketoSandbox(manual_clock=True, rate_limit=False) as sandbox:
        source = Path(tmp) / "leads.csv"
        write_source(source, int(args.mb * 1_000_000))
        size = source.stat().st_size
        results = {}
        for kind in ("ours", "theirs"):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    kind,
                    "--source",
                    str(source),
                    "--conn",
                    sandbox.connection_json(),
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            results[kind] = json.loads(out.strip().splitlines()[-1])
        uploads = [c.upload_bytes for c in sandbox.calls_to("/bulk/v1/leads.json")]
        assert uploads == [size, size], uploads

    ours, theirs = results["ours"]["growth_bytes"], results["theirs"]["growth_bytes"]
    mib = 1024 * 1024
    print(f"file: {size:,} bytes, uploaded once by each client to the sandbox")
    print(f"MarketoHook.submit_import       peak RSS growth: {ours / mib:8.2f} MiB")
    print(f"marketorestpython import_lead   peak RSS growth: {theirs / mib:8.2f} MiB")
    ratio = ours / theirs if theirs else float("inf")
    print(f"ratio ours/theirs: {ratio:.3f} (target <= 0.100): {'met' if ratio <= 0.1 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
