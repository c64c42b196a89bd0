"""``python -m marketo_provider.testing``: run the Marketo sandbox until stopped, or read a running
sandbox's record.

Run it (prints the Airflow connection to use: the JSON alone on stdout, instructions on stderr)::

    python -m marketo_provider.testing --port 8765 [--schema describe-answers.json] ...

Read what a running sandbox holds, over its own HTTP paths (one JSON object a line on stdout, a
page at a time; the count on stderr), or reset it::

    python -m marketo_provider.testing rows leads --url http://127.0.0.1:8765
    python -m marketo_provider.testing rows program_members [PROGRAM_ID]
    python -m marketo_provider.testing rows custom_objects API_NAME
    python -m marketo_provider.testing jobs | calls | reset
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from marketo_provider.testing.config import SandboxConfig
from marketo_provider.testing.inspection import DEFAULT_LIMIT, MAX_LIMIT, SANDBOX_API_PREFIX
from marketo_provider.testing.schema import SchemaError
from marketo_provider.testing.server import MarketoSandbox

_DEFAULTS = SandboxConfig()
PROG = "python -m marketo_provider.testing"
INSPECT_COMMANDS = ("rows", "jobs", "calls", "reset")
DEFAULT_URL = "http://127.0.0.1:8765"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
    p.add_argument(
        "--schema",
        metavar="FILE",
        help="your instance's fields: a JSON file of describe answers saved from it "
        "(keys leads, program_members, custom_objects; see docs/sandbox.rst)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in INSPECT_COMMANDS:
        return inspect(argv)
    return serve(argv)


def serve(argv: list[str]) -> int:
    p = parser()
    args = p.parse_args(argv)
    try:
        sandbox = _sandbox(args)
    except SchemaError as exc:
        p.error(str(exc))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with sandbox:
        print(f"Marketo sandbox listening on {sandbox.url}", file=sys.stderr)
        if args.schema:
            print(f"Fields from {args.schema}", file=sys.stderr)
        print(
            f"Its record: {sandbox.url}{SANDBOX_API_PREFIX} ({PROG} rows leads --url {sandbox.url})",
            file=sys.stderr,
        )
        print("Use this connection (Ctrl-C stops the sandbox):", file=sys.stderr)
        print(f"export AIRFLOW_CONN_MARKETO_DEFAULT='{sandbox.connection_json()}'", file=sys.stderr)
        print(sandbox.connection_json(), flush=True)
        stop.wait()
    return 0


def _sandbox(args: argparse.Namespace) -> MarketoSandbox:
    return MarketoSandbox(
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
        schema=args.schema,
    )


# ---- reading a running sandbox's record ------------------------------------------------------------


def inspect_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Read a running sandbox's record, or reset it.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url",
        default=os.environ.get("MARKETO_SANDBOX_URL", DEFAULT_URL),
        help=f"the sandbox's URL (default: $MARKETO_SANDBOX_URL or {DEFAULT_URL})",
    )
    paging = argparse.ArgumentParser(add_help=False)
    paging.add_argument(
        "--limit", type=int, default=DEFAULT_LIMIT, help=f"at most this many (default {DEFAULT_LIMIT})"
    )
    paging.add_argument("--offset", type=int, default=0, help="skip this many first (default 0)")
    paging.add_argument("--all", action="store_true", help="every one, page after page")
    commands = p.add_subparsers(dest="command", required=True)
    rows = commands.add_parser("rows", parents=[common, paging], help="rows imported for an object")
    rows.add_argument("object", choices=("leads", "program_members", "custom_objects"))
    rows.add_argument(
        "name",
        nargs="?",
        help="program_members: a program id (default: every program); custom_objects: its API name",
    )
    rows.add_argument("--batch-id", type=int, help="only the rows of this batch")
    commands.add_parser("jobs", parents=[common, paging], help="import jobs: batch id, status, counts")
    calls = commands.add_parser("calls", parents=[common, paging], help="calls received, without secrets")
    calls.add_argument("--path", help="only calls whose path matches this glob, e.g. '/bulk/v1/*'")
    calls.add_argument("--method", help="only calls with this HTTP method")
    commands.add_parser("reset", parents=[common], help="forget jobs, rows, leads, calls and faults")
    return p


def inspect(argv: list[str]) -> int:
    p = inspect_parser()
    args = p.parse_args(argv)
    base = args.url.rstrip("/") + SANDBOX_API_PREFIX.rstrip("/")
    try:
        if args.command == "reset":
            print(json.dumps(_call(base + "/reset", {}, method="POST")))
            return 0
        path, params, key = _listing(p, args)
        return _print_pages(base + path, params, key, args)
    except _Failed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _listing(p: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[str, dict[str, Any], str]:
    if args.command == "jobs":
        return "/jobs", {}, "jobs"
    if args.command == "calls":
        return "/calls", {"path": args.path, "method": args.method}, "calls"
    path = f"/rows/{args.object}"
    if args.object == "custom_objects":
        if not args.name:
            p.error("rows custom_objects needs the custom object's API name, e.g. car_c")
        path += "/" + urllib.parse.quote(args.name, safe="")
    elif args.object == "program_members" and args.name:
        if not args.name.isdigit():
            p.error(f"a program id is a whole number, not '{args.name}'")
        path += "/" + args.name
    elif args.name:
        p.error("rows leads takes no name")
    return path, {"batch_id": args.batch_id}, "rows"


def _print_pages(url: str, params: dict[str, Any], key: str, args: argparse.Namespace) -> int:
    offset = args.offset
    limit = MAX_LIMIT if args.all else args.limit
    printed = 0
    while True:
        page = _call(url, {**params, "offset": offset, "limit": limit})
        for item in page[key]:
            print(json.dumps(item))
        printed += len(page[key])
        next_offset = page["next_offset"]
        if not args.all or next_offset is None:
            break
        offset = next_offset
    first = args.offset + 1 if printed else args.offset
    more = f"; more from --offset {next_offset}, or --all" if next_offset is not None else ""
    print(f"{key} {first}-{args.offset + printed} of {page['total']}{more}", file=sys.stderr)
    return 0


class _Failed(Exception):
    """A call to the sandbox's own paths that did not work: the message says why."""


def _call(url: str, params: dict[str, Any], method: str = "GET") -> dict[str, Any]:
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    request = urllib.request.Request(url + (f"?{query}" if query else ""), method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return dict(json.load(answer))
    except urllib.error.HTTPError as exc:
        try:
            message = json.load(exc)["error"]
        except (ValueError, KeyError, TypeError):
            message = f"HTTP {exc.code}"
        raise _Failed(message) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise _Failed(f"no sandbox answers at {url} ({reason})") from None


if __name__ == "__main__":
    sys.exit(main())
