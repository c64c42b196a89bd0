"""``make demo``: start the sandbox and show how to point Airflow at it.

Run with ``--serve`` to keep the sandbox running until Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys

from marketo_provider.testing.server import MarketoSandbox


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m marketo_provider.testing.demo", description=__doc__)
    parser.add_argument("--serve", action="store_true", help="keep the sandbox running until Ctrl-C")
    args = parser.parse_args(argv)
    with MarketoSandbox() as sandbox:
        print(f"Marketo sandbox running at {sandbox.url}")
        print("Point Airflow at it with:")
        print(f"  export AIRFLOW_CONN_MARKETO_DEFAULT='{sandbox.connection_json()}'")
        if args.serve:
            print("Serving until Ctrl-C.")
            try:
                import threading

                threading.Event().wait()
            except KeyboardInterrupt:
                pass
        else:
            print("(run `python -m marketo_provider.testing --port 8765` to keep one running)")
    print("Sandbox stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
