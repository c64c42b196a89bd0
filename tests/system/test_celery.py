"""Imports on a distributed Airflow: CeleryExecutor with two workers in folders of their own, Redis
as the broker, PostgreSQL as the metadata database, the source and the results in S3 (moto's server
on loopback), the sandbox as Marketo. Then real faults: the task process killed, the triggerer
killed, the scheduler killed, each in the middle of an import; every source row must reach Marketo
exactly once and no part may be uploaded twice.

The sandbox's knobs make the timing deterministic: ``max_queued`` keeps Marketo's queue full so the
import must wait for a slot after a known number of parts, and ``hold_next_jobs`` keeps those jobs
queued until the test releases them.
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import psutil
import pytest

from marketo_provider.testing import MarketoSandbox
from tests.s3 import S3Server
from tests.system.cluster import CeleryAirflow, Servers, find_servers
from tests.system.processes import Processes, wait_for

SERVERS = find_servers()
pytestmark = pytest.mark.skipif(not isinstance(SERVERS, Servers), reason=str(SERVERS))

DEFERRABLE = "marketo_system_deferrable"
IN_WORKER = "marketo_system_in_worker"
IN_WORKER_RESEND = "marketo_system_in_worker_resend"
TASK = "import_leads"
PART_BYTES = 2000
UPLOAD = "/bulk/v1/leads.json"
STATUS = "/bulk/v1/leads/batch/*.json"

DAG_FILE = f'''
"""Imports of an S3 source into the sandbox; what to import comes with the run's conf."""
import datetime

import pendulum
from airflow.sdk import DAG

from marketo_provider.operators.bulk_import import MarketoBulkImportOperator


def import_dag(dag_id, deferrable, resend=False):
    with DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=4,
    ) as dag:
        MarketoBulkImportOperator(
            task_id="{TASK}",
            source="{{{{ dag_run.conf['source'] }}}}",
            source_conn_id="{{{{ dag_run.conf['conn_id'] }}}}",
            object_type="leads",
            lookup_field="email",
            results_path="{{{{ dag_run.conf['results'] }}}}",
            results_conn_id="{{{{ dag_run.conf['conn_id'] }}}}",
            resend_uncertain_parts=resend,
            deferrable=deferrable,
            poll_interval=10,
            max_part_bytes={PART_BYTES},
            retries=1,
            retry_delay=datetime.timedelta(seconds=2),
        )
    return dag


