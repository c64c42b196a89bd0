"""Marketo's rules in marketo_provider.api: no I/O, so tested directly."""

from __future__ import annotations

import json
import re

import pytest

from marketo_provider import api
from marketo_provider.api import (
    BatchStatus,
    FileFormat,
    ImportTarget,
    MarketoAPIError,
    MarketoConnectionConfigError,
    MarketoValueError,
    ObjectType,
)
from marketo_provider.api.answers import (
    raise_for_http_status,
    read_batch,
    read_batch_answer,
    read_envelope,
    read_token_answer,
)
from marketo_provider.api.codes import ErrorAction, error_action
from marketo_provider.api.connection import connection_settings
from marketo_provider.api.errors import TransportFailure, error_for
from marketo_provider.api.import_spec import IMPORT_KEYWORDS
from marketo_provider.api.limits import MAX_SERVER_MESSAGE_CHARS, CallPacer, queue_full_wait_seconds
from marketo_provider.api.protocol import Answer, Call, Flow, NeedToken, call_flow, token_call
from marketo_provider.api.redaction import (
    redact,
    remember_secret,
    server_text,
    uri_credentials,
    without_secrets,
)
from marketo_provider.api.retries import is_retryable, retry_wait_seconds


@pytest.mark.parametrize(
    ("host", "rest", "identity"),
    [
        (
            "https://123-ABC-456.mktorest.com",
            "https://123-ABC-456.mktorest.com",
            "https://123-ABC-456.mktorest.com/identity",
        ),
        (
            "123-ABC-456.mktorest.com",
            "https://123-ABC-456.mktorest.com",
            "https://123-ABC-456.mktorest.com/identity",
        ),
        (
            "https://123-ABC-456.mktorest.com/rest/",
            "https://123-ABC-456.mktorest.com",
            "https://123-ABC-456.mktorest.com/identity",
        ),
        (" http://127.0.0.1:8765/ ", "http://127.0.0.1:8765", "http://127.0.0.1:8765/identity"),
    ],
)
def test_host_forms(host: str, rest: str, identity: str) -> None:
    settings = connection_settings("c", host=host, login="id", password="pw")
    assert (settings.rest_url, settings.identity_url) == (rest, identity)
    assert settings.token_url == identity + "/oauth/token"


def test_extras() -> None:
    settings = connection_settings(
        "c",
        host="h",
        login="id",
        password="pw",
        extra={
            "identity_url": "https://id.example.com/identity/oauth/token",
            "timeout": "12.5",
            "verify": "false",
        },
    )
    assert settings.identity_url == "https://id.example.com/identity"
    assert settings.timeout == 12.5 and settings.verify is False
    assert (
        connection_settings("c", host="h", login="i", password="p", extra={"verify": "/etc/ca.pem"}).verify
        == "/etc/ca.pem"
    )
    assert connection_settings("c", host="h", login="i", password="p", extra={"verify": True}).verify is True
    with pytest.raises(MarketoConnectionConfigError, match="'timeout' must be a number"):
        connection_settings("c", host="h", login="i", password="p", extra={"timeout": "soon"})
    assert "pw" not in repr(connection_settings("c", host="h", login="id", password="pw"))


def test_missing_fields_are_all_named() -> None:
    with pytest.raises(MarketoConnectionConfigError) as err:
        connection_settings("marketo_x", host="", login=None, password="pw")
    assert "'marketo_x'" in str(err.value) and "no host" in str(err.value) and "no login" in str(err.value)


@pytest.mark.parametrize(
    ("code", "action", "cls"),
    [
        ("601", ErrorAction.REFRESH_TOKEN, api.MarketoTokenError),
        ("602", ErrorAction.REFRESH_TOKEN, api.MarketoTokenError),
        ("604", ErrorAction.RETRY, api.MarketoTransientError),
        ("1019", ErrorAction.RETRY, api.MarketoTransientError),
        ("606", ErrorAction.WAIT_RATE_WINDOW, api.MarketoRateLimitError),
        ("615", ErrorAction.BACK_OFF, api.MarketoConcurrencyError),
        ("607", ErrorAction.WAIT_FOR_RESET, api.MarketoQuotaExceededError),
        ("1016", ErrorAction.WAIT_FOR_QUEUE, api.MarketoQueueFullError),
        ("1003", ErrorAction.STOP, MarketoAPIError),
        ("610", ErrorAction.STOP, MarketoAPIError),
    ],
)
def test_error_classes(code: str, action: ErrorAction, cls: type) -> None:
    assert error_action(code) is action
    exc = error_for(code, "msg")
    assert type(exc) is cls and exc.code == code and f"Marketo error {code}: msg" in str(exc)
    assert is_retryable(exc) == (
        action in (ErrorAction.RETRY, ErrorAction.WAIT_RATE_WINDOW, ErrorAction.BACK_OFF)
    )


