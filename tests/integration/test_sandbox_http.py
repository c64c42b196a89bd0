"""The sandbox over real HTTP: auth, limits, 413, faults and the record of calls."""

from __future__ import annotations

import concurrent.futures
import time

import pytest
import requests

from marketo_provider.testing import MarketoSandbox
from tests.helpers import RawClient

CSV = b"email,firstName\na@example.com,Ann\nb@example.com,Bob\n"


def identity_params(sandbox: MarketoSandbox, secret: str | None = None) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_id": sandbox.client_id,
        "client_secret": secret or sandbox.client_secret,
    }


def test_identity_get_and_post_with_the_query_string(sandbox: MarketoSandbox) -> None:
    params = identity_params(sandbox)
    by_get = requests.get(sandbox.url + "/identity/oauth/token", params=params, timeout=5).json()
    by_post = requests.post(sandbox.url + "/identity/oauth/token", params=params, timeout=5).json()
    assert by_get["access_token"] == by_post["access_token"]
    assert by_get["token_type"] == "bearer" and 0 < by_post["expires_in"] <= 3600
    # the record says the secret was in the URL (where Adobe puts it) and never keeps its value
    calls = sandbox.calls_to("/identity/oauth/token")
    assert [c.secrets_in_url for c in calls] == [["client_secret"], ["client_secret"]]
    assert all(c.query["client_secret"] == "***" for c in calls)
    assert all(sandbox.client_secret not in str(c) for c in calls)


def test_identity_bad_credentials_401(sandbox: MarketoSandbox) -> None:
    answer = requests.post(
        sandbox.url + "/identity/oauth/token", params=identity_params(sandbox, "wrong"), timeout=5
    )
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"


def test_identity_credentials_in_a_form_body_are_refused(sandbox: MarketoSandbox) -> None:
    answer = requests.post(sandbox.url + "/identity/oauth/token", data=identity_params(sandbox), timeout=5)
    assert answer.status_code == 401
    body = answer.json()
    assert body["error"] == "invalid_client"
    assert "query string" in body["error_description"]
    assert "client_secret" in body["error_description"] and "request body" in body["error_description"]
    (call,) = sandbox.calls_to("/identity/oauth/token")
    assert call.secrets_in_body == ["client_secret"] and call.secrets_in_url == []
    assert sandbox.client_secret not in str(call)


def test_identity_credentials_in_a_multipart_body_are_refused(sandbox: MarketoSandbox) -> None:
    answer = requests.post(
        sandbox.url + "/identity/oauth/token",
        files={k: (None, v) for k, v in identity_params(sandbox).items()},
        timeout=5,
    )
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"
    (call,) = sandbox.calls_to("/identity/oauth/token")
    assert call.secrets_in_body == ["client_secret"] and sandbox.client_secret not in str(call)


def test_identity_grant_type_must_be_client_credentials(sandbox: MarketoSandbox) -> None:
    params = {**identity_params(sandbox), "grant_type": "password"}
    answer = requests.get(sandbox.url + "/identity/oauth/token", params=params, timeout=5)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"


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
    also_in_form = requests.post(
        sandbox.url + "/bulk/v1/leads.json",
        params={"format": "csv"},
        data={"access_token": token},
        files={"file": ("a.csv", CSV, "text/csv")},
        headers=client.headers(),
        timeout=5,
    )
    assert also_in_form.json()["errors"][0]["code"] == "601"  # refused even beside a valid header
    assert sandbox.calls_to("/bulk/v1/leads.json")[1].secrets_in_body == ["access_token"]
    assert sandbox.jobs == []
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


def test_parameters_as_form_fields_are_refused(sandbox: MarketoSandbox) -> None:
    """The curl examples send parameters as form fields; the spec puts them in the query string."""
    client = RawClient(sandbox)
    answer = client.session.post(
        sandbox.url + "/bulk/v1/program/1044/members/import.json",
        data={"format": "csv", "programMemberStatus": "On List"},
        files={"file": ("m.csv", CSV, "text/csv")},
        headers=client.headers(),
        timeout=5,
    ).json()
    assert answer["success"] is False
    assert answer["errors"][0]["code"] == "1003"
    assert "Unknown multipart field(s): format, programMemberStatus" in answer["errors"][0]["message"]
    assert sandbox.jobs == []


def test_the_same_parameters_in_the_query_string_are_accepted(sandbox: MarketoSandbox) -> None:
    client = RawClient(sandbox)
    answer = client.upload(
        "/bulk/v1/program/1044/members/import.json", CSV, {"format": "csv", "programMemberStatus": "On List"}
    ).json()
    assert answer["success"] is True and answer["result"][0]["status"] == "Queued"