deferrable = import_dag("{DEFERRABLE}", True)
in_worker = import_dag("{IN_WORKER}", False)
in_worker_resend = import_dag("{IN_WORKER_RESEND}", False, resend=True)
'''


@dataclass
class Import:
    """One import's source in S3 and what Marketo must end up with."""

    name: str
    source: str
    results: str
    emails: list[str]
    parts: int

    def conf(self, s3: S3Server) -> dict[str, str]:
        return {"source": self.source, "results": self.results, "conn_id": s3.conn_id}


@dataclass
class Harness:
    airflow: CeleryAirflow
    sandbox: MarketoSandbox
    s3: S3Server
    bucket: str
    processes: Processes

    def source(self, name: str, rows: int = 200) -> Import:
        emails = [f"{name}-{i}@example.com" for i in range(rows)]
        body = "".join(f"{email},Name{i},{i % 100}\n" for i, email in enumerate(emails))
        data = ("email,firstName,leadScore\n" + body).encode()
        source = f"s3://{self.bucket}/exports/{name}.csv"
        self.s3.put(source, data)
        # Parts are cut at line ends below PART_BYTES, each with the header.
        parts, size = 1, len("email,firstName,leadScore\n")
        for line in body.splitlines(keepends=True):
            if size + len(line) > PART_BYTES:
                parts, size = parts + 1, len("email,firstName,leadScore\n")
            size += len(line)
        return Import(name, source, f"s3://{self.bucket}/results/{name}", emails, parts)

    def uploads(self, job: Import) -> list[str]:
        """The file name of every job Marketo created for an import."""
        return [j.filename for j in self.sandbox.jobs if j.filename.startswith(f"{job.name}-part")]

    def accepted_uploads(self, job: Import) -> int:
        return len(self.uploads(job))

    def refused_uploads(self) -> int:
        return sum(1 for c in self.sandbox.calls_to(UPLOAD, "POST") if c.error_code == "1016")

    def assert_exactly_once(self, job: Import, run_id: str, dag_id: str) -> None:
        state = self.airflow.wait_for_run(dag_id, run_id, timeout=240)
        assert state == "success", self.processes.tails()
        assert sorted(self.imported(job).elements()) == sorted(job.emails)  # every row, each once
        uploads = self.uploads(job)
        assert sorted(uploads) == [f"{job.name}-part{i:04d}.csv" for i in range(job.parts)]  # no part twice
        accepted = [
            c
            for c in self.sandbox.calls_to(UPLOAD, "POST")
            if c.status == 200 and c.error_code is None and c.batch_id in self._batch_ids(job)
        ]
        assert len(accepted) == job.parts

    def _batch_ids(self, job: Import) -> set[int]:
        return {j.batch_id for j in self.sandbox.jobs if j.filename.startswith(f"{job.name}-part")}

    def status_polls(self) -> int:
        return len(self.sandbox.calls_to(STATUS, "GET"))

    def imported(self, job: Import) -> Counter[str]:
        """How many times Marketo imported each of the import's rows."""
        return Counter(
            r["email"] for r in self.sandbox.imported_rows("leads") if r["email"].startswith(f"{job.name}-")
        )

    def start_on_a_full_queue(self, dag_id: str, job: Import) -> None:
        """Trigger the import with room for two jobs in Marketo's queue, both held: returns once the
        third part has been refused (1016)."""
        self.sandbox.backend.config.max_queued = 2
        self.sandbox.hold_next_jobs(2)
        refused = self.refused_uploads()
        self.airflow.trigger(dag_id, job.name, job.conf(self.s3))
        wait_for(lambda: self.refused_uploads() > refused, 180, "the third part to find the queue full")

    def free_the_queue(self) -> None:
        self.sandbox.release()
        self.sandbox.backend.config.max_queued = 10

    def kill_running_task(self, dag_id: str, run_id: str) -> None:
        """SIGKILL the process of the task's first try, which must be running."""
        task = self.airflow.task(dag_id, run_id, TASK)
        assert task["state"] == "running" and task["try_number"] == 1, task
        psutil.Process(task["pid"]).send_signal(signal.SIGKILL)


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    assert isinstance(SERVERS, Servers)
    root = tmp_path_factory.mktemp("celery")
    processes = Processes(root / "logs")
    with MarketoSandbox(queued_seconds=0.5, import_seconds=1.0) as sandbox, S3Server() as s3:
        airflow = CeleryAirflow(
            root,
            processes,
            SERVERS,
            {"marketo_system.py": DAG_FILE},
            env={**sandbox.env(), **s3.env()},
            workers=2,
        )
        try:
            airflow.start()
            airflow.wait_for_dags([DEFERRABLE, IN_WORKER, IN_WORKER_RESEND])
            yield Harness(airflow, sandbox, s3, s3.bucket("celery-system"), processes)
        finally:
            airflow.stop()


@pytest.fixture
def h(harness: Harness) -> Iterator[Harness]:
    """The harness with the sandbox's knobs back to normal after each test."""
    config = harness.sandbox.backend.config
    yield harness
    config.max_queued = 10
    harness.sandbox.release()


@pytest.mark.timeout(600)
def test_imports_run_on_two_celery_workers(h: Harness) -> None:
    """Two imports at once, one on each worker; sources and results only in S3."""
    first, second = h.source("alpha"), h.source("bravo")
    # The in-worker import keeps its worker busy (its jobs held in Marketo's queue) until the
    # deferrable one has started on the other worker; the timing of the two triggers does not
    # decide where they run.
    h.sandbox.hold_next_jobs(second.parts)
    h.airflow.trigger(IN_WORKER, "bravo", second.conf(h.s3))
    wait_for(lambda: h.accepted_uploads(second) == second.parts, 180, "bravo's parts to be accepted")
    h.airflow.trigger(DEFERRABLE, "alpha", first.conf(h.s3))
    wait_for(lambda: h.accepted_uploads(first) == first.parts, 180, "alpha's parts to be accepted")
    h.sandbox.release()
    h.assert_exactly_once(first, "alpha", DEFERRABLE)
    h.assert_exactly_once(second, "bravo", IN_WORKER)
    worker_logs = [h.processes.log(name) for name in h.airflow.worker_names]
    assert all("alpha" in log or "bravo" in log for log in worker_logs), h.processes.tails()
    assert h.s3.keys(first.results) == []  # no failures or warnings: nothing written
    assert h.s3.keys(f"s3://{h.bucket}/exports/") == ["exports/alpha.csv", "exports/bravo.csv"]


@pytest.mark.timeout(600)
def test_task_killed_after_some_parts_then_retried(h: Harness) -> None:
    """SIGKILL to the task process while it waits for a queue slot with two parts accepted; the
    retry resumes (from Airflow's task state store on 3.3+; on 3.1 and 3.2 from the import's journal
    under results_path) and submits only the parts not yet accepted."""
    job = h.source("charlie")
    assert job.parts >= 4
    h.start_on_a_full_queue(IN_WORKER, job)  # two parts in, then 1016 until a slot frees
    assert h.accepted_uploads(job) == 2
    h.kill_running_task(IN_WORKER, "charlie")
    wait_for(
        lambda: h.airflow.task(IN_WORKER, "charlie", TASK)["try_number"] == 2,
        120,
        "the retry to start",
    )
    h.free_the_queue()
    h.assert_exactly_once(job, "charlie", IN_WORKER)
    assert h.airflow.task(IN_WORKER, "charlie", TASK)["try_number"] == 2


@pytest.mark.timeout(600)
def test_task_killed_then_retried_starts_over_without_a_state_store(h: Harness) -> None:
    """What docs/deployment.rst says of Airflow 3.1 and 3.2: with no task state store and nothing
    that outlives the task (no state_path, no results_path), the retry of a killed task starts the
    import over and uploads the parts accepted before the kill again."""
    if _has_task_state_store():
        pytest.skip("Airflow 3.3+ resumes from the task state store (the test above)")
    job = h.source("foxtrot")
    job.results = ""  # no results_path: no journal
    assert job.parts >= 4
    h.start_on_a_full_queue(IN_WORKER, job)
    h.kill_running_task(IN_WORKER, "foxtrot")
    wait_for(lambda: h.airflow.task(IN_WORKER, "foxtrot", TASK)["try_number"] == 2, 120, "the retry to start")
    h.free_the_queue()
    assert h.airflow.wait_for_run(IN_WORKER, "foxtrot", timeout=240) == "success", h.processes.tails()
    uploads = Counter(h.uploads(job))
    assert uploads == {f"{job.name}-part{i:04d}.csv": 2 if i < 2 else 1 for i in range(job.parts)}
    imported = h.imported(job)
    assert set(imported) == set(job.emails) and set(imported.values()) == {1, 2}


@pytest.mark.timeout(600)
def test_triggerer_killed_mid_poll_and_started_again(h: Harness) -> None:
    """Every part accepted, the import deferred and polling; the triggerer dies (SIGKILL) and a new
    one takes the trigger over from its kwargs and finishes the wait."""
    job = h.source("delta")
    h.sandbox.hold_next_jobs(job.parts)
    h.airflow.trigger(DEFERRABLE, "delta", job.conf(h.s3))
    wait_for(lambda: h.accepted_uploads(job) == job.parts, 180, "every part to be accepted")
    wait_for(
        lambda: h.airflow.task(DEFERRABLE, "delta", TASK).get("state") == "deferred", 120, "the deferral"
    )
    polls = h.status_polls()
    wait_for(lambda: h.status_polls() > polls, 60, "the trigger to poll")
    h.processes.stop("triggerer", signal.SIGKILL)
    h.airflow.start_triggerer()
    polls = h.status_polls()
    wait_for(lambda: h.status_polls() > polls, 120, "the new triggerer to poll")
    h.sandbox.release()
    h.assert_exactly_once(job, "delta", DEFERRABLE)
    assert h.airflow.task(DEFERRABLE, "delta", TASK)["try_number"] == 1


@pytest.mark.timeout(600)
def test_scheduler_restarted_mid_import(h: Harness) -> None:
    """Two parts accepted and the import deferred for a queue slot; the scheduler dies (SIGKILL) and
    a new one resumes the task, which submits the remaining parts once."""
    job = h.source("echo")
    assert job.parts >= 4
    h.start_on_a_full_queue(DEFERRABLE, job)
    wait_for(lambda: h.airflow.task(DEFERRABLE, "echo", TASK).get("state") == "deferred", 120, "the deferral")
    h.processes.stop("scheduler", signal.SIGKILL)
    h.airflow.start_scheduler()
    h.free_the_queue()
    h.assert_exactly_once(job, "echo", DEFERRABLE)
    assert h.accepted_uploads(job) == job.parts
    assert h.airflow.task(DEFERRABLE, "echo", TASK)["try_number"] == 1


@pytest.mark.timeout(600)
@pytest.mark.parametrize("resend", [False, True])
def test_task_killed_while_a_part_is_uploading(h: Harness, resend: bool) -> None:
    """SIGKILL while the third part's upload waits for its answer; Marketo created the import. The
    part was recorded as in flight before it was sent, so by default the retry does not send it
    again: it submits the rest and fails at the end naming that part, with every row in Marketo
    once. With ``resend_uncertain_parts`` the retry sends it again: its rows are imported twice."""
    if not _has_task_state_store():
        pytest.skip("Airflow < 3.3 has no task state store: a retried task starts over (docs/deployment.rst)")
    name, dag = ("hotel", IN_WORKER_RESEND) if resend else ("golf", IN_WORKER)
    job = h.source(name)
    assert job.parts >= 4
    h.sandbox.inject_fault(UPLOAD, method="POST", skip=2, answer_delay=120)
    h.airflow.trigger(dag, name, job.conf(h.s3))
    wait_for(lambda: h.accepted_uploads(job) == 3, 180, "the third part to reach Marketo")
    h.kill_running_task(dag, name)
    state = h.airflow.wait_for_run(dag, name, timeout=240)
    uploads = Counter(h.uploads(job))
    imported = h.imported(job)
    assert h.airflow.task(dag, name, TASK)["try_number"] == 2
    if resend:
        assert state == "success", h.processes.tails()
        assert uploads == {f"{name}-part{i:04d}.csv": 2 if i == 2 else 1 for i in range(job.parts)}
        assert set(imported) == set(job.emails) and set(imported.values()) == {1, 2}
    else:
        assert state == "failed"
        assert uploads == {f"{name}-part{i:04d}.csv": 1 for i in range(job.parts)}  # no part twice
        assert sorted(imported.elements()) == sorted(job.emails)  # every row once
        rows = h.airflow.postgres.query(
            "SELECT value FROM xcom WHERE dag_id = %s AND run_id = %s AND task_id = %s AND key = 'return_value'",
            dag,
            name,
            TASK,
        )
        summary = rows[0][0] if isinstance(rows[0][0], dict) else json.loads(rows[0][0])
        assert summary["parts_outcome_unknown"] == [2] and summary["parts_sent_twice"] == []


def _has_task_state_store() -> bool:
    from importlib.metadata import version

    from packaging.version import Version

    return Version(version("apache-airflow")) >= Version("3.3")
