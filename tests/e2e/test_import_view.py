"""The "Marketo import" plugin's endpoints on Airflow's own API app (``create_app``, the plugin
loaded from the installed package's entry point) after real imports run with ``dag.test()``
against the sandbox: what a reader of the DAG sees, and what a caller without a login or without
the DAG's read permission does not."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

from marketo_provider.testing import MarketoSandbox
from marketo_provider.testing.dags import run_dag
from tests.e2e.conftest import task_xcom
from tests.helpers import leads_csv
from tests.s3 import S3Server

IMPORT_DAG = "marketo_view_import"
OTHER_DAG = "marketo_view_other"
WAITING_DAG = "marketo_view_waiting"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
AIRFLOW = tuple(int(x) for x in __import__("airflow").__version__.split(".")[:2])
PREFIX = "/marketo-import"


class DagScopedAuthManager(SimpleAuthManager):
    """Airflow's simple auth manager, except that the user ``outsider`` may read OTHER_DAG only:
    the plugin must ask about the DAG the request names."""

    def is_authorized_dag(
        self, *, method: Any, user: Any, access_entity: Any = None, details: Any = None
    ) -> bool:
        if user.username == "outsider":
            return method == "GET" and details is not None and details.id == OTHER_DAG
        return super().is_authorized_dag(
            method=method, user=user, access_entity=access_entity, details=details
        )


@dataclass
class Deployment:
    client: Any
    tokens: dict[str, str]
    run_id: str
    other_run_id: str
    source: Path
    results: Path
    expected: dict[str, int]
    summary: dict[str, Any]
    s3: S3Server
    waiting_run_id: str

    def get(self, path: str, user: str | None = "viewer", **params: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        return self.client.get(PREFIX + path, params=params, headers=headers)

    def ti(self, task_id: str, dag_id: str = IMPORT_DAG, map_index: str = "-1") -> dict[str, str]:
        run_id = self.run_id if dag_id == IMPORT_DAG else self.other_run_id
        return {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "map_index": map_index}


@pytest.fixture(scope="module")
def deployment(airflow_db: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG

    from marketo_provider.hooks.marketo import clear_token_cache
    from marketo_provider.operators.bulk_import import MarketoBulkImportOperator
    from marketo_provider.sensors.bulk_import import MarketoBulkImportSensor

    tmp = tmp_path_factory.mktemp("view")
    data, expected = leads_csv(200, fail_every=20, warn_every=30)
    source = tmp / "leads.csv"
    source.write_bytes(data)
    results = tmp / "results"
    saved = dict(os.environ)
    if AIRFLOW < (3, 2):
        # Airflow 3.1 sets an attribute on cryptography's MultiFernet, which recent cryptography
        # releases refuse (51.0 does): with a Fernet key, 3.1 cannot store a trigger here. Without one it stores the
        # trigger's arguments as they are (Airflow's "values will not be stored encrypted").
        os.environ["AIRFLOW__CORE__FERNET_KEY"] = ""
    clear_token_cache()
    s3 = S3Server().__enter__()
    try:
        os.environ.update(s3.env())  # the API server reads the results with the same connection
        s3_results = f"s3://{s3.bucket('view-results')}/runs/"
        with MarketoSandbox(queued_seconds=0.05, import_seconds=0.1) as sandbox:
            os.environ.update(sandbox.env())
            start = pendulum.datetime(2026, 1, 1)
            with DAG(IMPORT_DAG, schedule=None, start_date=start) as dag:
                common = {"source": str(source), "poll_interval": 0.05, "max_part_bytes": 3_000}
                MarketoBulkImportOperator(task_id="to_folder", results_path=f"file://{results}/", **common)
                MarketoBulkImportOperator(task_id="to_xcom", **common)
                MarketoBulkImportOperator(
                    task_id="to_s3", results_path=s3_results, results_conn_id=s3.conn_id, **common
                )
                MarketoBulkImportOperator(task_id="plan", validate_only=True, **common)
                EmptyOperator(task_id="not_an_import")
                MarketoBulkImportOperator(task_id="moved", results_path=f"file://{tmp}/moved/", **common)
                MarketoBulkImportOperator(
                    task_id="incremental", changed_rows_only=True, state_path=f"file://{tmp}/state/", **common
                )
                submit = MarketoBulkImportOperator(task_id="submit", wait_for_completion=False, **common)
                submit >> MarketoBulkImportSensor(
                    task_id="wait", batch_ids=submit.output, poll_interval=0.05, mode="reschedule"
                )
            run = run_dag(dag)
            assert run.state == "success"
            with DAG(OTHER_DAG, schedule=None, start_date=start) as other:
                EmptyOperator(task_id="nothing")
            other_run = run_dag(other)
            with DAG(WAITING_DAG, schedule=None, start_date=start) as waiting:
                EmptyOperator(task_id="import_leads")
            waiting_run = run_dag(waiting)
            summary = task_xcom(run, "to_folder")
        os.environ["AIRFLOW__CORE__AUTH_MANAGER"] = f"{__name__}.DagScopedAuthManager"
        from airflow.api_fastapi.app import create_app, get_auth_manager
        from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
        from fastapi.testclient import TestClient

        client = TestClient(create_app("core"))
        manager = get_auth_manager()
        assert isinstance(manager, DagScopedAuthManager)
        tokens = {
            name: manager.generate_jwt(SimpleAuthManagerUser(username=name, role=role))
            for name, role in (("viewer", "viewer"), ("outsider", "viewer"), ("no_role", None))
        }
        yield Deployment(
            client,
            tokens,
            run.run_id,
            other_run.run_id,
            source,
            results,
            expected,
            summary,
            s3,
            waiting_run.run_id,
        )
    finally:
        s3.__exit__(None, None, None)
        os.environ.clear()
        os.environ.update(saved)


def cells(html: str, attribute: str) -> dict[str, str]:
    """``data-count`` (or another attribute) -> the text of that element, from the page."""
    from html.parser import HTMLParser

    found: dict[str, str] = {}

    class Parser(HTMLParser):
        key: str | None = None

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.key = dict(attrs).get(attribute) or self.key

        def handle_data(self, data: str) -> None:
            if self.key is not None:
                found[self.key] = data
                self.key = None

    Parser().feed(html)
    return found


ENDPOINTS = ["/ti", "/summary", "/run", "/download"]


@pytest.mark.parametrize("path", ENDPOINTS)
def test_without_a_login_401_and_nothing_of_the_import(deployment: Deployment, path: str) -> None:
    answer = deployment.get(path, user=None, kind="failures", **deployment.ti("to_folder"))
    assert answer.status_code == 401
    assert "leads" not in answer.text and "Lead Score" not in answer.text


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("user", ["outsider", "no_role"])
def test_a_user_who_may_not_read_the_dag_gets_403(deployment: Deployment, path: str, user: str) -> None:
    answer = deployment.get(path, user=user, kind="failures", **deployment.ti("to_folder"))
    assert answer.status_code == 403
    assert (
        "leads" not in answer.text
        and "Lead Score" not in answer.text
        and str(deployment.results) not in answer.text
    )


def test_no_page_of_the_plugin_without_the_guard(deployment: Deployment) -> None:
    for path in ("/openapi.json", "/docs", "/redoc"):  # FastAPI's own pages skip the app's guard: off
        assert deployment.get(path, user=None).status_code == 404


def test_an_invalid_token_is_refused(deployment: Deployment) -> None:
    answer = deployment.client.get(
        PREFIX + "/ti", params=deployment.ti("to_folder"), headers={"Authorization": "Bearer not-a-token"}
    )
    assert answer.status_code == 403 and "leads" not in answer.text


def test_the_outsider_may_read_the_dag_it_is_allowed(deployment: Deployment) -> None:
    """The permission is asked for the DAG of the request: the same user reads another DAG."""
    answer = deployment.get("/ti", user="outsider", **deployment.ti("nothing", dag_id=OTHER_DAG))
    assert answer.status_code == 200
    assert "This task is not a Marketo import" in answer.text


def test_the_session_cookie_of_the_ui_is_a_login(deployment: Deployment) -> None:
    answer = deployment.client.get(
        PREFIX + "/ti", params=deployment.ti("to_folder"), cookies={"_token": deployment.tokens["viewer"]}
    )
    assert answer.status_code == 200 and "Marketo import: to_folder" in answer.text


def test_the_view_of_an_import(deployment: Deployment) -> None:
    answer = deployment.get(
        "/ti", **deployment.ti("to_folder", map_index="{MAP_INDEX}")
    )  # as 3.1's UI sends it
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    page = answer.text
    expected, summary = deployment.expected, deployment.summary
    counts = cells(page, "data-count")
    assert counts["records"] == "200"
    assert counts["rows_kept_out"] == "0"
    assert counts["rows_sent"] == "200"
    assert counts["rows_processed"] == f"{expected['processed']:,}" == f"{summary['rows_processed']:,}"
    assert counts["rows_failed"] == str(expected["failed"])
    assert counts["rows_with_warning"] == str(expected["warned"])
    assert counts["api_calls"] == str(summary["api_calls"])
    assert counts["resumes"] == "0"
    assert 'id="adds-up" class="ok"' in page
    # the chart: one bar per reason, with its count
    bars = cells(page, "data-rows")
    assert 'id="failure-chart"' in page and 'id="warning-chart"' in page
    assert page.count('class="bar"') == 2
    assert 'data-reason="Invalid data type in field Lead Score" data-rows="10"' in page
    assert 'data-reason="Invalid email address" data-rows="3"' in page
    assert bars  # the bars carry titles
    # the first failed rows, each with its source and line
    table = page.split('id="failures-rows"')[1].split("</table>")[0]
    assert table.count("<tr>") == expected["failed"] + 1
    assert f"<td>{deployment.source}</td><td>21</td><td>Invalid data type in field Lead Score</td>" in table
    # every part with its batch and origin
    parts = page.split('id="parts"')[1].split("</table>")[0]
    for batch in summary["batches"]:
        assert f'<td class="n">{batch["batch_id"]}</td>' in parts and batch["origin"] in parts
    # the parts on a timeline, from the times the import kept
    for batch in summary["batches"]:
        assert batch["submitted_at"] <= batch["done_at"]
        assert f'data-batch="{batch["batch_id"]}"' in page.split('<svg id="timeline"')[1].split("</svg>")[0]
    assert 'id="timeline-missing"' not in page
    # self-contained: no script, no outside style, font or image
    assert "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page and "<link" not in page and "@import" not in page
    assert 'http-equiv="refresh"' not in page  # finished: no refreshing


def test_the_downloads_stream_the_files_wherever_they_are(deployment: Deployment) -> None:
    page = deployment.get("/ti", **deployment.ti("to_folder")).text
    assert 'id="download-failures" href="download?' in page and 'id="download-warnings"' in page
    for kind in ("failures", "warnings"):
        answer = deployment.get("/download", kind=kind, **deployment.ti("to_folder"))
        assert answer.status_code == 200
        assert answer.headers["content-disposition"] == f'attachment; filename="{kind}.csv"'
        assert answer.headers["content-type"] == "text/csv; charset=utf-8"
        assert answer.content == (deployment.results / f"{kind}.csv").read_bytes()
    # results kept in XCom
    from_xcom = deployment.get("/download", kind="failures", **deployment.ti("to_xcom"))
    assert from_xcom.status_code == 200
    rows = list(csv.reader(io.StringIO(from_xcom.text)))
    assert rows[0][-3:] == ["Source", "Source Line", "Import Failure Reason"]
    assert len(rows) == deployment.expected["failed"] + 1
    assert from_xcom.content == (deployment.results / "failures.csv").read_bytes()
    # results in object storage, read with the task's results connection
    s3_summary = deployment.get("/summary", **deployment.ti("to_s3")).json()["summary"]
    assert s3_summary["failures_path"].startswith("s3://")
    from_s3 = deployment.get("/download", kind="failures", **deployment.ti("to_s3"))
    assert from_s3.status_code == 200
    assert from_s3.content == deployment.s3.get(s3_summary["failures_path"])
    assert from_s3.content == (deployment.results / "failures.csv").read_bytes()


def test_what_cannot_be_downloaded(deployment: Deployment) -> None:
    assert deployment.get("/download", kind="journal", **deployment.ti("to_folder")).status_code == 400
    assert deployment.get("/download", kind="failures", **deployment.ti("plan")).status_code == 404
    missing = deployment.get(
        "/download", kind="failures", **{**deployment.ti("to_folder"), "run_id": "no-such-run"}
    )
    assert missing.status_code == 404


def test_the_view_of_a_plan(deployment: Deployment) -> None:
    page = deployment.get("/ti", **deployment.ti("plan")).text
    assert "validate_only: nothing was sent" in page
    plan = page.split('<pre id="plan">')[1].split("</pre>")[0]
    assert plan.count(str(deployment.source)) == 1
    assert "predicted to fail" in plan and "lines 21, 41, 61, 81, 101" in plan
    assert 'data-reason="Invalid data type in field Lead Score" data-rows="10"' in page


def test_a_task_that_is_not_an_import(deployment: Deployment) -> None:
    page = deployment.get("/ti", **deployment.ti("not_an_import")).text
    assert "This task is not a Marketo import" in page and 'id="counts"' not in page


def test_the_run_lists_every_import_once(deployment: Deployment) -> None:
    answer = deployment.get("/run", dag_id=IMPORT_DAG, run_id=deployment.run_id)
    assert answer.status_code == 200
    table = answer.text.split('id="imports"')[1].split("</table>")[0]
    assert table.count("<tr>") == 1 + 8  # the header, then each import and the plan; not the empty task
    for task_id in ("to_folder", "to_xcom", "to_s3", "plan", "moved", "incremental", "submit", "wait"):
        assert f"task_id={task_id}&amp;map_index=-1" in table
    assert "not_an_import" not in table


def test_the_summary_as_json(deployment: Deployment) -> None:
    answer = deployment.get("/summary", **deployment.ti("to_folder")).json()
    assert answer["state"] == "success" and answer["is_import"] is True
    assert answer["summary"] == deployment.summary
    assert answer["downloads"] == ["failures", "warnings"]
    assert deployment.get("/summary", **{**deployment.ti("to_folder"), "task_id": "nope"}).status_code == 404


def test_the_task_log_shows_the_plan_as_a_table(
    run_dag: Any, marketo_env: MarketoSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from airflow.sdk import DAG

    from marketo_provider.operators.bulk_import import MarketoBulkImportOperator
    from marketo_provider.plan_table import plan_lines

    data, _ = leads_csv(120, fail_every=20)
    source = tmp_path / "leads.csv"
    source.write_bytes(data)
    with DAG("marketo_view_plan_log", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
        MarketoBulkImportOperator(
            task_id="plan", source=str(source), validate_only=True, max_part_bytes=2_000
        )
    run = run_dag(dag)
    assert run.state == "success"
    logged = capsys.readouterr().out  # the task's log, as dag.test() writes it
    table = "\n".join(plan_lines(task_xcom(run, "plan")))
    assert table in logged and table.count(str(source)) == 1
    assert "{'validate_only': True" not in logged  # the dict is not logged any more


def defer(run_id: str, kwargs: dict[str, Any]) -> None:
    """Put the waiting DAG's task where a deferred import is: deferred, on a trigger of the
    provider with these arguments."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session

    with create_session() as session:
        trigger = Trigger("marketo_provider.triggers.bulk_import.MarketoBulkImportTrigger", kwargs)
        session.add(trigger)
        session.flush()
        ti = (
            session.query(TaskInstance)
            .filter_by(dag_id=WAITING_DAG, run_id=run_id, task_id="import_leads")
            .one()
        )
        ti.state = "deferred"
        ti.operator = "MarketoBulkImportOperator"
        ti.trigger_id = trigger.id


