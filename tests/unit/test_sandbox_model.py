"""The sandbox's rules, driven directly on the backend with a manual clock (no HTTP)."""

from __future__ import annotations

import pytest

from marketo_provider.testing import Clock, MarketoBackend, SandboxConfig
from marketo_provider.testing.errors import HTTPError, SandboxError
from marketo_provider.testing.spec import COMPLETE, FAILED, IMPORTING, QUEUED, ImportTarget, ObjectType

LEADS = ImportTarget(ObjectType.LEADS)
CARS = ImportTarget(ObjectType.CUSTOM_OBJECTS, custom_object_name="car_c")
MEMBERS = ImportTarget(ObjectType.PROGRAM_MEMBERS, program_id=1001)


def backend(**config: object) -> MarketoBackend:
    return MarketoBackend(
        SandboxConfig(queued_seconds=1.0, import_seconds=10.0, **config), Clock(manual=True)
    )  # type: ignore[arg-type]


def submit(
    b: MarketoBackend, content: bytes = b"email\na@example.com\n", target: ImportTarget = LEADS, **params: str
) -> int:
    return b.create_import(target, {"format": "csv", **params}, content, "f.csv").batch_id


def statuses(b: MarketoBackend, ids: list[int]) -> list[str]:
    return [b.status(ObjectType.LEADS, i)["status"] for i in ids]


class TestQueue:
    def test_eleventh_job_gets_1016_and_a_slot_frees_after_completion(self) -> None:
        b = backend()
        ids = [submit(b) for _ in range(10)]
        with pytest.raises(SandboxError) as err:
            submit(b)
        assert err.value.code == "1016"
        b.clock.advance(11.0)  # the first two finish
        assert statuses(b, ids[:2]) == [COMPLETE, COMPLETE]
        submit(b)  # room again
        submit(b)
        with pytest.raises(SandboxError):
            submit(b)

    def test_two_import_at_a_time_in_fifo_order(self) -> None:
        b = backend()
        ids = [submit(b) for _ in range(5)]
        assert statuses(b, ids) == [QUEUED] * 5
        b.clock.advance(1.0)
        assert statuses(b, ids) == [IMPORTING, IMPORTING, QUEUED, QUEUED, QUEUED]
        b.clock.advance(10.0)
        assert statuses(b, ids) == [COMPLETE, COMPLETE, IMPORTING, IMPORTING, QUEUED]
        b.clock.advance(10.0)
        assert statuses(b, ids) == [COMPLETE] * 4 + [IMPORTING]
        b.run_until_idle()
        assert statuses(b, ids) == [COMPLETE] * 5
        finish_order = sorted(b.jobs.values(), key=lambda j: (j.finished_at, j.batch_id))
        assert [j.batch_id for j in finish_order] == ids

    def test_queue_limits_are_configurable(self) -> None:
        b = backend(max_importing=1, max_queued=3)
        ids = [submit(b) for _ in range(3)]
        with pytest.raises(SandboxError):
            submit(b)
        b.clock.advance(1.0)
        assert statuses(b, ids) == [IMPORTING, QUEUED, QUEUED]

    def test_held_jobs_wait_until_released_and_block_those_behind_them(self) -> None:
        b = backend()
        b.hold_next_jobs(1)
        held, after = submit(b), submit(b)
        b.clock.advance(30.0)
        assert statuses(b, [held, after]) == [QUEUED, QUEUED]
        b.release(held)
        b.run_until_idle()
        assert statuses(b, [held, after]) == [COMPLETE, COMPLETE]

    def test_a_released_job_starts_at_its_release(self) -> None:
        b = backend()
        b.hold_next_jobs(1)
        held = submit(b)
        b.clock.advance(30.0)
        b.release()
        assert statuses(b, [held]) == [IMPORTING] and b.jobs[held].started_at == 30.0
        b.clock.advance(9.0)
        assert statuses(b, [held]) == [IMPORTING]
        b.clock.advance(1.0)
        assert statuses(b, [held]) == [COMPLETE]

    def test_failed_jobs_report_the_message_and_import_nothing(self) -> None:
        b = backend()
        b.fail_next_job("Failed to import leads: internal error")
        first, second = submit(b), submit(b)
        b.fail_job(second, "Failed: bad partition")
        b.run_until_idle()
        one = b.status(ObjectType.LEADS, first)
        assert one["status"] == FAILED and one["message"] == "Failed to import leads: internal error"
        assert b.status(ObjectType.LEADS, second)["message"] == "Failed: bad partition"
        assert b.imported_rows("leads") == []

    def test_counts_appear_only_when_done(self) -> None:
        b = backend()
        batch = submit(b)
        entry = b.status(ObjectType.LEADS, batch)
        assert set(entry) == {"batchId", "importId", "status"}
        b.run_until_idle()
        entry = b.status(ObjectType.LEADS, batch)
        assert entry["numOfLeadsProcessed"] == 1 and entry["numOfRowsFailed"] == 0
        assert entry["message"] == "Import succeeded, 1 records imported (1 members)"

    def test_unknown_batch_and_wrong_object_are_errors(self) -> None:
        b = backend()
        batch = submit(b)
        with pytest.raises(SandboxError):
            b.status(ObjectType.LEADS, 99999)
        with pytest.raises(SandboxError):
            b.status(ObjectType.PROGRAM_MEMBERS, batch)


