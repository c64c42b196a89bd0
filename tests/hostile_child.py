"""One import against a hostile Marketo, in a process of its own so that its peak memory is
measured alone: ``python -m tests.hostile_child <source> <options JSON>`` with the Marketo
connection in the environment. Prints one JSON line: the error (None when the import succeeded),
the seconds it took, the peak RSS, the size of each XCom value and the summary's failure reasons."""

from __future__ import annotations

import json
import logging
import resource
import sys
import time
from typing import Any


def peak_rss_kib() -> int:
    """This process's peak resident memory: the high-water mark of its own address space (Linux),
    which, unlike ``ru_maxrss``, does not start from the parent's when the process was spawned."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> None:
    from marketo_provider.api import ImportSpec
    from marketo_provider.hooks.marketo import MarketoHook
    from marketo_provider.importing import BulkImport, ImportOptions
    from marketo_provider.sources import Source

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, force=True)  # after Airflow's set-up

    source, options = sys.argv[1], json.loads(sys.argv[2])
    hook = MarketoHook(retry_base_seconds=0.01, max_attempts=2, calls_per_window=None)
    run = BulkImport(
        hook,
        ImportSpec.of("leads"),
        Source.of(source),
        ImportOptions.of(poll_interval=0.2, check_columns=False, **options),
        log=logging.getLogger("hostile_child"),
    )
    xcom: dict[str, Any] = {}
    started = time.monotonic()
    error = None
    try:
        state = run.begin(None)
        assert state is not None
        while (wait := run.advance(state)) is not None:
            run.wait(state, wait)
        xcom["return_value"] = run.conclude(state, xcom.__setitem__)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    summary = xcom.get("return_value") or {}
    report = {
        "error": error,
        "seconds": round(time.monotonic() - started, 2),
        "peak_rss_mib": round(peak_rss_kib() / 1024, 1),
        "xcom": {key: len(json.dumps(value)) for key, value in xcom.items()},
        "failure_reasons": summary.get("failure_reasons"),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
