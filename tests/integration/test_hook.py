"""MarketoHook over real HTTP against the sandbox."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import time
from pathlib import Path

import pytest

from marketo_provider.api import (
    BatchStatus,
    ImportTarget,
    MarketoAPIError,
    MarketoAuthError,
    MarketoConnectionConfigError,
    MarketoQueueFullError,
    MarketoQuotaExceededError,
    MarketoSubmitOutcomeUnknownError,
    MarketoTransientError,
    MarketoValueError,
    ObjectType,
)
from marketo_provider.hooks.marketo import MarketoHook, clear_token_cache
from marketo_provider.testing import MarketoSandbox
from tests.conftest import fast_hook, free_port

LEADS_CSV = b"email,firstName,leadScore\na@example.com,Ann,1\nb@example.com,Bob,x\nnot-an-email,Cy,3\n"
MEMBERS_CSV = LEADS_CSV
CARS_CSV = b"vin,make,year,customerEmail\nV1,Honda,2020,a@example.com\nV2,Ford,twenty,b@example.com\nV3,Kia,2021,bad\n"

CASES = [
    ("leads", {"lookup_field": "email", "list_id": 12}, LEADS_CSV, "numOfLeadsProcessed", {}),
    (
        "program_members",
        {"program_id": 1044, "program_member_status": "On List"},
        MEMBERS_CSV,
        "numOfLeadsProcessed",
        {},
    ),
    (
        "custom_objects",
        {"custom_object_name": "car_c"},
        CARS_CSV,
        "numOfObjectsProcessed",
        {"custom_object_name": "car_c"},
    ),
]


def result_file(hook: MarketoHook, object_type: str, batch_id: int, kind: str, **kw: str) -> bytes | None:
    """A batch's failures or warnings file as bytes, or None when Marketo has none."""
    buffer = io.BytesIO()
    written = hook.download_result_file(object_type, batch_id, kind, buffer, **kw)
    return None if written is None else buffer.getvalue()


