"""Each room of the sandbox on its own, without the backend or HTTP."""

from __future__ import annotations

import pytest

from marketo_provider.testing.app import SandboxApp
from marketo_provider.testing.backend import MarketoBackend
from marketo_provider.testing.catalog import CAR_OBJECT, Catalog, CustomObjectType, FieldSpec
from marketo_provider.testing.clock import Clock
from marketo_provider.testing.config import SandboxConfig
from marketo_provider.testing.errors import HTTPError, SandboxError
from marketo_provider.testing.faults import CallLog, Fault
from marketo_provider.testing.identity import Identity
from marketo_provider.testing.jobs import ImportQueue, Job
from marketo_provider.testing.leads import LeadStore
from marketo_provider.testing.limits import CallLimits
from marketo_provider.testing.parameters import check_query, path_int
from marketo_provider.testing.rows import FileUnreadable, JobRowRules, check_rows, result_file
from marketo_provider.testing.spec import (
    COMPLETE,
    CREATE_PARAMETERS,
    IMPORTING,
    FileFormat,
    ImportTarget,
    ObjectType,
    required_fields,
)

LEADS = ImportTarget(ObjectType.LEADS)


def code_of(call: object, *args: object) -> str:
    with pytest.raises(SandboxError) as err:
        call(*args)  # type: ignore[operator]
    return err.value.code


class TestIdentity:
    def test_token_life_and_expiry(self) -> None:
        clock = Clock(manual=True)
        identity = Identity(SandboxConfig(token_life=10), clock)
        token = identity.issue_token("sandbox-client-id", "sandbox-client-secret", "client_credentials")
        assert token["expires_in"] == 10 and identity.current_token == token["access_token"]
        clock.advance(3.5)
        assert identity.issue_token("sandbox-client-id", "sandbox-client-secret", "client_credentials") == {
            **token,
            "expires_in": 6,
        }
        identity.check_token(token["access_token"])
        identity.expire_tokens()
        assert code_of(identity.check_token, token["access_token"]) == "602"

    @pytest.mark.parametrize(
        ("client_id", "secret", "grant", "status"),
        [
            ("sandbox-client-id", "sandbox-client-secret", None, 400),
            ("sandbox-client-id", "sandbox-client-secret", "password", 400),
            (None, "sandbox-client-secret", "client_credentials", 401),
            ("sandbox-client-id", None, "client_credentials", 401),
            ("other-id", "sandbox-client-secret", "client_credentials", 401),
        ],
    )
    def test_refusals(
        self, client_id: str | None, secret: str | None, grant: str | None, status: int
    ) -> None:
        with pytest.raises(HTTPError) as err:
            Identity(SandboxConfig(), Clock(manual=True)).issue_token(client_id, secret, grant)
        assert err.value.status == status


class TestLimits:
    def test_the_window_slides(self) -> None:
        clock = Clock(manual=True)
        limits = CallLimits(SandboxConfig(rate_limit_calls=2, rate_limit_window=20), clock)
        limits.enter()
        clock.advance(10)
        limits.enter()
        assert code_of(limits.enter) == "606"
        clock.advance(10)  # the first call leaves the window
        limits.enter()
        assert limits.in_flight == 3 and limits.calls_today == 3

    def test_606_message_names_the_limit(self) -> None:
        limits = CallLimits(SandboxConfig(rate_limit_calls=1, rate_limit_window=20), Clock(manual=True))
        limits.enter()
        with pytest.raises(SandboxError) as err:
            limits.enter()
        assert err.value.message == "Max rate limit '1' exceeded with in '20' secs"

    def test_a_refused_call_is_not_counted(self) -> None:
        limits = CallLimits(SandboxConfig(daily_quota=1), Clock(manual=True))
        limits.enter()
        assert code_of(limits.enter) == "607"
        assert limits.calls_today == 1 and limits.in_flight == 1