def test_a_deferred_import_shows_how_far_it_is_and_refreshes(deployment: Deployment) -> None:
    from marketo_provider.api import BatchStatus
    from marketo_provider.importing.state import ImportState

    stored = json.loads((FIXTURES / "trigger_kwargs_0.2.json").read_text())["kwargs"]  # as 0.2 wrote it
    state = ImportState.from_json(stored["import_state"])
    state.finished[1001] = BatchStatus(1001, "Complete", 45, 3, 1, "done").to_json()
    defer(deployment.waiting_run_id, {**stored, "import_state": state.to_json(), "wait": "completion"})
    page = deployment.get(
        "/ti", dag_id=WAITING_DAG, run_id=deployment.waiting_run_id, task_id="import_leads"
    ).text
    assert '<meta http-equiv="refresh" content="10">' in page and 'id="running"' in page
    assert "Waiting for its batches to finish: import of leads.csv." in page
    counts = cells(page, "data-count")
    assert counts["progress:parts_submitted"] == "2" and counts["progress:parts_done"] == "1"
    assert counts["progress:rows_processed"] == "45" and counts["progress:rows_failed"] == "3"
    assert counts["progress:api_calls"] == "3"
    parts = page.split('id="progress-parts"')[1].split("</table>")[0]
    assert "<td>Complete</td>" in parts and "<td>not done yet</td>" in parts
    assert "source bytes 1,951-3,902" in parts  # 0.2 kept no origin: the bytes say where


