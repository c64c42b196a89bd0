"""The sandbox's own HTTP paths, under ``/sandbox-api/``: its record (imported rows, calls, jobs)
and a reset, for a test in another process, another language, or a person with curl.

No Marketo path starts with ``/sandbox-api/`` (Marketo's are under ``/identity``, ``/bulk`` and
``/rest``), so these can never answer a Marketo call. They take no access token, are not recorded
as calls and do not count against Marketo's limits. Answers are JSON; lists come a page at a time
(``offset``, ``limit``: 100 by default, 10,000 at most) with their ``total`` and the
``next_offset`` to ask for (null on the last page), so a large import's record is never sent whole
unasked. Errors are plain HTTP statuses with ``{"error": "..."}``: they are the sandbox's, not
Marketo's.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from marketo_provider.testing.errors import HTTPError
from marketo_provider.testing.jobs import Job
from marketo_provider.testing.parameters import path_pattern
from marketo_provider.testing.spec import COMPLETE, FAILED, ImportTarget, ObjectType

if TYPE_CHECKING:
    from marketo_provider.testing.asgi import Receive, Scope, Send
    from marketo_provider.testing.backend import MarketoBackend

SANDBOX_API_PREFIX = "/sandbox-api/"
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000

_PAGING = ("offset", "limit")

# (method, path template, what it answers, the query parameters it takes)
ROUTES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("GET", "/sandbox-api/", "index", ()),
    ("GET", "/sandbox-api/rows/leads", "rows", (*_PAGING, "batch_id")),
    ("GET", "/sandbox-api/rows/program_members", "rows", (*_PAGING, "batch_id")),
    ("GET", "/sandbox-api/rows/program_members/{programId}", "rows", (*_PAGING, "batch_id")),
    ("GET", "/sandbox-api/rows/custom_objects/{apiName}", "rows", (*_PAGING, "batch_id")),
    ("GET", "/sandbox-api/jobs", "jobs", _PAGING),
    ("GET", "/sandbox-api/calls", "calls", (*_PAGING, "path", "method")),
    ("POST", "/sandbox-api/reset", "reset", ()),
)


class _Problem(HTTPError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, {"error": message})


class SandboxAPI:
    """Answers the sandbox's own paths from a :class:`MarketoBackend`."""

    def __init__(self, backend: MarketoBackend) -> None:
        self.backend = backend
        self._compiled = [
            (method, path_pattern(path), path, name, params) for method, path, name, params in ROUTES
        ]

    @property
    def routes(self) -> list[tuple[str, str]]:
        """``(method, path template)`` of every path served."""
        return [(method, path) for method, path, _, _ in ROUTES]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            response = await self.answer(request)
        except HTTPError as exc:
            response = JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)
        await response(scope, receive, send)

    async def answer(self, request: Request) -> JSONResponse:
        path = request.url.path
        if path == SANDBOX_API_PREFIX.rstrip("/"):
            path = SANDBOX_API_PREFIX
        found = [(m, g.groupdict(), t, n, p) for m, c, t, n, p in self._compiled if (g := c.match(path))]
        if not found:
            raise _Problem(404, f"{path} is not a sandbox path; GET {SANDBOX_API_PREFIX} lists them")
        match = next((f for f in found if f[0] == request.method), None)
        if match is None:
            allowed = ", ".join(sorted({f[0] for f in found}))
            raise _Problem(405, f"{request.method} is not taken by {path}; use {allowed}")
        _, path_params, _, name, accepted = match
        query = self._query(request, accepted)
        if name == "index":
            return JSONResponse({"paths": [f"{m} {p}" for m, p in self.routes]})
        if name == "reset":
            await run_in_threadpool(self.backend.reset)
            return JSONResponse({"reset": True})
        offset, limit = _int(query, "offset", 0, 0), _int(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        if name == "rows":
            target = self._target(path, path_params)
            batch_id = _int(query, "batch_id", None, 0) if "batch_id" in query else None
            total, rows = await run_in_threadpool(self.backend.imported_page, target, offset, limit, batch_id)
            answer: dict[str, Any] = {"object": target.key}
            if target.program_id is not None:
                answer["program_id"] = target.program_id
            return JSONResponse({**answer, **_page(total, offset, limit, "rows", [r.row for r in rows])})
        if name == "jobs":
            jobs = await run_in_threadpool(lambda: list(self.backend.iter_jobs()))
            chosen = [job_record(j) for j in jobs[offset : offset + limit]]
            return JSONResponse(_page(len(jobs), offset, limit, "jobs", chosen))
        calls = self.backend.calls_to(query.get("path") or "*", query.get("method") or None)
        chosen = [dataclasses.asdict(c) for c in calls[offset : offset + limit]]
        return JSONResponse(_page(len(calls), offset, limit, "calls", chosen))

    def _query(self, request: Request, accepted: tuple[str, ...]) -> dict[str, str]:
        pairs = request.query_params.multi_items()
        unknown = sorted({k for k, _ in pairs if k not in accepted})
        if unknown:
            takes = ", ".join(accepted) if accepted else "no query parameters"
            raise _Problem(400, f"unknown query parameter(s): {', '.join(unknown)}; this path takes {takes}")
        return dict(pairs)

    def _target(self, path: str, path_params: dict[str, str]) -> ImportTarget:
        if "apiName" in path_params:
            name = path_params["apiName"]
            known = sorted(self.backend.custom_objects)
            if name not in known:
                raise _Problem(
                    404, f"no custom object '{name}' in this sandbox; it has {', '.join(known) or 'none'}"
                )
            return ImportTarget(ObjectType.CUSTOM_OBJECTS, custom_object_name=name)
        if "programId" in path_params:
            value = path_params["programId"]
            if not (value.isascii() and value.isdigit()):
                raise _Problem(400, f"program id must be a whole number, not '{value}'")
            return ImportTarget(ObjectType.PROGRAM_MEMBERS, program_id=int(value))
        return ImportTarget(ObjectType.parse(path.rsplit("/", 1)[-1]))


_MAX_DIGITS = 18  # a whole number of up to 18 digits fits any list this sandbox keeps


def _int(query: dict[str, str], name: str, default: Any, least: int, most: int | None = None) -> Any:
    value = query.get(name)
    if value is None:
        return default
    if (
        not (value.isascii() and value.isdigit())
        or len(value) > _MAX_DIGITS  # before int(): thousands of digits are refused by Python itself
        or int(value) < least
        or (most is not None and int(value) > most)
    ):
        bound = (
            f"from {least} to {most:,}"
            if most is not None
            else f"{least} or more, of at most {_MAX_DIGITS} digits"
        )
        shown = value if len(value) <= 40 else f"{value[:40]}… ({len(value):,} characters)"
        raise _Problem(400, f"{name} must be a whole number {bound}, not '{shown}'")
    return int(value)


def _page(total: int, offset: int, limit: int, key: str, items: list[Any]) -> dict[str, Any]:
    more = offset + len(items) < total and len(items) == limit
    return {
        "total": total,
        "offset": offset,
        "limit": limit,
        "next_offset": offset + len(items) if more else None,
        key: items,
    }


def job_record(job: Job) -> dict[str, Any]:
    """A job as the sandbox's record shows it: what was uploaded, where it went, how it ended.
    Times are seconds on the sandbox's clock."""
    target = job.target
    out: dict[str, Any] = {"batch_id": job.batch_id, "object_type": target.object_type.value}
    if target.program_id is not None:
        out["program_id"] = target.program_id
    if target.custom_object_name is not None:
        out["custom_object_name"] = target.custom_object_name
    out.update(
        status=job.status,
        filename=job.filename,
        bytes=job.size,
        params=dict(job.params),
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )
    if job.status in (COMPLETE, FAILED):
        out.update(
            rows_processed=job.processed or 0,
            rows_failed=job.failed or 0,
            rows_with_warning=job.warned or 0,
            message=job.entry()["message"],
        )
    return out


__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "ROUTES", "SANDBOX_API_PREFIX", "SandboxAPI", "job_record"]