def test_http_statuses() -> None:
    assert error_action(None, 503) is ErrorAction.RETRY
    assert error_action(None, 400) is ErrorAction.STOP
    with pytest.raises(api.MarketoFileTooLargeError):
        raise_for_http_status(413)
    with pytest.raises(api.MarketoTransientError):
        raise_for_http_status(504)
    raise_for_http_status(200)


def test_retry_waits() -> None:
    rate = error_for("606", "x")
    assert 20.0 <= retry_wait_seconds(rate, 1) <= 22.0
    assert retry_wait_seconds(rate, 1, rate_window=1.0) <= 1.1
    waits = [retry_wait_seconds(error_for("604", "x"), n, base=1.0) for n in range(1, 10)]
    assert 0.5 <= waits[0] <= 1.0 and all(30.0 <= w <= 60.0 for w in waits[-3:])


def test_envelope_reading() -> None:
    assert read_envelope({"requestId": "r", "success": True, "result": [{"a": 1}]}) == [{"a": 1}]
    assert read_envelope({"requestId": "r", "success": True}) == []
    with pytest.raises(api.MarketoQueueFullError):
        read_envelope(
            {"requestId": "r", "success": False, "errors": [{"code": "1016", "message": "Too many imports"}]}
        )
    with pytest.raises(api.MarketoError):
        read_envelope("<html>")
    with pytest.raises(api.MarketoError):
        read_batch_answer({"success": True, "result": []})


def answer(status: int, body: object = None) -> Answer:
    return Answer(status, {"content-type": "application/json"}, text=json.dumps(body))


def test_token_answer() -> None:
    token = read_token_answer(answer(200, {"access_token": "t:ab", "expires_in": 3599}), now=100.0)
    assert token.expires_at == 3699.0 and token.fresh_at(3600.0) and not token.fresh_at(3640.0)
    near_end = read_token_answer(answer(200, {"access_token": "t:ab", "expires_in": 10}), now=0.0)
    assert near_end.renew_at == 5.0
    with pytest.raises(api.MarketoAuthError, match="'conn'") as refused:
        read_token_answer(
            answer(401, {"error": "invalid_client", "error_description": "secret=hunter2 echoed"}), 0, "conn"
        )
    assert "(invalid_client)" in str(refused.value) and "hunter2" not in str(refused.value)
    assert refused.value.permanent


def test_the_identity_call_carries_the_credentials_in_its_query() -> None:
    settings = connection_settings("c", host="https://h.example", login="id", password="s3cret")
    call = token_call(settings)
    assert call.method == "GET" and call.url == "https://h.example/identity/oauth/token"
    assert call.params == {"grant_type": "client_credentials", "client_id": "id", "client_secret": "s3cret"}
    assert "s3cret" not in repr(call) and call.upload is None


class FakeTransport:
    """Drives a flow the way the hook does, answering from a script."""

    def __init__(self, *replies: object) -> None:
        self.replies = list(replies)
        self.sent: list[object] = []

    def run(self, flow: Flow[object]) -> object:
        try:
            step = next(flow)
            while True:
                self.sent.append(step)
                reply = self.replies.pop(0)
                step = flow.throw(reply) if isinstance(reply, Exception) else flow.send(reply)
        except StopIteration as stop:
            return stop.value


OK = answer(200, {"requestId": "r", "success": True, "result": [{"batchId": 1, "status": "Queued"}]})
EXPIRED = answer(200, {"requestId": "r", "success": False, "errors": [{"code": "602", "message": "x"}]})
CALL = Call("POST", "https://h/bulk/v1/leads.json", "upload of a.csv")


def read(a: Answer) -> object:
    return read_batch(a, CALL)