@pytest.mark.parametrize(
    ("path", "params", "named"),
    [
        ("/bulk/v1/leads.json", {}, "Missing required query parameter(s): format"),
        ("/bulk/v1/leads.json", {"format": "csv", "dedupe": "email"}, "Unknown query parameter(s): dedupe"),
        ("/bulk/v1/leads.json", {"format": "csv", "listId": "twelve"}, "listId must be an integer"),
        ("/bulk/v1/leads.json", {"format": "csv", "listId": "99999999999"}, "listId must be an integer"),
        (
            "/bulk/v1/leads.json",
            {"format": "csv", "programMemberStatus": "On List"},
            "Unknown query parameter(s): programMemberStatus",
        ),
        (
            "/bulk/v1/program/1044/members/import.json",
            {"format": "csv"},
            "Missing required query parameter(s): programMemberStatus",
        ),
        (
            "/bulk/v1/program/1044/members/import.json",
            {"format": "csv", "programMemberStatus": "On List", "lookupField": "email"},
            "Unknown query parameter(s): lookupField",
        ),
        ("/bulk/v1/program/abc/members/import.json", {"format": "csv"}, "programId must be a whole number"),
        ("/bulk/v1/customobjects/car_c/import.json", {"format": "csv", "listId": "1"}, "listId"),
        ("/bulk/v1/leads.json", {"format": "xls"}, "Invalid format 'xls'"),
    ],
)
def test_create_refuses_parameters_the_spec_does_not_document(
    sandbox: MarketoSandbox, path: str, params: dict[str, str], named: str
) -> None:
    error = RawClient(sandbox).upload(path, CSV, params).json()["errors"][0]
    assert error["code"] == "1003" and named in error["message"]
    assert sandbox.jobs == []


def test_a_parameter_given_twice_is_refused(sandbox: MarketoSandbox) -> None:
    client = RawClient(sandbox)
    answer = client.upload("/bulk/v1/leads.json", CSV, [("format", "csv"), ("format", "tsv")]).json()  # type: ignore[arg-type]
    assert answer["errors"][0]["code"] == "1003" and "format" in answer["errors"][0]["message"]


def test_format_is_read_whatever_its_case(sandbox: MarketoSandbox) -> None:
    """The spec's enum is lower case for leads and upper case for program members."""
    client = RawClient(sandbox)
    for path, params in (
        ("/bulk/v1/leads.json", {"format": "CSV"}),
        ("/bulk/v1/program/1044/members/import.json", {"format": "csv", "programMemberStatus": "On List"}),
        ("/bulk/v1/program/1044/members/import.json", {"format": "CSV", "programMemberStatus": "On List"}),
    ):
        assert client.upload(path, CSV, params).json()["success"] is True


def test_the_file_part_needs_a_filename(sandbox: MarketoSandbox) -> None:
    client = RawClient(sandbox)
    answer = client.session.post(
        sandbox.url + "/bulk/v1/leads.json",
        params={"format": "csv"},
        files={"file": (None, CSV)},
        headers=client.headers(),
        timeout=5,
    ).json()
    assert answer["errors"][0]["code"] == "1003" and "'file'" in answer["errors"][0]["message"]


@pytest.mark.parametrize(
    "path",
    [
        "/bulk/v1/leads/batch/1001.json",
        "/bulk/v1/leads/batch/1001/failures.json",
        "/rest/v1/leads/describe2.json",
        "/rest/v1/customobjects/car_c/describe.json",
    ],
)
def test_calls_without_query_parameters_refuse_any(sandbox: MarketoSandbox, path: str) -> None:
    client = RawClient(sandbox)
    client.upload("/bulk/v1/leads.json", CSV)
    error = client.get(path, params={"fields": "email"}).json()["errors"][0]
    assert error["code"] == "1003" and "Unknown query parameter(s): fields" in error["message"]


def test_unknown_path_610_and_wrong_method_605(sandbox: MarketoSandbox) -> None:
    client = RawClient(sandbox)
    assert client.get("/bulk/v1/lead.json").json()["errors"][0]["code"] == "610"
    assert client.get("/bulk/v1/leads.json").json()["errors"][0]["code"] == "605"
    assert client.upload("/rest/v1/leads/describe2.json", CSV).json()["errors"][0]["code"] == "605"


def test_batch_id_must_be_a_number(sandbox: MarketoSandbox) -> None:
    error = RawClient(sandbox).get("/bulk/v1/leads/batch/abc.json").json()["errors"][0]
    assert error["code"] == "1003" and "batchId" in error["message"]


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