class TestTokens:
    def test_same_token_with_remaining_life_then_a_new_one(self) -> None:
        b = backend(token_life=100)
        first = b.issue_token("sandbox-client-id", "sandbox-client-secret", "client_credentials")
        assert first["expires_in"] == 100 and first["token_type"] == "bearer"
        b.clock.advance(40)
        again = b.issue_token("sandbox-client-id", "sandbox-client-secret", "client_credentials")
        assert again["access_token"] == first["access_token"] and again["expires_in"] == 60
        b.clock.advance(60)
        with pytest.raises(SandboxError) as err:
            b.check_token(first["access_token"])
        assert err.value.code == "602"
        renewed = b.issue_token("sandbox-client-id", "sandbox-client-secret", "client_credentials")
        assert renewed["access_token"] != first["access_token"]

    def test_bad_credentials_are_http_401(self) -> None:
        with pytest.raises(HTTPError) as err:
            backend().issue_token("sandbox-client-id", "wrong", "client_credentials")
        assert err.value.status == 401

    def test_missing_or_unknown_token_is_601(self) -> None:
        for token in (None, "", "nope:ab"):
            with pytest.raises(SandboxError) as err:
                backend().check_token(token)
            assert err.value.code == "601"


class TestLimits:
    def test_rate_limit_606_per_window(self) -> None:
        b = backend(rate_limit_calls=3, concurrency_limit=False)
        for _ in range(3):
            b.enter_call()
            b.exit_call()
        with pytest.raises(SandboxError) as err:
            b.enter_call()
        assert err.value.code == "606"
        b.clock.advance(20.0)
        b.enter_call()

    def test_rate_limit_can_be_switched_off(self) -> None:
        on, off = backend(rate_limit_calls=1), backend(rate_limit_calls=1, rate_limit=False)
        answers = {}
        for name, b in (("on", on), ("off", off)):
            codes = []
            for _ in range(5):
                try:
                    b.enter_call()
                    b.exit_call()
                    codes.append(None)
                except SandboxError as exc:
                    codes.append(exc.code)
            answers[name] = codes
        assert answers == {"on": [None, "606", "606", "606", "606"], "off": [None] * 5}
        assert off.limits.calls_today == 5  # still counted against the daily quota

    def test_concurrency_615(self) -> None:
        b = backend(max_concurrent=2)
        b.enter_call()
        b.enter_call()
        with pytest.raises(SandboxError) as err:
            b.enter_call()
        assert err.value.code == "615"
        b.exit_call()
        b.enter_call()

    def test_daily_quota_607(self) -> None:
        b = backend(daily_quota=1)
        b.enter_call()
        with pytest.raises(SandboxError) as err:
            b.enter_call()
        assert err.value.code == "607"


def finished(
    b: MarketoBackend, content: bytes, target: ImportTarget = LEADS, **params: str
) -> dict[str, object]:
    batch = submit(b, content, target, **params)
    b.run_until_idle()
    job = b.jobs[batch]
    return {
        "entry": job.entry(),
        "failures": job.failures_file.decode(),
        "warnings": job.warnings_file.decode(),
    }