def test_flow_renews_a_refused_token_once() -> None:
    transport = FakeTransport("t1", EXPIRED, "t2", OK)
    assert transport.run(call_flow(CALL, read)) == {"batchId": 1, "status": "Queued"}
    kinds = [type(s).__name__ for s in transport.sent]
    assert kinds == ["NeedToken", "Call", "NeedToken", "Call"]
    assert transport.sent[2] == NeedToken(stale="t1") and transport.sent[3].token == "t2"  # type: ignore[attr-defined]
    with pytest.raises(api.MarketoTokenError):
        FakeTransport("t1", EXPIRED, "t2", EXPIRED).run(call_flow(CALL, read))


@pytest.mark.parametrize(
    ("failure", "unknown"),
    [
        (api.MarketoTransportError(TransportFailure.BROKEN, "upload", "h"), True),
        (api.MarketoTransportError(TransportFailure.TIMEOUT, "upload", "h"), True),
        (api.MarketoTransportError(TransportFailure.REFUSED, "upload", "h"), False),
        (api.MarketoTransportError(TransportFailure.CONNECT_TIMEOUT, "upload", "h"), False),
        (answer(502), True),
        (answer(504), True),
        (answer(503), False),
    ],
)
def test_an_upload_that_may_have_arrived_is_never_resent(failure: object, unknown: bool) -> None:
    flow = call_flow(CALL, read, resend_safe=False)
    expected = api.MarketoSubmitOutcomeUnknownError if unknown else api.MarketoError
    with pytest.raises(expected) as raised:
        FakeTransport("t", failure).run(flow)
    assert is_retryable(raised.value) == (not unknown and not getattr(raised.value, "permanent", False))


@pytest.mark.parametrize(
    ("failure", "retryable"),
    [
        (TransportFailure.REFUSED, False),
        (TransportFailure.HOST_UNKNOWN, False),
        (TransportFailure.TLS, False),
        (TransportFailure.DNS_TEMPORARY, True),
        (TransportFailure.CONNECT_TIMEOUT, True),
        (TransportFailure.TIMEOUT, True),
        (TransportFailure.BROKEN, True),
    ],
)
def test_which_transport_failures_are_retried(failure: TransportFailure, retryable: bool) -> None:
    exc = api.MarketoTransportError(failure, "status of batch 1", "h:1")
    assert is_retryable(exc) is retryable and exc.permanent is (not retryable)
    assert str(exc).startswith("status of batch 1 at h:1 failed: ")


@pytest.mark.parametrize(
    "text",
    [
        "echo: Authorization: Bearer abc.def:ab",
        "GET /x?access_token=abc.def:ab&x=1",
        '{"client_secret": "abc.def:ab"}',
        "bearer abc.def:ab",
    ],
)
def test_redact(text: str) -> None:
    assert "abc.def" not in redact(text)
    assert redact("plain words stay", "s3cret") == "plain words stay"
    assert redact("a s3cret b", "s3cret") == "a *** b"


def test_bad_verify_names_the_extra() -> None:
    with pytest.raises(MarketoConnectionConfigError, match="extra 'verify' is 'flase'"):
        connection_settings("c", host="h", login="i", password="p", extra={"verify": "flase"})


def test_paths() -> None:
    assert ImportTarget(ObjectType.LEADS).create_path == "/bulk/v1/leads.json"
    members = ImportTarget.of("program_members", program_id="1044")
    assert members.create_path == "/bulk/v1/program/1044/members/import.json"
    assert (
        api.ImportTarget.of("program_members").batch_path(7, "status")
        == "/bulk/v1/program/members/import/7/status.json"
    )
    cars = ImportTarget.of("custom_objects", custom_object_name="car_c")
    assert (
        api.ImportTarget.of("custom_objects", custom_object_name="car_c").result_file_path(9, "warnings")
        == "/bulk/v1/customobjects/car_c/import/9/warnings.json"
    )
    assert cars.describe_path == "/rest/v1/customobjects/car_c/describe.json"
    with pytest.raises(MarketoValueError):
        api.ImportTarget.of("custom_objects", custom_object_name="car_c").result_file_path(9, "errors")