def test_a_deferred_import_of_an_earlier_release_is_read(deployment: Deployment) -> None:
    stored = json.loads((FIXTURES / "trigger_kwargs_0.2.json").read_text())["kwargs"]
    defer(deployment.waiting_run_id, stored)
    page = deployment.get(
        "/ti", dag_id=WAITING_DAG, run_id=deployment.waiting_run_id, task_id="import_leads"
    ).text
    assert "Waiting for a slot in Marketo&#x27;s queue" in page
    assert cells(page, "data-count")["progress:parts_done"] == "0"


def test_the_sensors_view_and_the_submitting_tasks(deployment: Deployment) -> None:
    """The sensor publishes the summary the operator would: its view is the import's, times of
    submission included (the operator hands the import's state over to the sensor)."""
    page = deployment.get("/ti", **deployment.ti("wait")).text
    counts = cells(page, "data-count")
    assert counts["rows_failed"] == str(deployment.expected["failed"])
    assert counts["rows_processed"] == f"{deployment.expected['processed']:,}"
    assert 'data-reason="Invalid data type in field Lead Score" data-rows="10"' in page
    assert 'id="download-failures"' in page and 'id="timeline-missing"' not in page
    table = page.split('id="failures-rows"')[1].split("</table>")[0]
    assert table.count("<tr>") == deployment.expected["failed"] + 1
    submitted = deployment.get("/ti", **deployment.ti("submit")).text  # returned once every part was accepted
    parts = submitted.split('id="parts"')[1].split("</table>")[0]
    assert parts.count("<tr>") == 1 + len(deployment.summary["batches"])
    assert 'id="download-failures"' not in submitted