class TestFaultsAndRecord:
    def test_skip_count_and_method(self) -> None:
        log = CallLog()
        log.inject(Fault("/bulk/v1/*", count=2, skip=1, code="604", method="POST"))
        assert log.take("GET", "/bulk/v1/leads.json") is None  # another method
        assert log.take("POST", "/bulk/v1/leads.json") is None  # skipped
        assert log.take("POST", "/bulk/v1/leads.json") is not None
        assert log.take("POST", "/bulk/v1/leads.json") is not None
        assert log.take("POST", "/bulk/v1/leads.json") is None and log.faults == []

    def test_count_must_be_positive(self) -> None:
        with pytest.raises(ValueError, match="at least 1"):
            CallLog().inject(Fault("/x", count=0))

    def test_labels(self) -> None:
        assert [
            Fault("/x", code="606").label,
            Fault("/x", http_status=503).label,
            Fault("/x", drop_connection=True).label,
            Fault("/x", delay=1).label,
        ] == ["606", "503", "drop", "delay"]
        assert Fault("/x", drop_connection=True).answers_instead
        assert not Fault("/x", drop_connection=True, after_processing=True).answers_instead
        assert not Fault("/x", delay=1).answers_instead

    def test_record_keeps_where_secrets_were_never_their_values(self) -> None:
        log = CallLog()
        rec = log.record(
            "POST",
            "/identity/oauth/token",
            [("client_id", "id"), ("client_secret", "s3cret"), ("grant_type", "client_credentials")],
            ["access_token", "format"],
            bearer=False,
            at=1.0,
        )
        assert rec.query == {"client_id": "id", "client_secret": "***", "grant_type": "client_credentials"}
        assert rec.secrets_in_url == ["client_secret"] and rec.secrets_in_body == ["access_token"]
        assert "s3cret" not in repr(rec)
        assert log.calls_to("/identity/*", method="post") == [rec] and log.calls_to("/bulk/*") == []


def make_job(queue: ImportQueue, now: float, *, hold: bool = False) -> Job:
    if hold:
        queue.hold_next += 1
    return queue.create(LEADS, FileFormat.CSV, {"format": "csv"}, b"email\n", "f.csv", now)


class TestQueueSchedule:
    def config(self) -> SandboxConfig:
        return SandboxConfig(queued_seconds=1.0, import_seconds=10.0)

    def test_the_one_schedule_drives_both_advance_and_next_event_in(self) -> None:
        queue = ImportQueue(self.config())
        ids = [make_job(queue, 0.0).batch_id for _ in range(3)]
        now, waits, applied = 0.0, [], []
        while (wait := queue.next_event_in(now)) is not None:
            upcoming = queue.next_event()
            assert upcoming is not None and upcoming.at == now + wait
            now += wait
            waits.append(wait)
            applied += [(e.at, e.action, e.job.batch_id) for e in queue.advance(now)]
        assert waits == [1.0, 10.0, 10.0]
        assert applied == [
            (1.0, "start", ids[0]),
            (1.0, "start", ids[1]),
            (11.0, "finish", ids[0]),
            (11.0, "finish", ids[1]),  # a finish comes before a start at the same time
            (11.0, "start", ids[2]),
            (21.0, "finish", ids[2]),
        ]

    def test_a_finish_frees_its_slot_for_the_next_job_at_the_same_time(self) -> None:
        queue = ImportQueue(SandboxConfig(queued_seconds=0.0, import_seconds=5.0, max_importing=1))
        first, second = make_job(queue, 0.0), make_job(queue, 0.0)
        queue.advance(5.0)
        assert (first.pending, first.finished_at, second.status, second.started_at) == (
            True,
            5.0,
            IMPORTING,
            5.0,
        )
        assert first.batch_id not in queue.fifo

    def test_held_jobs_make_no_events(self) -> None:
        queue = ImportQueue(self.config())
        held = make_job(queue, 0.0, hold=True)
        assert queue.next_event() is None and queue.next_event_in(100.0) is None
        queue.release(100.0, held.batch_id)
        upcoming = queue.next_event()
        assert upcoming is not None and (upcoming.action, upcoming.at) == ("start", 100.0)
        assert [(e.at, e.action) for e in queue.advance(200.0)] == [(100.0, "start"), (110.0, "finish")]

    def test_queue_full_is_1016_and_batch_ids_count_up(self) -> None:
        queue = ImportQueue(SandboxConfig(max_queued=2))
        assert [make_job(queue, 0.0).batch_id for _ in range(2)] == [1001, 1002]
        assert code_of(make_job, queue, 0.0) == "1016"
        assert code_of(queue.get, 999) == "1003"

    def test_fail_next_applies_to_the_next_job_only(self) -> None:
        queue = ImportQueue(self.config())
        queue.fail_next.append("boom")
        assert [make_job(queue, 0.0).fail_message for _ in range(2)] == ["boom", None]


class TestRows:
    rules = JobRowRules(
        ObjectType.LEADS,
        fields={
            "email": FieldSpec("email", "Email Address", "email"),
            "id": FieldSpec("id", "Id", "integer"),
        },
        required=("email",),
    )

    def test_sorting_rows(self) -> None:
        outcome = check_rows(b"email\na@example.com\n\nnot-an-email\n,\n", ",", self.rules)
        assert outcome.rows == [{"email": "a@example.com"}, {"email": "not-an-email"}]
        assert outcome.warnings == [["not-an-email", "Invalid email address"]]
        assert outcome.failures == [["", "", "Invalid row: 2 values for 1 columns"]]

    def test_update_only_lookup_needs_an_existing_lead(self) -> None:
        rules = JobRowRules(ObjectType.LEADS, self.rules.fields, ("id",), lead_exists=lambda i: i == 1)
        outcome = check_rows(b"id\n1\n2\n", ",", rules)
        assert outcome.rows == [{"id": "1"}] and outcome.failures == [["2", "Lead not found for id 2"]]

    @pytest.mark.parametrize(
        ("content", "message"),
        [(b"", "file is empty"), (b"email\n\xff\n", "not UTF-8"), (b'email\n"a\n', "malformed")],
    )
    def test_unreadable_files(self, content: bytes, message: str) -> None:
        with pytest.raises(FileUnreadable, match=message):
            check_rows(content, ",", self.rules)

    def test_result_file_keeps_the_format(self) -> None:
        assert result_file(["a", "b"], "Import Failure Reason", [["1", "x;y", "bad"]], ";") == (
            b'a;b;Import Failure Reason\n1;"x;y";bad\n'
        )


class TestLeadStore:
    def test_upsert_by_lookup_field_lists_and_members(self) -> None:
        store = LeadStore()
        store.store(LEADS, 1, [{"email": "a@x.com", "firstName": "A"}], "email", {"listId": "7"})
        store.store(LEADS, 2, [{"email": "a@x.com", "firstName": "Ann"}], "email", {})
        members = ImportTarget(ObjectType.PROGRAM_MEMBERS, program_id=44)
        store.store(members, 3, [{"email": "b@x.com"}], "email", {"programMemberStatus": "Member"})
        assert store.leads == {1: {"email": "a@x.com", "firstName": "Ann"}, 2: {"email": "b@x.com"}}
        assert store.static_lists == {7: {1}} and store.program_members == {44: {2: "Member"}}
        assert store.rows("leads") == [
            {"email": "a@x.com", "firstName": "A"},
            {"email": "a@x.com", "firstName": "Ann"},
        ]

    def test_custom_objects_keep_rows_only(self) -> None:
        store = LeadStore()
        cars = ImportTarget(ObjectType.CUSTOM_OBJECTS, custom_object_name="car_c")
        store.store(cars, 1, [{"vin": "V1"}], None, {})
        assert store.rows("custom_objects/car_c") == [{"vin": "V1"}] and store.leads == {}


class TestCatalog:
    def test_custom_objects_register_and_describe(self) -> None:
        catalog = Catalog()
        boat = CustomObjectType(
            "boat_c", "Boat", (FieldSpec("hull", "Hull", "string", 20),), dedupe_fields=("hull",)
        )
        assert code_of(catalog.describe, ObjectType.CUSTOM_OBJECTS, "boat_c") == "1003"
        catalog.register(boat)
        described = catalog.describe(ObjectType.CUSTOM_OBJECTS, "boat_c")
        assert described["dedupeFields"] == ["hull"] and described["pluralName"] == "Boats"
        assert catalog.dedupe_fields(ObjectType.CUSTOM_OBJECTS, "car_c") == CAR_OBJECT.dedupe_fields
        assert set(catalog.fields(ObjectType.CUSTOM_OBJECTS, "boat_c")) == {"hull"}

    def test_every_documented_lookup_field_is_a_lead_field(self) -> None:
        from marketo_provider.testing.spec import LEAD_LOOKUP_FIELDS

        fields = Catalog().fields(ObjectType.LEADS)
        assert set(LEAD_LOOKUP_FIELDS) <= set(fields)
        program_member_fields = Catalog().fields(ObjectType.PROGRAM_MEMBERS)
        assert {"email", "statusName"} <= set(program_member_fields)