def test_import_spec() -> None:
    leads = api.ImportSpec.of(
        "leads", file_format="TSV", lookup_field="id", list_id="12", partition_name="EU"
    )
    assert leads.query == {"format": "tsv", "lookupField": "id", "listId": "12", "partitionName": "EU"}
    assert leads.create_path == "/bulk/v1/leads.json" and leads.required_columns() == ("id",)
    members = api.ImportSpec.of("program_members", program_id=3, program_member_status="On List")
    assert members.query == {"format": "csv", "programMemberStatus": "On List"}
    assert members.create_path == "/bulk/v1/program/3/members/import.json"
    with pytest.raises(MarketoValueError, match="program_member_status only applies"):
        api.ImportSpec.of("leads", program_member_status="On List")
    with pytest.raises(MarketoValueError, match="program_member_status is required"):
        api.ImportSpec.of("program_members", program_id=3)
    with pytest.raises(MarketoValueError, match="program_id is required"):
        api.ImportSpec.of("program_members", program_member_status="On List")
    with pytest.raises(MarketoValueError, match="list_id must be a positive"):
        api.ImportSpec.of("leads", list_id=0)
    with pytest.raises(MarketoValueError, match="lookup_field, list_id only apply to lead imports"):
        api.ImportSpec.of("custom_objects", custom_object_name="car_c", lookup_field="vin", list_id=4)
    with pytest.raises(MarketoValueError, match="program_id only applies"):
        ImportTarget.of("leads", program_id=3)


def test_the_import_keywords_are_one_list() -> None:
    import inspect

    from marketo_provider.hooks import MarketoHook
    from marketo_provider.operators.bulk_import import MarketoBulkImportOperator

    operator = inspect.signature(MarketoBulkImportOperator.__init__).parameters
    assert set(IMPORT_KEYWORDS) <= set(operator)
    assert set(IMPORT_KEYWORDS) <= set(MarketoBulkImportOperator.template_fields)
    with pytest.raises(TypeError, match=r"ImportSpec.of\(\) got an unexpected keyword argument 'listId'"):
        api.ImportSpec.of("leads", listId=4)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"submit_import\(\) got an unexpected keyword argument 'list'"):
        MarketoHook("unused").submit_import("leads", b"", list=4)  # type: ignore[call-arg, arg-type]


def test_formats() -> None:
    assert [f.delimiter for f in FileFormat] == [",", "\t", ";"]
    assert FileFormat.parse("CSV") is FileFormat.CSV


def test_batch_status_without_counts() -> None:
    queued = BatchStatus.from_entry(ObjectType.LEADS, {"batchId": 1, "importId": "1", "status": "Queued"})
    assert queued.rows_processed is None and not queued.done
    done = BatchStatus.from_entry(
        ObjectType.CUSTOM_OBJECTS,
        {
            "batchId": 2,
            "status": "Complete",
            "numOfObjectsProcessed": 5,
            "numOfRowsFailed": 1,
            "numOfRowsWithWarning": 0,
            "message": "ok",
            "objectApiName": "car_c",
        },
    )
    assert done.done and done.summary(part=0) == {
        "batch_id": 2,
        "part": 0,
        "status": "Complete",
        "rows_processed": 5,
        "rows_failed": 1,
        "rows_with_warning": 0,
        "message": "ok",
    }


