"""The sandbox over real HTTP: auth, limits, 413, faults and the record of calls."""

from __future__ import annotations

import concurrent.futures
import time

import pytest
import requests

from marketo_provider.testing import MarketoSandbox
from tests.helpers import RawClient

CSV = b"email,firstName\na@example.com,Ann\nb@example.com,Bob\n"


def test_identity_get_and_post(sandbox: MarketoSandbox) -> None:
    params = {
        "grant_type": "client_credentials",
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
    }
    by_get = requests.get(sandbox.url + "/identity/oauth/token", params=params, timeout=5).json()
    by_post = requests.post(sandbox.url + "/identity/oauth/token", data=params, timeout=5).json()
    assert by_get["access_token"] == by_post["access_token"]
    assert by_get["token_type"] == "bearer" and 0 < by_post["expires_in"] <= 3600


def test_identity_bad_credentials_401(sandbox: MarketoSandbox) -> None:
    answer = requests.post(
        sandbox.url + "/identity/oauth/token",
        data={"grant_type": "client_credentials", "client_id": sandbox.client_id, "client_secret": "wrong"},
        timeout=5,
    )
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"


def test_token_only_from_the_authorization_header(sandbox: MarketoSandbox) -> None:
    client = RawClient(sandbox)
    token = client.authenticate()
    in_query = requests.get(
        sandbox.url + "/rest/v1/leads/describe2.json", params={"access_token": token}, timeout=5
    )
    assert in_query.status_code == 200 and in_query.json()["errors"][0]["code"] == "601"
    in_form = requests.post(
        sandbox.url + "/bulk/v1/leads.json",
        params={"format": "csv"},
        data={"access_token": token},
        files={"file": ("a.csv", CSV, "text/csv")},
        timeout=5,
    )
    assert in_form.json()["errors"][0]["code"] == "601"
    missing = requests.get(sandbox.url + "/rest/v1/leads/describe2.json", timeout=5)
    assert missing.json() == {
        "requestId": missing.json()["requestId"],
        "success": False,
        "errors": [{"code": "601", "message": "Access token invalid"}],
    }
    assert client.get("/rest/v1/leads/describe2.json").json()["success"] is True
    # the record keeps the fact, never the token
    refused = sandbox.calls_to("/rest/v1/leads/describe2.json")[0]
    assert refused.secrets_in_url == ["access_token"] and refused.query == {"access_token": "***"}
    assert all(token not in str(call) for call in sandbox.calls)


def test_expired_token_602() -> None:
    with MarketoSandbox(token_life=1) as sb:
        client = RawClient(sb)
        client.authenticate()
        sb.advance(2)
        assert client.get("/rest/v1/leads/describe2.json").json()["errors"][0]["code"] == "602"
        client.authenticate()
        assert client.get("/rest/v1/leads/describe2.json").json()["success"] is True


def test_upload_import_poll_and_read_files(sandbox: MarketoSandbox) -> None:
    client = RawClient(sandbox)
    created = client.upload(
        "/bulk/v1/leads.json", CSV + b"bad-email,Cy\n", {"format": "csv", "lookupField": "email"}
    )
    batch = created.json()["result"][0]["batchId"]
    deadline = time.monotonic() + 10
    while (status := client.get(f"/bulk/v1/leads/batch/{batch}.json").json()["result"][0])[
        "status"
    ] != "Complete":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert status["numOfLeadsProcessed"] == 3 and status["numOfRowsWithWarning"] == 1
    warnings = client.get(f"/bulk/v1/leads/batch/{batch}/warnings.json")
    assert warnings.headers["content-type"] == "text/csv;charset=UTF-8"
    assert warnings.text == "email,firstName,Import Warning Reason\nbad-email,Cy,Invalid email address\n"
    assert client.get(f"/bulk/v1/leads/batch/{batch}/failures.json").text == ""
    assert [r["email"] for r in sandbox.imported_rows("leads")] == [
        "a@example.com",
        "b@example.com",
        "bad-email",
    ]
    upload = sandbox.calls_to("/bulk/v1/leads.json")[0]
    assert upload.upload_bytes == len(CSV) + len(b"bad-email,Cy\n") and upload.batch_id == batch