def wait_done(hook: MarketoHook, object_type: str, batch_id: int, **kw: str) -> dict:
    deadline = time.monotonic() + 10
    while (status := hook.get_import_status(object_type, batch_id, **kw))["status"] not in (
        "Complete",
        "Failed",
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return status


@pytest.mark.parametrize(("object_type", "params", "content", "count_field", "batch_kw"), CASES)
def test_submit_status_results_describe(
    marketo_env: MarketoSandbox,
    tmp_path: Path,
    object_type: str,
    params: dict,
    content: bytes,
    count_field: str,
    batch_kw: dict,
) -> None:
    source = tmp_path / "import.csv"
    source.write_bytes(content)
    hook = fast_hook()
    entry = hook.submit_import(object_type, source, **params)
    assert entry["status"] == "Queued" and isinstance(entry["batchId"], int)
    status = wait_done(hook, object_type, entry["batchId"], **batch_kw)
    assert status[count_field] == 2 and status["numOfRowsFailed"] == 1 and status["numOfRowsWithWarning"] == 1
    failures = result_file(hook, object_type, entry["batchId"], "failures", **batch_kw)
    warnings = result_file(hook, object_type, entry["batchId"], "warnings", **batch_kw)
    assert failures is not None and failures.decode().splitlines()[0].endswith(",Import Failure Reason")
    assert warnings is not None and warnings.decode().endswith(",Invalid email address\n")
    described = hook.describe(object_type, **batch_kw)
    header = set(content.split(b"\n")[0].decode().split(","))
    if object_type == "program_members":  # lists program member fields; lead fields are allowed too
        assert {"membershipDate", "statusName"} <= set(described["fields"])
    else:
        assert header <= set(described["fields"])
    assert (
        described["dedupe_fields"]
        == {"leads": [], "program_members": ["leadId", "programId"], "custom_objects": ["vin"]}[object_type]
    )
    upload = marketo_env.calls_to("/bulk/v1/*", "POST")[0]
    assert upload.content_type == "text/csv" and upload.upload_bytes == len(content)


def test_file_object_upload_and_formats(marketo_env: MarketoSandbox) -> None:
    hook = fast_hook()
    entry = hook.submit_import(
        "leads", io.BytesIO(b"email;leadScore\na@example.com;x\n"), file_format="ssv", filename="x.ssv"
    )
    wait_done(hook, "leads", entry["batchId"])
    assert result_file(hook, "leads", entry["batchId"], "failures") == (
        b"email;leadScore;Import Failure Reason\na@example.com;x;Invalid data type in field Lead Score\n"
    )
    assert result_file(hook, "leads", entry["batchId"], "warnings") == b""
    hook.submit_import("leads", io.BytesIO(b"email\ta\n"), file_format="tsv")
    types = [c.content_type for c in marketo_env.calls_to("/bulk/v1/leads.json")]
    assert types == ["text/plain", "text/tab-separated-values"]


def test_custom_object_without_file_is_none(marketo_env: MarketoSandbox) -> None:
    hook = fast_hook()
    entry = hook.submit_import("custom_objects", io.BytesIO(b"vin\nV9\n"), custom_object_name="car_c")
    assert "importId" not in entry and entry["objectApiName"] == "car_c"
    wait_done(hook, "custom_objects", entry["batchId"], custom_object_name="car_c")
    sink = io.BytesIO()
    assert (
        hook.download_result_file(
            "custom_objects", entry["batchId"], "failures", sink, custom_object_name="car_c"
        )
        is None
    )


def test_one_identity_call_per_token_lifetime(marketo_env: MarketoSandbox) -> None:
    first, second = fast_hook(), fast_hook()
    for hook in (first, second, first):
        hook.describe("leads")
        hook.describe("program_members")
    assert len(marketo_env.calls_to("/identity/oauth/token")) == 1


def test_token_expiry_in_the_middle_of_a_sequence(marketo_env: MarketoSandbox) -> None:
    hook = fast_hook()
    entry = hook.submit_import("leads", io.BytesIO(LEADS_CSV))
    marketo_env.expire_tokens()
    status = wait_done(hook, "leads", entry["batchId"])
    assert status["status"] == "Complete"
    codes = [c.error_code for c in marketo_env.calls if c.path.startswith("/bulk/v1/leads/batch/")]
    assert codes[0] == "602" and all(c is None for c in codes[1:])
    assert len(marketo_env.calls_to("/identity/oauth/token")) == 2


def test_token_invalid_601_is_renewed_once(marketo_env: MarketoSandbox) -> None:
    hook = fast_hook()
    marketo_env.inject_fault("/rest/v1/leads/describe2.json", code="601")
    assert hook.describe("leads")["fields"]
    marketo_env.inject_fault("/rest/v1/leads/describe2.json", code="601", count=2)
    with pytest.raises(MarketoAPIError) as err:
        fast_hook(max_attempts=1).describe("leads")
    assert err.value.code == "601"


@pytest.mark.parametrize("code", ["604", "608", "611", "713", "719", "1019", "606", "615"])
def test_retried_error_codes(marketo_env: MarketoSandbox, code: str) -> None:
    marketo_env.inject_fault("/rest/v1/leads/describe2.json", code=code, count=2)
    assert fast_hook().describe("leads")["fields"]
    assert len(marketo_env.calls_to("/rest/v1/leads/describe2.json")) == 3


@pytest.mark.parametrize("status", [502, 503, 504])
def test_retried_http_statuses(marketo_env: MarketoSandbox, status: int) -> None:
    marketo_env.inject_fault("/rest/v1/*", http_status=status, count=2)
    assert fast_hook().describe("leads")["fields"]


def test_dropped_connection_on_a_read_is_retried(marketo_env: MarketoSandbox) -> None:
    marketo_env.inject_fault("/rest/v1/*", drop_connection=True)
    assert fast_hook().describe("leads")["fields"]


def test_slow_answer_times_out_and_is_retried(
    marketo_env: MarketoSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in marketo_env.env(timeout=0.3).items():
        monkeypatch.setenv(key, value)
    marketo_env.inject_fault("/rest/v1/*", delay=1.0)
    assert fast_hook().describe("leads")["fields"]


def test_606_waits_out_the_window(marketo_env: MarketoSandbox) -> None:
    marketo_env.inject_fault("/rest/v1/*", code="606")
    hook = fast_hook(rate_limit_wait_seconds=0.5)
    started = time.monotonic()
    hook.describe("leads")
    assert time.monotonic() - started >= 0.5


def test_retries_are_bounded_by_attempts(marketo_env: MarketoSandbox) -> None:
    marketo_env.inject_fault("/rest/v1/*", code="604", count=10)
    with pytest.raises(MarketoTransientError) as err:
        fast_hook(max_attempts=3).describe("leads")
    assert err.value.code == "604"
    assert len(marketo_env.calls_to("/rest/v1/leads/describe2.json")) == 3


def test_retries_are_bounded_by_time(marketo_env: MarketoSandbox) -> None:
    marketo_env.inject_fault("/rest/v1/*", code="604", count=100)
    started = time.monotonic()
    with pytest.raises(MarketoTransientError):
        fast_hook(max_attempts=100, max_retry_seconds=0.5, retry_base_seconds=0.1).describe("leads")
    assert time.monotonic() - started < 5


def test_607_stops_at_once(marketo_env: MarketoSandbox) -> None:
    marketo_env.inject_fault("/rest/v1/*", code="607", count=5)
    with pytest.raises(MarketoQuotaExceededError) as err:
        fast_hook().describe("leads")
    assert "607" in str(err.value) and "midnight" in str(err.value)
    assert len(marketo_env.calls_to("/rest/v1/leads/describe2.json")) == 1


def test_non_retryable_code_fails_with_marketos_message(marketo_env: MarketoSandbox) -> None:
    with pytest.raises(MarketoAPIError) as err:
        fast_hook().submit_import(
            "program_members",
            io.BytesIO(b"email\na@example.com\n"),
            program_id=5,
            program_member_status="Partying",
        )
    assert err.value.code == "1003" and "Partying" in err.value.message
    assert len(marketo_env.calls_to("/bulk/v1/*")) == 1


def test_queue_full_is_raised_for_the_caller_to_wait(marketo_env: MarketoSandbox) -> None:
    marketo_env.inject_fault("/bulk/v1/leads.json", code="1016")
    with pytest.raises(MarketoQueueFullError):
        fast_hook().submit_import("leads", io.BytesIO(LEADS_CSV))
    assert len(marketo_env.calls_to("/bulk/v1/leads.json")) == 1


def test_upload_retried_when_marketo_answers_an_error(marketo_env: MarketoSandbox) -> None:
    marketo_env.inject_fault("/bulk/v1/leads.json", code="604")
    fast_hook().submit_import("leads", io.BytesIO(LEADS_CSV))
    assert len(marketo_env.jobs) == 1
    assert [c.upload_bytes for c in marketo_env.calls_to("/bulk/v1/leads.json")] == [None, len(LEADS_CSV)]


@pytest.mark.parametrize("after_processing", [False, True])
def test_upload_is_not_resent_when_the_connection_drops(
    marketo_env: MarketoSandbox, after_processing: bool
) -> None:
    marketo_env.inject_fault("/bulk/v1/leads.json", drop_connection=True, after_processing=after_processing)
    with pytest.raises(MarketoSubmitOutcomeUnknownError, match="not sent again"):
        fast_hook().submit_import("leads", io.BytesIO(LEADS_CSV))
    assert len(marketo_env.calls_to("/bulk/v1/leads.json")) == 1
    assert len(marketo_env.jobs) == (1 if after_processing else 0)


def test_a_refused_connection_fails_at_once_with_default_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from marketo_provider.api import MarketoTransportError

    port = free_port()
    clear_token_cache()
    monkeypatch.setenv(
        "AIRFLOW_CONN_MARKETO_DEFAULT",
        json.dumps(
            {"conn_type": "marketo", "host": f"http://127.0.0.1:{port}", "login": "id", "password": "s3cret"}
        ),
    )
    started = time.monotonic()
    with pytest.raises(MarketoTransportError, match="connection was refused: check the host and port") as err:
        MarketoHook().submit_import("leads", io.BytesIO(LEADS_CSV))
    assert time.monotonic() - started < 15  # the bound fail-fast promises, with default retry settings
    assert err.value.permanent and "s3cret" not in str(err.value) and "client_secret" not in str(err.value)


def test_file_too_large_is_refused_before_sending(marketo_env: MarketoSandbox, tmp_path: Path) -> None:
    big = tmp_path / "big.csv"
    with big.open("wb") as f:
        f.truncate(10_000_001)
    with pytest.raises(MarketoValueError, match="10,000,000"):
        fast_hook().submit_import("leads", big)
    assert marketo_env.calls == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"object_type": "contacts"}, "object_type 'contacts'"),
        ({"file_format": "xlsx"}, "file_format 'xlsx'"),
        ({"object_type": "program_members", "program_id": 3}, "program_member_status is required"),
        ({"object_type": "program_members", "program_member_status": "On List"}, "program_id is required"),
        ({"object_type": "custom_objects"}, "custom_object_name"),
        ({"list_id": "abc"}, "list_id must be a whole number"),
        (
            {"object_type": "custom_objects", "custom_object_name": "car_c", "lookup_field": "email"},
            "only apply to lead",
        ),
    ],
)
def test_bad_arguments_are_refused_before_sending(
    marketo_env: MarketoSandbox, kwargs: dict, message: str
) -> None:
    kwargs = {"object_type": "leads", **kwargs}
    with pytest.raises(MarketoValueError, match=message):
        fast_hook().submit_import(kwargs.pop("object_type"), io.BytesIO(LEADS_CSV), **kwargs)
    assert marketo_env.calls == []