def test_a_results_file_gone_or_unreadable(deployment: Deployment) -> None:
    failures = deployment.results.parent / "moved" / "failures.csv"
    failures.unlink()
    gone = deployment.get("/download", kind="failures", **deployment.ti("moved"))
    assert gone.status_code == 404 and "no longer where the import wrote it" in gone.json()["detail"]
    page = deployment.get("/ti", **deployment.ti("moved"))
    assert page.status_code == 200 and 'id="failures-unreadable"' in page.text  # the rest of the view stays
    assert cells(page.text, "data-count")["rows_failed"] == str(deployment.expected["failed"])
    failures.mkdir()  # something that is there but cannot be read as a file
    unreadable = deployment.get("/download", kind="failures", **deployment.ti("moved"))
    assert unreadable.status_code == 502
    assert unreadable.json()["detail"].startswith(
        "The failures file could not be read where the import wrote it: "
    )


def test_the_view_of_a_changed_rows_only_import(deployment: Deployment) -> None:
    changes = deployment.get("/summary", **deployment.ti("incremental")).json()["summary"]["changes"]
    assert (
        changes["rows_new"] == 200 and changes["rows_changed"] == changes["rows_unchanged"] == 0
    )  # a first run
    counts = cells(deployment.get("/ti", **deployment.ti("incremental")).text, "data-count")
    assert counts["changes:rows_new"] == "200"
    assert counts["changes:rows_changed"] == counts["changes:rows_unchanged"] == "0"