def test_call_pacer_keeps_a_process_under_its_share_of_the_rate_limit() -> None:
    pacer = CallPacer(calls=3, window=20.0)
    assert [pacer.reserve(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    # The 4th call waits until the 1st has left the window (with a 5% margin), the 5th the 2nd.
    assert pacer.reserve(1.0) == pytest.approx(20.0)
    assert pacer.reserve(1.0) == pytest.approx(20.0)
    assert pacer.reserve(30.0) == 0.0  # the window has moved on


def test_queue_full_waits_grow_with_refusals() -> None:
    waits = [queue_full_wait_seconds(2.0, n) for n in (1, 2, 3, 4, 10)]
    assert 2.0 <= waits[0] <= 3.0 and 4.0 <= waits[1] <= 6.0 and 16.0 <= waits[-1] <= 24.0


# ---- redaction of what a server sends back ---------------------------------------------------------


def test_the_secrets_a_process_holds_are_redacted_wherever_they_stand() -> None:
    remember_secret("lit3ral-client-secret")
    remember_secret("abc")  # too short to be told from ordinary words: never blanked
    text = "echo: lit3ral-client-secret, abc, and s3://KEYID:wJalr@bucket/x/"
    assert redact(text) == "echo: ***, abc, and s3://***@bucket/x/"
    error = api.MarketoValueError(f"cannot write {text}")
    assert str(error) == "cannot write echo: ***, abc, and s3://***@bucket/x/"
    assert uri_credentials("s3://KEYID:wJalr@bucket/x/") == ("KEYID", "wJalr")
    assert uri_credentials("s3://bucket/ann@example.com") == ()


def test_server_text_is_redacted_before_it_is_cut() -> None:
    remember_secret("S" * 20)
    text = "x" * 295 + "S" * 20
    assert server_text(text) == "x" * 295 + "***"
    assert len(server_text("y" * 10_000)) == MAX_SERVER_MESSAGE_CHARS
    assert error_for("1003", "z" * 10_000).message.endswith("…")


@pytest.mark.parametrize("size", [1, 2, 5, 7, 64])
def test_secrets_are_removed_from_a_stream_also_across_chunks(size: int) -> None:
    data = b"a,Bearer tok3n-value:ab\nb,tok3n-value:ab tok3n-value:a\n" * 3
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    cleaned = b"".join(without_secrets(chunks, ["tok3n-value:ab"]))
    assert cleaned == data.replace(b"tok3n-value:ab", b"***")


def test_a_deadline_is_never_retried() -> None:
    for failure in (TransportFailure.DEADLINE, TransportFailure.DEADLINE_PASSED):
        error = api.MarketoTransportError(failure, "status of batch 1", "h")
        assert not is_retryable(error) and not error.permanent
    assert TransportFailure.DEADLINE.sent and not TransportFailure.DEADLINE_PASSED.sent


# ---- answers checked -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"success": True, "result": []}, "is not Marketo's JSON envelope (no 'requestId')"),
        ({"requestId": "r", "success": "yes"}, "is not Marketo's JSON envelope (no 'success' true or false)"),
        ({"requestId": "r", "success": False}, "says success false without a list of errors"),
        ({"requestId": "r", "success": False, "errors": [{"code": True}]}, "without a list of errors"),
        ({"requestId": "r", "success": False, "errors": [{"code": "1" * 40}]}, "without a list of errors"),
        (
            {"requestId": "r", "success": True, "result": [1040]},
            "has a 'result' that is not a list of objects",
        ),
        ({"requestId": "r", "success": True, "result": []}, "has no batch in its result"),
        ({"requestId": "r", "success": True, "result": [{"status": "Queued"}]}, "has no batchId"),
        (
            {"requestId": "r", "success": True, "result": [{"batchId": "1040", "status": "Queued"}]},
            "batchId '1040'",
        ),
        (
            {"requestId": "r", "success": True, "result": [{"batchId": 0, "status": "Queued"}]},
            "batchId 0, not",
        ),
        ({"requestId": "r", "success": True, "result": [{"batchId": 1, "status": 7}]}, "has status 7"),
        (
            {
                "requestId": "r",
                "success": True,
                "result": [{"batchId": 1, "status": "Complete", "numOfRowsFailed": "2"}],
            },
            "has numOfRowsFailed '2', not a count",
        ),
        (
            {
                "requestId": "r",
                "success": True,
                "result": [{"batchId": 1, "status": "Complete", "numOfRowsFailed": True}],
            },
            "has numOfRowsFailed True, not a count",
        ),
    ],
)
def test_answers_unlike_adobes_are_named_errors(body: dict[str, object], message: str) -> None:
    with pytest.raises(api.MarketoAnswerError, match=re.escape(message)) as raised:
        read_batch_answer(body, "status of batch 1")
    assert str(raised.value).startswith("Marketo's answer to the status of batch 1 ")


def test_a_whole_batch_entry_reads_as_whole_numbers() -> None:
    entry = read_batch_answer(
        {
            "requestId": "r",
            "success": True,
            "result": [{"batchId": 1040.0, "status": "Complete", "numOfRowsFailed": 2.0, "message": "ok"}],
        },
        "status of batch 1040",
        1040,
    )
    assert entry == {"batchId": 1040, "status": "Complete", "numOfRowsFailed": 2, "message": "ok"}


def test_a_token_answer_must_hold_a_token_and_its_life() -> None:
    with pytest.raises(api.MarketoAnswerError, match=r"identity call .* has expires_in 'soon'"):
        read_token_answer(answer(200, {"access_token": "t:ab", "expires_in": "soon"}), now=0.0)
    with pytest.raises(api.MarketoAnswerError, match="has an access_token that is not text"):
        read_token_answer(answer(200, {"access_token": 17, "expires_in": 10}), now=0.0)
