"""A triggerer full of import triggers: 1,000 MarketoBulkImportTriggers started together in one event
loop (what a triggerer does after a restart, at its default capacity of 1,000), each waiting on a
batch of its own, for a fixed time.

Reported: the worst event-loop block (the longest a 5 ms timer fired late; Airflow warns above
0.2 s), how many blocks passed 0.2 s, the status calls made, and the CPU the event loop's thread
spent per status call. The sandbox runs in a separate process, so its work is not counted.

    python benchmarks/triggerer.py [--triggers 1000] [--poll 5] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="marketo-bench-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

SANDBOX = r"""
import io, json, sys
from marketo_provider.testing import MarketoSandbox
from marketo_provider.hooks.marketo import MarketoHook
n = int(sys.argv[1])
# Jobs that never finish; no rate or concurrency limit: this measures the triggerer, not Marketo.
with MarketoSandbox(import_seconds=1e9, queued_seconds=1e9, max_queued=n + 10, rate_limit=False,
                    concurrency_limit=False) as sandbox:
    import os
    os.environ.update(sandbox.env())
    try:
        hook = MarketoHook(calls_per_window=None)  # setting up is not what is measured
    except TypeError:
        hook = MarketoHook()
    ids = [hook.submit_import("leads", io.BytesIO(b"email\na@example.com\n"))["batchId"] for _ in range(n)]
    print(json.dumps({"env": sandbox.env(), "batch_ids": ids}), flush=True)
    sys.stdin.read()
"""


def make_trigger(batch_id: int, poll: float) -> Any:
    from marketo_provider.triggers.bulk_import import MarketoBulkImportTrigger

    params = inspect.signature(MarketoBulkImportTrigger).parameters
    deadline = time.time() + 3600
    if "import_state" in params and "batch_ids" not in params:
        from marketo_provider.api import ImportTarget, ObjectType
        from marketo_provider.importing import ImportState

        state = ImportState.for_batches(ImportTarget(ObjectType.LEADS), [batch_id], deadline)
        return MarketoBulkImportTrigger(state.to_json(), poll_interval=poll)
    return MarketoBulkImportTrigger([batch_id], "leads", poll_interval=poll, deadline=deadline)


async def measure(batch_ids: list[int], poll: float, seconds: float) -> dict[str, Any]:
    import httpx

    calls = [0]
    send = httpx.AsyncClient.send

    async def counting_send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        if "/bulk/" in request.url.path:
            calls[0] += 1
        return await send(self, request, *args, **kwargs)

    httpx.AsyncClient.send = counting_send  # type: ignore[method-assign]
    blocks: list[float] = []
    stop = asyncio.Event()

    async def monitor() -> None:
        while not stop.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            blocks.append(time.perf_counter() - before - 0.005)

    async def run_trigger(trigger: Any) -> None:
        async for _event in trigger.run():
            return

    watcher = asyncio.ensure_future(monitor())
    await asyncio.sleep(0.05)
    cpu_start, wall_start = time.thread_time(), time.perf_counter()
    # As after a triggerer restart: every trigger is created and started in the same moment (Airflow's
    # triggerer yields to the loop between two creations, as here).
    tasks = []
    for b in batch_ids:
        tasks.append(asyncio.ensure_future(run_trigger(make_trigger(b, poll))))
        await asyncio.sleep(0)
    await asyncio.sleep(seconds)
    cpu, wall = time.thread_time() - cpu_start, time.perf_counter() - wall_start
    stop.set()
    await watcher  # before the triggers are cancelled: cancelling a thousand tasks is not a poll
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    finished_early = sum(1 for t in tasks if t.done() and not t.cancelled() and t.exception() is not None)
    return {
        "triggers": len(batch_ids),
        "seconds": round(wall, 1),
        "worst_loop_block_seconds": round(max(blocks), 3),
        "blocks_over_0.2_s": sum(1 for b in blocks if b > 0.2),
        "status_calls": calls[0],
        "loop_cpu_seconds": round(cpu, 2),
        "cpu_ms_per_status_call": round(1000 * cpu / calls[0], 2) if calls[0] else None,
        "triggers_failed": finished_early,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--triggers", type=int, default=1000)
    parser.add_argument("--poll", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--no-pacing",
        action="store_true",
        help="let the hooks send as fast as the sandbox answers (by default a process keeps to 80 calls "
        "per 20 s per instance, so 1,000 triggers on one instance mostly wait their turn)",
    )
    args = parser.parse_args()
    if args.no_pacing:
        from marketo_provider.hooks.marketo import MarketoHook

        defaults = MarketoHook.__init__.__kwdefaults__ or {}
        if "calls_per_window" in defaults:
            defaults["calls_per_window"] = None
    server = subprocess.Popen(
        [sys.executable, "-c", SANDBOX, str(args.triggers)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        while line and not line.startswith('{"env"'):  # the hook logs its uploads to stdout too
            line = server.stdout.readline()
        started = json.loads(line)
        os.environ.update(started["env"])
        make_trigger(0, args.poll)  # a triggerer has the trigger's modules imported before it starts them
        result = asyncio.run(measure(started["batch_ids"], args.poll, args.seconds))
        print(json.dumps(result, indent=2), flush=True)
    finally:
        if server.stdin:
            server.stdin.close()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