def test_custom_object_without_result_file_is_404(sandbox: MarketoSandbox) -> None:
    client = RawClient(sandbox)
    batch = client.upload("/bulk/v1/customobjects/car_c/import.json", b"vin,make\nV1,Honda\n").json()[
        "result"
    ][0]["batchId"]
    sandbox.advance(5)
    assert client.get(f"/bulk/v1/customobjects/car_c/import/{batch}/failures.json").status_code == 404
    assert client.get(f"/bulk/v1/customobjects/car_c/import/{batch}/warnings.json").status_code == 404


def test_parameters_as_form_fields_like_the_curl_examples(sandbox: MarketoSandbox) -> None:
    client = RawClient(sandbox)
    answer = client.session.post(
        sandbox.url + "/bulk/v1/program/1044/members/import.json",
        data={"format": "csv", "programMemberStatus": "On List"},
        files={"file": ("m.csv", CSV, "text/csv")},
        headers=client.headers(),
        timeout=5,
    ).json()
    assert answer["success"] is True and answer["result"][0]["status"] == "Queued"


def test_413_above_the_size_limit() -> None:
    with MarketoSandbox(max_file_bytes=1000) as sb:
        client = RawClient(sb)
        too_big = b"email\n" + b"a@example.com\n" * 100
        assert client.upload("/bulk/v1/leads.json", too_big).status_code == 413
        assert client.upload("/bulk/v1/leads.json", too_big[:990]).json()["success"] is True
        assert [j.size for j in sb.jobs] == [990]


def test_non_multipart_upload_is_612(sandbox: MarketoSandbox) -> None:
    client = RawClient(sandbox)
    answer = client.session.post(
        sandbox.url + "/bulk/v1/leads.json?format=csv",
        data=CSV,
        headers={**client.headers(), "Content-Type": "text/csv"},
        timeout=5,
    )
    assert answer.json()["errors"][0]["code"] == "612"


def test_missing_file_part(sandbox: MarketoSandbox) -> None:
    client = RawClient(sandbox)
    answer = client.session.post(
        sandbox.url + "/bulk/v1/leads.json?format=csv",
        files={"upload": ("a.csv", CSV)},
        headers=client.headers(),
        timeout=5,
    )
    assert answer.json()["errors"][0]["code"] == "1003"


def test_queue_full_1016_over_http() -> None:
    with MarketoSandbox(manual_clock=True) as sb:
        client = RawClient(sb)
        answers = [client.upload("/bulk/v1/leads.json", CSV).json() for _ in range(11)]
        assert all(a["success"] for a in answers[:10])
        assert answers[10]["errors"] == [{"code": "1016", "message": "Too many imports"}]


class TestFaults:
    def test_error_code_for_the_next_n_calls(self, sandbox: MarketoSandbox) -> None:
        client = RawClient(sandbox)
        sandbox.inject_fault("/rest/v1/leads/describe2.json", count=2, code="604")
        codes = [
            client.get("/rest/v1/leads/describe2.json").json().get("errors", [{}])[0].get("code")
            for _ in range(3)
        ]
        assert codes == ["604", "604", None]

    def test_glob_patterns_and_custom_message(self, sandbox: MarketoSandbox) -> None:
        client = RawClient(sandbox)
        sandbox.inject_fault("/bulk/v1/*", code="1016", message="Too many imports")
        assert client.upload("/bulk/v1/leads.json", CSV).json()["errors"][0] == {
            "code": "1016",
            "message": "Too many imports",
        }

    def test_http_status(self, sandbox: MarketoSandbox) -> None:
        client = RawClient(sandbox)
        sandbox.inject_fault("/rest/v1/*", http_status=503)
        assert client.get("/rest/v1/leads/describe2.json").status_code == 503
        assert client.get("/rest/v1/leads/describe2.json").status_code == 200

    def test_delay(self, sandbox: MarketoSandbox) -> None:
        client = RawClient(sandbox)
        client.authenticate()
        sandbox.inject_fault("/rest/v1/*", delay=0.5)
        start = time.monotonic()
        assert client.get("/rest/v1/leads/describe2.json").json()["success"]
        assert time.monotonic() - start >= 0.5
        with pytest.raises(requests.Timeout):
            sandbox.inject_fault("/rest/v1/*", delay=1.0)
            client.session.get(
                sandbox.url + "/rest/v1/leads/describe2.json", headers=client.headers(), timeout=0.2
            )

    def test_dropped_connection_before_processing(self, sandbox: MarketoSandbox) -> None:
        client = RawClient(sandbox)
        client.authenticate()
        sandbox.inject_fault("/bulk/v1/leads.json", drop_connection=True)
        with pytest.raises(requests.ConnectionError):
            client.upload("/bulk/v1/leads.json", CSV)
        assert sandbox.jobs == []

    def test_dropped_connection_after_processing(self, sandbox: MarketoSandbox) -> None:
        client = RawClient(sandbox)
        client.authenticate()
        sandbox.inject_fault("/bulk/v1/leads.json", drop_connection=True, after_processing=True)
        with pytest.raises(requests.ConnectionError):
            client.upload("/bulk/v1/leads.json", CSV)
        assert len(sandbox.jobs) == 1  # the import happened, but the client never heard of it

    def test_method_filter(self, sandbox: MarketoSandbox) -> None:
        client = RawClient(sandbox)
        sandbox.inject_fault("/identity/oauth/token", method="GET", http_status=502)
        assert client.authenticate()  # POST is not affected