class TestParameters:
    leads = CREATE_PARAMETERS[ObjectType.LEADS]

    def test_accepted(self) -> None:
        pairs = [("format", "csv"), ("listId", "-3"), ("lookupField", "id")]
        assert check_query(pairs, self.leads) == dict(pairs)

    @pytest.mark.parametrize(
        ("pairs", "message"),
        [
            ([], "Missing required query parameter(s): format"),
            ([("format", "")], "Missing required query parameter(s): format"),
            (
                [("format", "csv"), ("b", "1"), ("a", "2")],
                "Unknown query parameter(s): a, b; this call takes",
            ),
            ([("format", "csv"), ("format", "csv")], "given more than once: format"),
            ([("format", "csv"), ("listId", "1.5")], "listId must be an integer, not '1.5'"),
            ([("format", "csv"), ("listId", "2147483648")], "listId must be an integer"),
            ([("format", "csv"), ("listId", "٣")], "listId must be an integer"),
        ],
    )
    def test_refused(self, pairs: list[tuple[str, str]], message: str) -> None:
        with pytest.raises(SandboxError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
            check_query(pairs, self.leads)
        assert err.value.code == "1003"

    def test_calls_without_parameters(self) -> None:
        with pytest.raises(SandboxError, match="this call takes no query parameters"):
            check_query([("x", "1")], ())

    def test_path_ids(self) -> None:
        assert path_int("batchId", "1001") == 1001
        for bad in ("abc", "-1", "1e3", "99999999999"):
            assert code_of(path_int, "batchId", bad) == "1003"


class TestSpec:
    def test_required_fields(self) -> None:
        assert required_fields(ObjectType.LEADS) == ("email",)
        assert required_fields(ObjectType.LEADS, "id") == ("id",)
        assert required_fields(ObjectType.PROGRAM_MEMBERS, "id") == ("email",)
        assert required_fields(ObjectType.CUSTOM_OBJECTS, None, ("vin",)) == ("vin",)

    def test_formats(self) -> None:
        assert [FileFormat.parse(v) for v in ("csv", "TSV", "Ssv", "xls")] == [
            FileFormat.CSV,
            FileFormat.TSV,
            FileFormat.SSV,
            None,
        ]
        assert [f.delimiter for f in FileFormat] == [",", "\t", ";"]


class TestRouting:
    app = SandboxApp(MarketoBackend())

    def test_routes_match_the_spec_templates(self) -> None:
        route, params = self.app.match("GET", "/bulk/v1/customobjects/car_c/import/1001/failures.json")
        assert (route.operation, route.object_type, params) == (
            "failures",
            ObjectType.CUSTOM_OBJECTS,
            {"apiName": "car_c", "batchId": "1001"},
        )
        route, params = self.app.match("POST", "/identity/oauth/token")
        assert route.operation == "token" and params == {}

    def test_unknown_path_and_method(self) -> None:
        assert code_of(self.app.match, "GET", "/bulk/v1/leads/batch/1/2.json") == "610"
        assert code_of(self.app.match, "DELETE", "/bulk/v1/leads.json") == "605"


def test_backend_views_follow_the_rooms() -> None:
    """Tests and the demo read these through the backend; they are the rooms' own state."""
    b = MarketoBackend(SandboxConfig(queued_seconds=0, import_seconds=1), Clock(manual=True))
    job = b.create_import(LEADS, {"format": "csv", "listId": "5"}, b"email\na@x.com\n", "f.csv")
    b.run_until_idle()
    assert b.jobs[job.batch_id].status == COMPLETE and b.jobs is b.queue.jobs
    assert b.static_lists == {5: {1}} and b.static_lists is b.store.static_lists
    assert b.leads == {1: {"email": "a@x.com"}}
    token = b.issue_token("sandbox-client-id", "sandbox-client-secret", "client_credentials")
    assert b._current_token == token["access_token"]
