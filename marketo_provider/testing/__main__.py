"""``python -m marketo_provider.testing``: run the Marketo sandbox until stopped.

Prints the Airflow connection to use (the JSON alone on stdout, instructions on stderr).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from marketo_provider.testing.config import SandboxConfig
from marketo_provider.testing.server import MarketoSandbox

_DEFAULTS = SandboxConfig()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m marketo_provider.testing", description=__doc__)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    p.add_argument("--client-id", default=_DEFAULTS.client_id, help="the client id it accepts")
    p.add_argument("--client-secret", default=_DEFAULTS.client_secret, help="the client secret it accepts")
    p.add_argument(
        "--queued-seconds", type=float, default=1.0, help="least time a job stays Queued (default 1)"
    )
    p.add_argument(
        "--import-seconds", type=float, default=2.0, help="how long a job stays Importing (default 2)"
    )
    p.add_argument(
        "--token-life", type=float, default=_DEFAULTS.token_life, help="access token life in seconds"
    )
    p.add_argument(
        "--max-importing", type=int, default=_DEFAULTS.max_importing, help="jobs importing at once"
    )
    p.add_argument(
        "--max-queued", type=int, default=_DEFAULTS.max_queued, help="jobs in the queue (1016 beyond)"
    )
    p.add_argument("--no-rate-limit", action="store_true", help="turn off the 100 calls / 20 s limit (606)")
    p.add_argument(
        "--no-concurrency-limit", action="store_true", help="turn off the 10 calls at once limit (615)"
    )
    p.add_argument(
        "--daily-quota", type=int, default=None, help="calls allowed before 607 (default: no limit)"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    sandbox = MarketoSandbox(
        host=args.host,
        port=args.port,
        client_id=args.client_id,
        client_secret=args.client_secret,
        queued_seconds=args.queued_seconds,
        import_seconds=args.import_seconds,
        token_life=args.token_life,
        max_importing=args.max_importing,
        max_queued=args.max_queued,
        rate_limit=not args.no_rate_limit,
        concurrency_limit=not args.no_concurrency_limit,
        daily_quota=args.daily_quota,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with sandbox:
        print(f"Marketo sandbox listening on {sandbox.url}", file=sys.stderr)
        print("Use this connection (Ctrl-C stops the sandbox):", file=sys.stderr)
        print(f"export AIRFLOW_CONN_MARKETO_DEFAULT='{sandbox.connection_json()}'", file=sys.stderr)
        print(sandbox.connection_json(), flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
