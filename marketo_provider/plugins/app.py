"""The FastAPI app of the "Marketo import" view, mounted by the API server under ``/marketo-import``.

Every route requires Airflow's authentication (the UI's session cookie or a bearer token) and the
permission to read the DAG, its task instances and their XComs, through Airflow's own FastAPI
security dependencies: 401 without a user, 403 for a user who may not read the DAG, and nothing
of the import in either answer.
"""

from __future__ import annotations

from typing import Any

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import requires_access_dag
from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse

from marketo_provider.api.targets import RESULT_KINDS
from marketo_provider.plugins.page import run_page, task_page
from marketo_provider.plugins.published import TaskImport, load_run, load_task, safe

# The DAG, its task instances and their XComs: what Airflow's own task instance and XCom pages ask.
READ_IMPORT = [
    Depends(requires_access_dag("GET")),
    Depends(requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE)),
    Depends(requires_access_dag("GET", DagAccessEntity.XCOM)),
]

app = FastAPI(
    title="Marketo import",
    description="The imports of airflow-provider-marketo's tasks: counts, reasons, parts, rows and files.",
    dependencies=READ_IMPORT,
    # FastAPI serves these without the app's dependencies: no page of the plugin goes unguarded.
    openapi_url=None,
    docs_url=None,
    redoc_url=None,
)


def _task(dag_id: str, run_id: str, task_id: str, map_index: str | None) -> TaskImport:
    from airflow.utils.session import create_session

    with create_session() as session:
        task = load_task(session, dag_id, run_id, task_id, map_index)
    if task is None:
        raise HTTPException(404, "No such task instance")
    return task


@app.get("/ti", response_class=HTMLResponse)
def task_instance_view(
    dag_id: str = Query(), run_id: str = Query(), task_id: str = Query(), map_index: str | None = Query(None)
) -> HTMLResponse:
    """The view of one task instance's import."""
    task = _task(dag_id, run_id, task_id, map_index)
    return HTMLResponse(task_page(task), headers={"Cache-Control": "no-store"})


@app.get("/run", response_class=HTMLResponse)
def dag_run_view(dag_id: str = Query(), run_id: str = Query()) -> HTMLResponse:
    """Every import of a DAG run, one line each."""
    from airflow.utils.session import create_session

    with create_session() as session:
        tasks = load_run(session, dag_id, run_id)
    return HTMLResponse(run_page(dag_id, run_id, tasks), headers={"Cache-Control": "no-store"})


def _without_secrets(value: Any) -> Any:
    if isinstance(value, str):
        return safe(value)
    if isinstance(value, dict):
        return {safe(k): _without_secrets(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_secrets(v) for v in value]
    return value


@app.get("/summary")
def summary(
    dag_id: str = Query(), run_id: str = Query(), task_id: str = Query(), map_index: str | None = Query(None)
) -> JSONResponse:
    """The task's state and its import summary (``null`` until it publishes one) as JSON."""
    task = _task(dag_id, run_id, task_id, map_index)
    return JSONResponse(
        {
            "dag_id": task.dag_id,
            "run_id": task.run_id,
            "task_id": task.task_id,
            "map_index": task.map_index,
            "state": task.state,
            "is_import": task.is_import,
            "summary": _without_secrets(task.summary),
            "downloads": [kind for kind in RESULT_KINDS if task.result_available(kind)],
        },
        headers={"Cache-Control": "no-store"},
    )


@app.get("/download")
def download(
    kind: str = Query(),
    dag_id: str = Query(),
    run_id: str = Query(),
    task_id: str = Query(),
    map_index: str | None = Query(None),
) -> StreamingResponse:
    """The merged failures or warnings file, streamed from wherever the import put it."""
    if kind not in RESULT_KINDS:
        raise HTTPException(400, f"kind must be one of {', '.join(RESULT_KINDS)}")
    task = _task(dag_id, run_id, task_id, map_index)
    if not task.result_available(kind):
        raise HTTPException(404, f"The import published no {kind}")
    name = task.result_file_name(kind)
    media = task.file_format().content_type if name.endswith(("csv", "tsv", "ssv")) else "text/plain"
    chunks = task.result_chunks(kind)
    try:
        first = next(chunks, b"")  # open it now, so a missing file is a 404 rather than a cut stream
    except FileNotFoundError:
        raise HTTPException(404, f"The {kind} file is no longer where the import wrote it") from None
    except Exception as exc:  # the storage refused, its connection is missing, ...
        raise HTTPException(
            502,
            safe(f"The {kind} file could not be read where the import wrote it: {type(exc).__name__}: {exc}"),
        ) from None

    def body() -> Any:
        yield first
        yield from chunks

    return StreamingResponse(
        body(),
        media_type=f"{media}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )
