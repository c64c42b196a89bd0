"""The sandbox's own paths, ``/sandbox-api/``: its record and a reset over HTTP, without a token."""

from __future__ import annotations

import time

import pytest
import requests

from marketo_provider.testing import MarketoSandbox
from tests.helpers import RawClient, cars_csv, leads_csv

API = "/sandbox-api"


def get(sandbox: MarketoSandbox, path: str, **params: object) -> requests.Response:
    return requests.get(sandbox.url + API + path, params=params, timeout=10)  # type: ignore[arg-type]


def settle(sandbox: MarketoSandbox, batches: int) -> None:
    deadline = time.monotonic() + 10
    while [j.status for j in sandbox.jobs].count("Complete") < batches:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_rows_per_object_a_page_at_a_time(sandbox: MarketoSandbox) -> None:
    client = RawClient(sandbox)
    leads, _ = leads_csv(250)
    client.upload("/bulk/v1/leads.json", leads)
    members = b"email\nann@example.com\nbob@example.com\n"
    for program in (1044, 1045):
        client.upload(
            f"/bulk/v1/program/{program}/members/import.json",
            members,
            {"format": "csv", "programMemberStatus": "Member"},
        )
    client.upload("/bulk/v1/customobjects/car_c/import.json", cars_csv(3))
    settle(sandbox, 4)

    first = get(sandbox, "/rows/leads").json()
    assert (first["object"], first["total"], first["offset"], first["limit"]) == ("leads", 250, 0, 100)
    assert first["next_offset"] == 100 and len(first["rows"]) == 100  # never the whole record unasked
    pages = [first["rows"]]
    while (offset := first["next_offset"]) is not None:
        first = get(sandbox, "/rows/leads", offset=offset, limit=100).json()
        pages.append(first["rows"])
    assert [row for page in pages for row in page] == sandbox.imported_rows("leads")

    one_program = get(sandbox, "/rows/program_members/1045").json()
    assert one_program["program_id"] == 1045 and one_program["total"] == 2
    assert one_program["rows"] == [{"email": "ann@example.com"}, {"email": "bob@example.com"}]
    assert get(sandbox, "/rows/program_members").json()["total"] == 4
    cars = get(sandbox, "/rows/custom_objects/car_c").json()
    assert cars["object"] == "custom_objects/car_c"
    assert cars["rows"] == sandbox.imported_rows("custom_objects", "car_c")
    by_batch = get(sandbox, "/rows/program_members", batch_id=sandbox.jobs[1].batch_id).json()
    assert by_batch["total"] == 2


def test_jobs_and_calls_without_secrets(sandbox: MarketoSandbox) -> None:
    client = RawClient(sandbox)
    batch = client.upload(
        "/bulk/v1/leads.json", b"email,leadScore\na@example.com,1\nb@example.com,x\n"
    ).json()
    settle(sandbox, 1)
    (job,) = get(sandbox, "/jobs").json()["jobs"]
    assert job["batch_id"] == batch["result"][0]["batchId"] and job["object_type"] == "leads"
    assert (job["status"], job["rows_processed"], job["rows_failed"], job["rows_with_warning"]) == (
        "Complete",
        1,
        1,
        0,
    )
    assert job["params"] == {"format": "csv"} and job["filename"] == "import.csv"

    calls = get(sandbox, "/calls").json()
    assert [c["path"] for c in calls["calls"]] == ["/identity/oauth/token", "/bulk/v1/leads.json"]
    assert calls["calls"][0]["query"]["client_secret"] == "***"
    assert sandbox.client_secret not in get(sandbox, "/calls").text
    assert client.token not in get(sandbox, "/calls").text
    uploads = requests.get(
        sandbox.url + API + "/calls", params={"path": "/bulk/*", "method": "POST"}, timeout=10
    ).json()
    assert uploads["total"] == 1 and uploads["calls"][0]["batch_id"] == job["batch_id"]
    # the sandbox's own paths are not Marketo calls: not recorded, not counted
    assert len(sandbox.calls) == 2


def test_reset_over_http(sandbox: MarketoSandbox) -> None:
    client = RawClient(sandbox)
    client.upload("/bulk/v1/leads.json", b"email\na@example.com\n")
    settle(sandbox, 1)
    assert requests.get(sandbox.url + API + "/reset", timeout=10).status_code == 405
    assert requests.post(sandbox.url + API + "/reset", timeout=10).json() == {"reset": True}
    assert get(sandbox, "/rows/leads").json()["total"] == 0
    assert get(sandbox, "/jobs").json()["total"] == 0 and get(sandbox, "/calls").json()["total"] == 0
    assert sandbox.imported_rows("leads") == [] and sandbox.jobs == []
    # the client's token still works, and batch ids never repeat
    again = client.upload("/bulk/v1/leads.json", b"email\nb@example.com\n").json()["result"][0]
    assert again["batchId"] == 1002
    settle(sandbox, 1)
    assert get(sandbox, "/rows/leads").json()["rows"] == [{"email": "b@example.com"}]


@pytest.mark.parametrize(
    ("path", "params", "status", "message"),
    [
        ("/rows/leads", {"limit": 10_001}, 400, "limit must be a whole number from 1 to 10,000"),
        ("/rows/leads", {"offset": -1}, 400, "offset must be a whole number 0 or more"),
        ("/rows/leads", {"access_token": "x"}, 400, "unknown query parameter(s): access_token"),
        ("/rows/custom_objects/boat_c", {}, 404, "no custom object 'boat_c' in this sandbox; it has car_c"),
        ("/rows/contacts", {}, 404, "/sandbox-api/rows/contacts is not a sandbox path"),
        ("/rows/program_members/abc", {}, 400, "program id must be a whole number"),
    ],
)
def test_refusals_name_what_is_wrong(
    sandbox: MarketoSandbox, path: str, params: dict[str, object], status: int, message: str
) -> None:
    answer = get(sandbox, path, **params)
    assert answer.status_code == status and message in answer.json()["error"]


def test_the_own_paths_are_outside_marketo_limits_and_faults() -> None:
    with MarketoSandbox(rate_limit_calls=2) as sb:
        sb.inject_fault("*", count=5, http_status=503)
        for _ in range(5):
            assert requests.get(sb.url + API + "/jobs", timeout=10).status_code == 200
        assert requests.get(sb.url + API + "/", timeout=10).json()["paths"][0] == "GET /sandbox-api/"
        assert sb.calls == [] and len(sb.backend.faults) == 1  # the fault waits for a Marketo call