def test_rate_limit_606_over_http() -> None:
    with MarketoSandbox(rate_limit_calls=3) as sb:
        client = RawClient(sb)
        client.authenticate()
        codes = [
            client.get("/rest/v1/leads/describe2.json").json().get("errors", [{}])[0].get("code")
            for _ in range(4)
        ]
        assert codes == [None, None, None, "606"]
        client.authenticate()  # identity calls do not count


def test_concurrency_615_over_http() -> None:
    with MarketoSandbox(max_concurrent=2, rate_limit=False) as sb:
        client = RawClient(sb)
        headers = client.headers()
        sb.inject_fault("/rest/v1/*", count=2, delay=0.6)

        def call() -> str | None:
            answer = requests.get(sb.url + "/rest/v1/leads/describe2.json", headers=headers, timeout=5).json()
            return answer.get("errors", [{}])[0].get("code")

        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            slow = [pool.submit(call) for _ in range(2)]
            time.sleep(0.3)
            assert call() == "615"
            assert [f.result() for f in slow] == [None, None]


def test_connection_json(sandbox: MarketoSandbox) -> None:
    import json

    conn = json.loads(sandbox.connection_json())
    assert conn == {
        "conn_type": "marketo",
        "host": sandbox.url,
        "login": sandbox.client_id,
        "password": sandbox.client_secret,
    }
    assert sandbox.env() == {"AIRFLOW_CONN_MARKETO_DEFAULT": sandbox.connection_json()}


def test_other_calls_are_answered_while_a_job_is_checked(sandbox: MarketoSandbox) -> None:
    """Checking a finished job's rows does not hold up the server: a describe call is answered
    while the check is still under way (the check waits for it here)."""
    import threading

    client = RawClient(sandbox)
    batch = client.upload("/bulk/v1/leads.json", CSV).json()["result"][0]["batchId"]
    checking, answered = threading.Event(), threading.Event()
    original = sandbox.backend._check_rows

    def slow_check(job):  # type: ignore[no-untyped-def]
        checking.set()
        assert answered.wait(10), "the describe call was not answered during the check"
        return original(job)

    sandbox.backend._check_rows = slow_check  # type: ignore[method-assign]
    sandbox.advance(5)  # the job finishes importing; its rows are checked on the next status call
    headers = client.headers()
    url = f"{sandbox.url}/bulk/v1/leads/batch/{batch}.json"
    status = threading.Thread(target=lambda: requests.get(url, headers=headers, timeout=20))
    status.start()
    assert checking.wait(10)
    assert client.get("/rest/v1/leads/describe2.json").json()["success"] is True
    answered.set()
    status.join(10)
    assert client.get(f"/bulk/v1/leads/batch/{batch}.json").json()["result"][0]["status"] == "Complete"
