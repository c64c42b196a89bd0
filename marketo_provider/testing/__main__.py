"""``python -m marketo_provider.testing --port 8765``: run the sandbox until stopped."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from marketo_provider.testing.server import MarketoSandbox


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m marketo_provider.testing", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    parser.add_argument("--import-seconds", type=float, default=2.0, help="how long a job stays Importing")
    parser.add_argument("--queued-seconds", type=float, default=1.0, help="least time a job stays Queued")
    parser.add_argument("--token-life", type=float, default=3600, help="access token life in seconds")
    parser.add_argument("--no-rate-limit", action="store_true", help="turn off the 100 calls / 20 s limit")
    args = parser.parse_args(argv)

    sandbox = MarketoSandbox(
        host=args.host,
        port=args.port,
        import_seconds=args.import_seconds,
        queued_seconds=args.queued_seconds,
        token_life=args.token_life,
        rate_limit=not args.no_rate_limit,
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
