"""A team's own fields: schema files of saved describe answers, read and used by the backend (no HTTP)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from marketo_provider.testing import Clock, MarketoBackend, SandboxConfig
from marketo_provider.testing.catalog import CustomObjectType, FieldSpec
from marketo_provider.testing.errors import SandboxError
from marketo_provider.testing.leads import LeadStore
from marketo_provider.testing.schema import SchemaError, load_schema, read_schema
from marketo_provider.testing.spec import ImportTarget, ObjectType
from tests.helpers import SAVED_DESCRIBE_ANSWERS, write_schema

LEADS = ImportTarget(ObjectType.LEADS)
SUBSCRIPTIONS = ImportTarget(ObjectType.CUSTOM_OBJECTS, custom_object_name="subscription_c")


def answers() -> dict[str, Any]:
    return copy.deepcopy(SAVED_DESCRIBE_ANSWERS)


def backend(schema: Any = None) -> MarketoBackend:
    data = answers() if schema is None else schema
    return MarketoBackend(SandboxConfig(queued_seconds=0, import_seconds=1), Clock(manual=True), data)


def import_rows(b: MarketoBackend, target: ImportTarget, content: bytes, **params: str) -> dict[str, Any]:
    batch = b.create_import(target, {"format": "csv", **params}, content, "f.csv").batch_id
    b.run_until_idle()
    job = b.jobs[batch]
    return {"processed": job.processed, "failures": job.failures_file.decode(), "job": job}


class TestReading:
    def test_an_answer_saved_whole_as_its_result_or_as_its_entry_reads_the_same(self) -> None:
        whole = answers()["leads"]
        forms = [whole, whole["result"], whole["result"][0]]
        schemas = [read_schema({"leads": form}) for form in forms]
        assert len({s.lead_fields for s in schemas}) == 1
        fields = {f.name: f for f in schemas[0].lead_fields or ()}
        assert fields["accountTier"] == FieldSpec("accountTier", "Account Tier", "string", 8)
        assert fields["id"].updateable is False and fields["loyaltyPoints"].length is None
        assert all(s.answers["leads"] == whole["result"][0] for s in schemas)

    def test_parts_left_out_keep_the_built_in_catalogue(self) -> None:
        schema = read_schema({"custom_objects": answers()["custom_objects"]})
        assert schema.lead_fields is None and schema.program_member_fields is None
        b = backend({"custom_objects": answers()["custom_objects"]})
        assert "leadScore" in b.catalog.fields(ObjectType.LEADS)
        assert set(b.custom_objects) == {"subscription_c"}  # car_c is replaced

    def test_custom_objects_by_api_name(self) -> None:
        (entry,) = answers()["custom_objects"]
        schema = read_schema({"custom_objects": {"subscription_c": {"success": True, "result": [entry]}}})
        assert [o.api_name for o in schema.custom_objects or ()] == ["subscription_c"]
        (obj,) = schema.custom_objects or ()
        assert obj.dedupe_fields == ("subscriptionId",) and obj.relationships[0]["field"] == "leadEmail"

    def test_lead_describe_v1_fields_by_their_rest_names(self) -> None:
        v1 = {
            "requestId": "1#2",
            "success": True,
            "result": [
                {
                    "id": 2,
                    "displayName": "Email Address",
                    "dataType": "email",
                    "length": 255,
                    "rest": {"name": "email", "readOnly": False},
                    "soap": {"name": "Email", "readOnly": False},
                },
                {
                    "id": 31,
                    "displayName": "Updated At",
                    "dataType": "datetime",
                    "rest": {"name": "updatedAt", "readOnly": True},
                    "soap": {"name": "UpdatedAt", "readOnly": True},
                },
                {"id": 90, "displayName": "SOAP only", "dataType": "string", "soap": {"name": "X"}},
                {"id": 7, "displayName": "Shoe Size", "dataType": "float", "rest": {"name": "shoeSize"}},
            ],
        }
        b = backend({"leads": v1})
        assert set(b.catalog.fields(ObjectType.LEADS)) == {"email", "updatedAt", "shoeSize"}
        described = b.describe("leads")  # served in describe2's shape, the only one the sandbox serves
        assert described["name"] == "API Lead" and described["searchableFields"] == [["email"]]
        assert {"name": "updatedAt", "updateable": False}.items() <= described["fields"][1].items()

    def test_from_a_file(self, tmp_path: Path) -> None:
        schema = load_schema(write_schema(tmp_path / "schema.json"))
        assert schema.source == str(tmp_path / "schema.json")
        assert {f.name for f in schema.program_member_fields or ()} >= {"boothVisits"}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda a: [a],
            "schema: must be a JSON object with the keys leads, program_members and custom_objects",
        ),
        (
            lambda a: {"lead": a["leads"]},
            "schema: unknown key(s) 'lead'; the keys are leads, program_members",
        ),
        (lambda a: {}, "schema: is empty; give at least one of"),
        (
            lambda a: {
                "leads": {
                    "requestId": "1",
                    "success": False,
                    "errors": [{"code": "601", "message": "Access token invalid"}],
                }
            },
            "schema, leads: the saved answer is Marketo's error 601 (Access token invalid), not a describe "
            "answer; call describe again with a valid access token",
        ),
        (
            lambda a: a["leads"]["result"][0]["fields"][1].pop("name") and a,
            "schema, leads: result[0].fields[1]: has no 'name' (the field's REST API name)",
        ),
        (
            lambda a: a["leads"]["result"][0]["fields"][2].pop("dataType") and a,
            "schema, leads: result[0].fields[2] ('firstName'): has no 'dataType'",
        ),
        (
            lambda a: a["leads"]["result"][0]["fields"].append({"name": "email", "dataType": "email"}) or a,
            "schema, leads: result[0].fields: field 'email' is listed twice",
        ),
        (
            lambda a: a["leads"]["result"][0]["fields"][5].update(length="8") or a,
            "schema, leads: result[0].fields[5] ('accountTier').length: expected a whole number, not \"8\"",
        ),
        (
            lambda a: a["custom_objects"][0].update(dedupeFields=["vin"]) or a,
            "schema, custom_objects[0]: result[0].dedupeFields: vin not among 'subscription_c' fields",
        ),
        (
            lambda a: a["custom_objects"][0].pop("apiName") and a,
            "schema, custom_objects[0]: result[0]: has no 'apiName'",
        ),
        (
            lambda a: {"custom_objects": {"sub_c": a["custom_objects"][0]}},
            "schema, custom_objects[\"sub_c\"]: describes 'subscription_c', not 'sub_c'",
        ),
        (
            lambda a: {"custom_objects": a["custom_objects"] * 2},
            "schema, custom_objects[1]: 'subscription_c' is described twice",
        ),
        (
            lambda a: {"program_members": {"result": []}},
            "schema, program_members: expected one describe result with a 'fields' list, found 0",
        ),
        (
            lambda a: {"leads": {"result": [{"name": "API Lead"}]}},
            "schema, leads: not a lead describe answer; save the answer of GET /rest/v1/leads/describe2.json",
        ),
    ],
)
def test_a_schema_that_cannot_be_used_says_where_and_what_to_fix(edit: Any, message: str) -> None:
    with pytest.raises(SchemaError) as err:
        read_schema(edit(answers()))
    assert message in str(err.value)


def test_a_file_that_is_missing_or_not_json(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match=r"schema file .*nowhere\.json does not exist"):
        load_schema(tmp_path / "nowhere.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"leads": [}\n')
    with pytest.raises(SchemaError, match=r"bad\.json is not JSON: .* at line 1, column 12"):
        load_schema(bad)


class TestBackendWithASchema:
    def test_describe_answers_as_saved(self) -> None:
        b = backend()
        saved = answers()
        assert b.describe("leads") == saved["leads"]["result"][0]
        assert b.describe("program_members") == saved["program_members"][0]
        assert b.describe("custom_objects", "subscription_c") == saved["custom_objects"][0]
        with pytest.raises(SandboxError, match="Custom object 'car_c' not found"):
            b.describe("custom_objects", "car_c")

    def test_an_unknown_custom_field_fails_every_row_and_a_known_one_imports(self) -> None:
        b = backend()
        known = import_rows(b, LEADS, b"email,accountTier,loyaltyPoints\na@example.com,gold,120\n")
        assert known["processed"] == 1 and known["failures"] == ""
        unknown = import_rows(b, LEADS, b"email,shoeSize\nb@example.com,44\n")
        assert unknown["processed"] == 0
        assert unknown["failures"].splitlines()[1] == "b@example.com,44,Field not found: shoeSize"
        # a standard field the team's instance does not list is unknown too
        assert (
            "Field not found: leadScore"
            in import_rows(b, LEADS, b"email,leadScore\nc@example.com,1\n")["failures"]
        )
        assert b.imported_rows("leads") == [
            {"email": "a@example.com", "accountTier": "gold", "loyaltyPoints": "120"}
        ]
        assert b.leads[1] == {"email": "a@example.com", "accountTier": "gold", "loyaltyPoints": "120"}

    def test_values_are_checked_by_the_saved_types_and_lengths(self) -> None:
        b = backend()
        outcome = import_rows(
            b,
            LEADS,
            b"email,accountTier,loyaltyPoints,contractSigned\n"
            b"a@example.com,platinum+,1,2024-01-31\n"
            b"b@example.com,gold,many,2024-01-31\n"
            b"c@example.com,gold,3,31/01/2024\n"
            b"d@example.com,gold,4,2024-02-01\n",
        )
        assert [line.rsplit(",", 1)[1] for line in outcome["failures"].splitlines()[1:]] == [
            "Value too long for field Account Tier",
            "Invalid data type in field Loyalty Points",
            "Invalid data type in field Contract Signed",
        ]
        assert outcome["processed"] == 1

    def test_lookup_fields(self) -> None:
        b = backend()
        # a custom string field is a lookup field (the spec: custom string, email and integer fields)
        assert (
            import_rows(b, LEADS, b"crmContactKey,email\nK1,a@example.com\n", lookupField="crmContactKey")[
                "processed"
            ]
            == 1
        )
        for field, code in (("firstName", "1011"), ("leadScore", "1006"), ("contractSigned", "1011")):
            with pytest.raises(SandboxError) as err:
                b.create_import(LEADS, {"format": "csv", "lookupField": field}, b"x\n", "f.csv")
            assert err.value.code == code, field

    def test_program_members_take_their_fields_and_the_lead_fields(self) -> None:
        b = backend()
        members = ImportTarget(ObjectType.PROGRAM_MEMBERS, program_id=1044)
        outcome = import_rows(
            b,
            members,
            b"email,boothVisits,accountTier\na@example.com,2,gold\nb@example.com,two,gold\n",
            programMemberStatus="Member",
        )
        assert outcome["processed"] == 1
        assert outcome["failures"].endswith("Invalid data type in field Booth Visits\n")

    def test_custom_objects_by_their_dedupe_fields(self) -> None:
        b = backend()
        outcome = import_rows(
            b,
            SUBSCRIPTIONS,
            b"subscriptionId,plan,seats\nS-1,team,5\n,team,5\nS-3,team,five\n",
        )
        assert outcome["processed"] == 1
        assert [line.rsplit(",", 1)[1] for line in outcome["failures"].splitlines()[1:]] == [
            "missing.dedupe.fields",
            "Invalid data type in field Seats",
        ]
        assert b.imported_rows("custom_objects", "subscription_c") == [
            {"subscriptionId": "S-1", "plan": "team", "seats": "5"}
        ]

    def test_registering_a_custom_object_replaces_its_saved_answer(self) -> None:
        b = backend()
        b.register_custom_object(
            CustomObjectType(
                "subscription_c", "Subscription", (FieldSpec("sku", "SKU", "string", 9),), ("sku",)
            )
        )
        assert [f["name"] for f in b.describe("custom_objects", "subscription_c")["fields"]] == ["sku"]


def test_reset_forgets_what_imports_and_calls_left_and_keeps_the_rest() -> None:
    b = backend()
    token = b.issue_token(b.config.client_id, b.config.client_secret, "client_credentials")["access_token"]
    import_rows(b, LEADS, b"email\na@example.com\n", listId="7")
    b.record("GET", "/rest/v1/leads/describe2.json", [], [], True)
    b.inject_fault("/bulk/*", code="611")
    b.hold_next_jobs(1)
    b.reset()
    assert (b.jobs, b.calls, b.faults, b.leads, b.static_lists) == ({}, [], [], {}, {})
    assert b.imported_rows("leads") == []
    b.check_token(token)  # tokens stay
    assert "accountTier" in b.catalog.fields(ObjectType.LEADS)  # so do the fields
    again = import_rows(b, LEADS, b"email\nb@example.com\n")  # not held: the hold went too
    assert again["job"].batch_id == 1002 and again["processed"] == 1  # batch ids keep counting


def test_rows_a_page_at_a_time_by_program_and_batch() -> None:
    store = LeadStore()
    for batch, program in ((1, 44), (2, 45), (3, 44)):
        target = ImportTarget(ObjectType.PROGRAM_MEMBERS, program_id=program)
        rows = [{"email": f"{batch}-{i}@example.com"} for i in range(3)]
        store.store(target, batch, rows, "email", {"programMemberStatus": "Member"})
    total, page = store.page("program_members", 1, 2)
    assert total == 9 and [r.row["email"] for r in page] == ["1-1@example.com", "1-2@example.com"]
    total, page = store.page("program_members", 2, 10, program_id=44)
    assert total == 6 and [r.batch_id for r in page] == [1, 3, 3, 3]
    assert store.page("program_members", 0, 10, program_id=44, batch_id=2) == (0, [])
    assert json.dumps([r.row for r in store.page("leads", 0, 5)[1]]) == "[]"