def test_missing_file_is_a_clear_error(marketo_env: MarketoSandbox, tmp_path: Path) -> None:
    with pytest.raises(MarketoValueError, match="cannot read import file"):
        fast_hook().submit_import("leads", tmp_path / "nope.csv")


def test_bad_credentials(
    marketo_env: MarketoSandbox, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    conn = {**marketo_env.connection(), "password": "wrong-secret-value"}
    monkeypatch.setenv("AIRFLOW_CONN_MARKETO_BAD", json.dumps(conn))
    hook = fast_hook("marketo_bad")
    with pytest.raises(MarketoAuthError) as err:
        hook.describe("leads")
    assert "'marketo_bad'" in str(err.value) and "wrong-secret-value" not in str(err.value)
    ok, reason = fast_hook("marketo_bad").test_connection()
    assert not ok and "Client Secret" in reason and "wrong-secret-value" not in reason
    assert "wrong-secret-value" not in caplog.text
    assert len(marketo_env.calls_to("/identity/oauth/token")) == 2  # 401 is not retried


@pytest.mark.parametrize(
    ("conn", "missing"),
    [
        ({"conn_type": "marketo", "login": "id", "password": "pw"}, "no host"),
        ({"conn_type": "marketo", "host": "h.mktorest.com", "password": "pw"}, "no login (the Client ID)"),
        (
            {"conn_type": "marketo", "host": "h.mktorest.com", "login": "id"},
            "no password (the Client Secret)",
        ),
    ],
)
def test_incomplete_connection(monkeypatch: pytest.MonkeyPatch, conn: dict, missing: str) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_MARKETO_HALF", json.dumps(conn))
    with pytest.raises(MarketoConnectionConfigError, match=re.escape(f"'marketo_half' has {missing}")):
        _ = MarketoHook("marketo_half").settings


def test_test_connection(marketo_env: MarketoSandbox) -> None:
    ok, message = fast_hook().test_connection()
    assert ok and marketo_env.url in message


def test_no_secret_or_token_in_logs_or_urls(
    marketo_env: MarketoSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hook = fast_hook()
    entry = hook.submit_import("leads", io.BytesIO(LEADS_CSV))
    marketo_env.expire_tokens()
    wait_done(hook, "leads", entry["batchId"])
    result_file(hook, "leads", entry["batchId"], "failures")
    token = marketo_env.backend._current_token
    assert token and marketo_env.client_secret not in caplog.text and token not in caplog.text
    identity = marketo_env.calls_to("/identity/oauth/token")
    for call in marketo_env.calls:
        assert call.secrets_in_url == ([] if call not in identity else ["client_secret"]), call
        assert token not in json.dumps(call.query) and marketo_env.client_secret not in json.dumps(call.query)
    # As Adobe documents the identity call: the credentials in the query string, none in a body.
    assert identity and all(c.method == "GET" and c.secrets_in_body == [] for c in identity)
    assert all(c.bearer for c in marketo_env.calls if not c.path.startswith("/identity"))


def test_host_forms(marketo_env: MarketoSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_MARKETO_REST",
        json.dumps({**marketo_env.connection(), "host": marketo_env.url + "/rest/"}),
    )
    assert fast_hook("marketo_rest").describe("leads")["fields"]


class TestAsync:
    def test_status_token_and_expiry(self, marketo_env: MarketoSandbox) -> None:
        hook = fast_hook()
        first = hook.submit_import("leads", io.BytesIO(LEADS_CSV))
        second = hook.submit_import("leads", io.BytesIO(LEADS_CSV))
        clear_token_cache()
        marketo_env.expire_tokens()

        async def poll() -> list[str]:
            async_hook = fast_hook()
            deadline = time.monotonic() + 10
            target = ImportTarget(ObjectType.LEADS)
            while True:
                statuses = [
                    BatchStatus.from_entry(
                        target.object_type, await async_hook.aget_import_status(target, batch["batchId"])
                    )
                    for batch in (first, second)
                ]
                if all(s.done for s in statuses) or time.monotonic() > deadline:
                    return [s.status for s in statuses]
                await asyncio.sleep(0.05)

        assert asyncio.run(poll()) == ["Complete", "Complete"]
        assert len(marketo_env.calls_to("/identity/oauth/token")) == 2

    def test_retries_and_607(self, marketo_env: MarketoSandbox) -> None:
        batch = fast_hook().submit_import("leads", io.BytesIO(LEADS_CSV))["batchId"]
        marketo_env.inject_fault("/bulk/v1/leads/batch/*", code="611")
        marketo_env.inject_fault("/bulk/v1/leads/batch/*", http_status=503)
        marketo_env.inject_fault("/bulk/v1/leads/batch/*", drop_connection=True)
        entry = asyncio.run(fast_hook().aget_import_status("leads", batch))
        assert entry["batchId"] == batch
        marketo_env.inject_fault("/bulk/v1/leads/batch/*", code="607", count=3)
        with pytest.raises(MarketoQuotaExceededError):
            asyncio.run(fast_hook().aget_import_status("leads", batch))

    def test_bad_credentials(self, marketo_env: MarketoSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(
            "AIRFLOW_CONN_MARKETO_BAD", json.dumps({**marketo_env.connection(), "password": "nope"})
        )
        with pytest.raises(MarketoAuthError, match="marketo_bad"):
            asyncio.run(fast_hook("marketo_bad").aget_import_status("leads", 1))


@pytest.mark.parametrize(("status", "resent"), [(503, True), (502, False), (504, False)])
def test_upload_gateway_errors(marketo_env: MarketoSandbox, status: int, resent: bool) -> None:
    marketo_env.inject_fault("/bulk/v1/leads.json", http_status=status)
    if resent:  # 503: the service refused it, so sending again is safe
        fast_hook().submit_import("leads", io.BytesIO(LEADS_CSV))
    else:  # 502/504: a gateway answered, Marketo may have the upload; never sent twice
        with pytest.raises(MarketoSubmitOutcomeUnknownError):
            fast_hook().submit_import("leads", io.BytesIO(LEADS_CSV))
    assert len(marketo_env.calls_to("/bulk/v1/leads.json")) == (2 if resent else 1)


def test_pacing_keeps_a_process_out_of_606() -> None:
    clear_token_cache()
    # A window of a second, the pacer a call under the limit: a busy machine that delays a call
    # by a few tens of milliseconds (CI runs tests side by side) must not bunch two windows' calls.
    with MarketoSandbox(rate_limit_calls=10, rate_limit_window=1.0) as sandbox:
        import os

        os.environ.update(sandbox.env("marketo_paced"))
        hook = fast_hook("marketo_paced", calls_per_window=9, rate_limit_wait_seconds=1.0)
        batch = hook.submit_import("leads", io.BytesIO(LEADS_CSV))["batchId"]
        for _ in range(30):
            hook.get_import_status("leads", batch)
        assert [c.error_code for c in sandbox.calls if c.error_code] == []
        assert hook.api_calls == 31


def test_an_upload_whose_answer_is_late_is_not_resent(monkeypatch: pytest.MonkeyPatch) -> None:
    """Marketo created the import but answered after the read timeout: the outcome is unknown to
    the client, which does not send the file again."""
    clear_token_cache()
    with MarketoSandbox(queued_seconds=0.05, import_seconds=0.1) as sandbox:
        monkeypatch.setenv("AIRFLOW_CONN_MARKETO_LATE", sandbox.connection_json(timeout=0.5))
        sandbox.inject_fault("/bulk/v1/leads.json", answer_delay=2.0)
        hook = fast_hook("marketo_late")
        hook._read_timeout_cap = 0.5  # uploads otherwise wait at least 300 s for their answer
        with pytest.raises(MarketoSubmitOutcomeUnknownError, match="not sent again"):
            hook.submit_import("leads", io.BytesIO(LEADS_CSV))
        assert len(sandbox.calls_to("/bulk/v1/leads.json")) == 1 and len(sandbox.jobs) == 1