class TestRowChecks:
    def test_type_errors_fail_rows_and_invalid_emails_warn(self) -> None:
        b = backend()
        out = finished(
            b, b"email,firstName,leadScore\na@example.com,A,10\nb@example.com,B,TEN\nnot-an-email,C,3\n"
        )
        entry = out["entry"]
        assert entry["numOfLeadsProcessed"] == 2  # type: ignore[index]
        assert entry["numOfRowsFailed"] == 1 and entry["numOfRowsWithWarning"] == 1  # type: ignore[index]
        assert out["failures"] == (
            "email,firstName,leadScore,Import Failure Reason\n"
            "b@example.com,B,TEN,Invalid data type in field Lead Score\n"
        )
        assert out["warnings"] == (
            "email,firstName,leadScore,Import Warning Reason\nnot-an-email,C,3,Invalid email address\n"
        )
        assert [r["email"] for r in b.imported_rows("leads")] == ["a@example.com", "not-an-email"]

    def test_missing_lookup_value_fails_the_row(self) -> None:
        out = finished(backend(), b"email,company\n,Acme\nx@example.com,Acme\n")
        assert "Lookup field 'email' is required" in out["failures"]  # type: ignore[operator]

    def test_unknown_column_fails_rows_naming_the_field(self) -> None:
        out = finished(backend(), b"email,favouriteColour\na@example.com,blue\n")
        assert out["failures"].splitlines()[1].endswith("Field not found: favouriteColour")  # type: ignore[attr-defined]

    def test_custom_object_missing_dedupe_fields(self) -> None:
        b = backend()
        out = finished(b, b" vin,make\n1HGCM82633A004352,Honda\n", CARS)
        assert out["failures"].splitlines()[1].endswith("missing.dedupe.fields")  # type: ignore[attr-defined]
        entry = out["entry"]
        assert entry["numOfObjectsProcessed"] == 0 and entry["objectApiName"] == "car_c"  # type: ignore[index]
        assert "importTime" in entry  # type: ignore[operator]

    def test_custom_object_rows_are_recorded_per_object(self) -> None:
        b = backend()
        finished(b, b"vin,make,year\nV1,Honda,2020\nV2,Ford,twenty\n", CARS)
        assert b.imported_rows("custom_objects", "car_c") == [{"vin": "V1", "make": "Honda", "year": "2020"}]

    def test_program_members_need_email_and_land_in_the_program(self) -> None:
        b = backend()
        out = finished(b, b"email,firstName\na@example.com,A\n,B\n", MEMBERS, programMemberStatus="On List")
        assert out["entry"]["numOfLeadsProcessed"] == 1  # type: ignore[index]
        assert list(b.program_members[1001].values()) == ["On List"]

    def test_tsv_and_ssv_results_keep_the_format(self) -> None:
        b = backend()
        out = finished(b, b"email;leadScore\na@example.com;x\n", format="ssv")
        assert (
            out["failures"]
            == "email;leadScore;Import Failure Reason\na@example.com;x;Invalid data type in field Lead Score\n"
        )
        out = finished(b, b"email\tleadScore\na@example.com\tx\n", format="tsv")
        assert out["failures"].startswith("email\tleadScore\tImport Failure Reason\n")  # type: ignore[attr-defined]

    def test_quoted_multiline_fields_and_crlf(self) -> None:
        b = backend()
        finished(b, b'email,address\r\na@example.com,"1 Main St\r\nSuite 2, floor ""3"""\r\n')
        assert b.imported_rows("leads") == [
            {"email": "a@example.com", "address": '1 Main St\r\nSuite 2, floor "3"'}
        ]

    def test_lead_lookup_by_id_updates_existing_leads_only(self) -> None:
        b = backend()
        finished(b, b"email,firstName\na@example.com,A\n")
        out = finished(b, b"id,firstName\n1,Alice\n77,Ghost\n", lookupField="id")
        assert out["entry"]["numOfRowsFailed"] == 1  # type: ignore[index]
        assert b.leads[1]["firstName"] == "Alice"

    def test_list_id_adds_leads_to_the_static_list(self) -> None:
        b = backend()
        finished(b, b"email\na@example.com\nb@example.com\n", listId="55")
        assert len(b.static_lists[55]) == 2

    def test_file_that_is_not_utf8_fails_the_job(self) -> None:
        out = finished(backend(), b"email,firstName\na@example.com,Jos\xe9\n")
        assert out["entry"]["status"] == FAILED and "UTF-8" in out["entry"]["message"]  # type: ignore[index,operator]

    def test_bom_is_not_part_of_the_first_column(self) -> None:
        b = backend()
        finished(b, "\ufeffemail\na@example.com\n".encode())
        assert b.imported_rows("leads") == [{"email": "a@example.com"}]


class TestCreateValidation:
    @pytest.mark.parametrize(
        ("target", "params", "code"),
        [
            (LEADS, {"format": "xls"}, "1003"),
            (LEADS, {"format": "csv", "lookupField": "nosuchfield"}, "1006"),
            (LEADS, {"format": "csv", "lookupField": "firstName"}, "1011"),
            (LEADS, {"format": "csv", "partitionName": "Nope"}, "1008"),
            (MEMBERS, {"format": "csv"}, "1003"),
            (MEMBERS, {"format": "csv", "programMemberStatus": "Partying"}, "1003"),
            (ImportTarget(ObjectType.CUSTOM_OBJECTS, custom_object_name="boat_c"), {"format": "csv"}, "1003"),
        ],
    )
    def test_bad_parameters(self, target: ImportTarget, params: dict[str, str], code: str) -> None:
        with pytest.raises(SandboxError) as err:
            backend().create_import(target, params, b"email\n", "f.csv")
        assert err.value.code == code
