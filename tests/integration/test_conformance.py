"""Every sandbox answer on the spec's 15 bulk import paths, and the identity path, against Adobe's spec.

The spec marks ``errors``/``warnings`` and the lead counts as always required; every captured real
answer omits them on success and before completion. We follow the captures: every field present
must have the spec's type; required are ``requestId`` and ``success``, ``result`` on success and
``errors`` on failure, and ``batchId``/``status`` in a batch entry (plus ``importId`` for leads and
program members, ``objectApiName`` for custom objects).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests

from marketo_provider.testing import MarketoSandbox
from tests.helpers import RawClient

SPEC_DIR = Path(__file__).resolve().parents[1] / "spec"
BULK = json.loads((SPEC_DIR / "bulk-import.swagger.json").read_text())
IDENTITY = json.loads((SPEC_DIR / "identity.swagger.json").read_text())

BATCH_REQUIRED = {
    "ImportLeadResponse": ["batchId", "importId", "status"],
    "ImportProgramMemberResponse": ["batchId", "importId", "status"],
    "ImportCustomObjectResponse": ["batchId", "objectApiName", "status"],
}


def corrected_definitions() -> dict[str, Any]:
    defs = copy.deepcopy(BULK["definitions"])
    for name, schema in defs.items():
        if name.startswith("ResponseOf"):
            schema["required"] = ["requestId", "success"]
            schema["allOf"] = [
                {
                    "if": {"properties": {"success": {"const": True}}},
                    "then": {"required": ["result"]},
                    "else": {"required": ["errors"]},
                }
            ]
        if name in BATCH_REQUIRED:
            schema["required"] = BATCH_REQUIRED[name]
    return defs


DEFINITIONS = corrected_definitions()


def schema_for(path: str, method: str) -> dict[str, Any]:
    ref = BULK["paths"][path][method]["responses"]["200"]["schema"]["$ref"]
    return {"$ref": ref, "definitions": DEFINITIONS}


def template_of(url_path: str) -> str:
    for template in BULK["paths"]:
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, url_path):
            return template
    raise AssertionError(f"{url_path} is not a spec path")


def is_json(answer: requests.Response) -> bool:
    return answer.headers.get("content-type", "").startswith("application/json")


class Recorder:
    """Calls the sandbox and keeps every answer for validation."""

    def __init__(self, sandbox: MarketoSandbox) -> None:
        self.client = RawClient(sandbox)
        self.seen: list[tuple[str, str, requests.Response]] = []

    def get(self, path: str) -> requests.Response:
        answer = self.client.get(path)
        self.seen.append(("get", path, answer))
        return answer

    def post(self, path: str, content: bytes, params: dict[str, Any]) -> requests.Response:
        answer = self.client.upload(path, content, params)
        self.seen.append(("post", path, answer))
        return answer


CREATE = {
    "leads": ("/bulk/v1/leads.json", {"format": "csv", "lookupField": "email", "listId": 7}),
    "program_members": (
        "/bulk/v1/program/1044/members/import.json",
        {"format": "csv", "programMemberStatus": "On List"},
    ),
    "custom_objects": ("/bulk/v1/customobjects/car_c/import.json", {"format": "csv"}),
}
STATUS = {
    "leads": "/bulk/v1/leads/batch/{}.json",
    "program_members": "/bulk/v1/program/members/import/{}/status.json",
    "custom_objects": "/bulk/v1/customobjects/car_c/import/{}/status.json",
}
FILES = {
    "leads": "/bulk/v1/leads/batch/{}/{}.json",
    "program_members": "/bulk/v1/program/members/import/{}/{}.json",
    "custom_objects": "/bulk/v1/customobjects/car_c/import/{}/{}.json",
}
CONTENT = {
    "leads": b"email,leadScore\na@example.com,1\nb@example.com,x\nnot-an-email,2\n",
    "program_members": b"email,leadScore\na@example.com,1\nb@example.com,x\nnot-an-email,2\n",
    "custom_objects": b"vin,year,customerEmail\nV1,2020,a@example.com\nV2,twenty,b@example.com\nV3,2021,bad\n",
}


@pytest.fixture(scope="module")
def recorded() -> list[tuple[str, str, requests.Response]]:
    with MarketoSandbox(manual_clock=True, queued_seconds=1, import_seconds=5) as sb:
        rec = Recorder(sb)
        for kind, (path, params) in CREATE.items():
            batch = rec.post(path, CONTENT[kind], params).json()["result"][0]["batchId"]
            rec.get(STATUS[kind].format(batch))  # Queued
            sb.advance(1)
            rec.get(STATUS[kind].format(batch))  # Importing
            for name in ("failures", "warnings"):
                rec.get(FILES[kind].format(batch, name))  # before completion
            sb.run_until_idle()
            rec.get(STATUS[kind].format(batch))  # Complete with counts
            for name in ("failures", "warnings"):
                rec.get(FILES[kind].format(batch, name))
            sb.fail_next_job("Failed to import: internal error")
            failed = rec.post(path, CONTENT[kind], params).json()["result"][0]["batchId"]
            sb.run_until_idle()
            rec.get(STATUS[kind].format(failed))  # Failed
            clean = rec.post(
                path, CONTENT[kind].splitlines()[0] + b"\n" + CONTENT[kind].splitlines()[1] + b"\n", params
            )
            sb.run_until_idle()
            clean_id = clean.json()["result"][0]["batchId"]
            for name in ("failures", "warnings"):
                rec.get(FILES[kind].format(clean_id, name))  # no file
            rec.get(STATUS[kind].format(999999))  # unknown batch: error envelope
            rec.post(path, CONTENT[kind], {**params, "format": "xls"})  # error envelope
        rec.get("/rest/v1/leads/describe2.json")
        rec.get("/rest/v1/programs/members/describe.json")
        rec.get("/rest/v1/customobjects/car_c/describe.json")
        rec.get("/rest/v1/customobjects/boat_c/describe.json")  # error envelope
        sb.inject_fault("/bulk/v1/leads.json", code="606")
        rec.post(*CREATE["leads"][:1], CONTENT["leads"], CREATE["leads"][1])
        return rec.seen


def test_every_spec_path_was_exercised(recorded: list[tuple[str, str, requests.Response]]) -> None:
    exercised = {(method, template_of(path)) for method, path, _ in recorded}
    in_spec = {(m, p) for p, ops in BULK["paths"].items() for m in ops}
    assert exercised == in_spec
    assert len(in_spec) == 15


def test_json_answers_match_the_spec(recorded: list[tuple[str, str, requests.Response]]) -> None:
    checked = 0
    for method, path, answer in recorded:
        template = template_of(path)
        if template.endswith(("failures.json", "warnings.json")):
            continue
        assert answer.status_code == 200, path
        assert answer.headers["content-type"].startswith("application/json")
        jsonschema.Draft7Validator(schema_for(template, method)).validate(answer.json())
        checked += 1
    assert checked >= 25


def test_errors_have_string_codes(recorded: list[tuple[str, str, requests.Response]]) -> None:
    errors = [a.json() for _, p, a in recorded if is_json(a) and not a.json()["success"]]
    assert {e["errors"][0]["code"] for e in errors} >= {"1003", "606"}
    assert all(isinstance(e["errors"][0]["code"], str) and "result" not in e for e in errors)


def test_batch_entries_per_object(recorded: list[tuple[str, str, requests.Response]]) -> None:
    entries = [
        (template_of(p), a.json()["result"][0])
        for _, p, a in recorded
        if is_json(a) and a.json()["success"] and "batchId" in a.json()["result"][0]
    ]
    for template, entry in entries:
        if "customobjects" in template:
            assert "importId" not in entry and entry["objectApiName"] == "car_c"
            if entry["status"] == "Complete":
                assert {"numOfObjectsProcessed", "importTime", "message"} <= set(entry)
        else:
            assert entry["importId"] == str(entry["batchId"])
        if entry["status"] in ("Queued", "Importing"):
            assert not {"numOfLeadsProcessed", "numOfObjectsProcessed", "numOfRowsFailed"} & set(entry)


def test_result_files(recorded: list[tuple[str, str, requests.Response]]) -> None:
    files = [(template_of(p), p, a) for _, p, a in recorded if p.endswith(("failures.json", "warnings.json"))]
    with_rows = [(t, a) for t, _, a in files if a.status_code == 200 and a.content]
    assert len(with_rows) == 6  # failures and warnings for each object
    for template, answer in with_rows:
        assert answer.headers["content-type"] == "text/csv;charset=UTF-8"
        header = answer.text.splitlines()[0].split(",")
        assert header[-1] == ("Import Failure Reason" if "failures" in template else "Import Warning Reason")
    empty_custom = [a for t, _, a in files if "customobjects" in t and not a.content]
    assert empty_custom and all(a.status_code == 404 for a in empty_custom)
    empty_other = [a for t, _, a in files if "customobjects" not in t and not a.content]
    assert empty_other and all(a.status_code == 200 for a in empty_other)


def test_identity_answer_matches_the_spec() -> None:
    schema = {"$ref": "#/definitions/ResponseOfIdentity", "definitions": IDENTITY["definitions"]}
    with MarketoSandbox() as sb:
        params = {
            "grant_type": "client_credentials",
            "client_id": sb.client_id,
            "client_secret": sb.client_secret,
        }
        for answer in (
            requests.get(sb.url + "/identity/oauth/token", params=params, timeout=5),
            requests.post(sb.url + "/identity/oauth/token", params=params, timeout=5),
        ):
            assert answer.status_code == 200
            jsonschema.Draft7Validator(schema).validate(answer.json())
        # the spec documents the query string only: credentials in a form body are not read
        refused = requests.post(sb.url + "/identity/oauth/token", data=params, timeout=5)
        assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"


def spec_operations(spec: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}


def test_the_sandbox_serves_exactly_the_spec_paths() -> None:
    """The sandbox's own path table, checked against Adobe's: every route it serves is a documented
    path and method, and every one of the 15 bulk import paths (and the identity call) is served."""
    from marketo_provider.testing.app import create_app
    from marketo_provider.testing.backend import MarketoBackend

    served = set(create_app(MarketoBackend()).routes)
    documented = spec_operations(BULK) | spec_operations(IDENTITY)
    assert len(spec_operations(BULK)) == 15
    assert served == documented


def test_create_parameters_are_the_spec_query_parameters() -> None:
    """What the sandbox accepts on each create call is what the spec lists "in": "query", with
    the same required flags and types; the file is the one "formData" part."""
    from marketo_provider.testing import spec

    for route in spec.ROUTES:
        if route.operation != "create":
            continue
        assert route.object_type is not None
        documented = BULK["paths"][route.path]["post"]["parameters"]
        query = {p["name"]: p for p in documented if p["in"] == "query"}
        ours = {p.name: p for p in spec.CREATE_PARAMETERS[route.object_type]}
        assert set(ours) == set(query), route.path
        for name, param in ours.items():
            assert param.required == query[name]["required"], (route.path, name)
            assert param.type == query[name]["type"], (route.path, name)
        assert [p["name"] for p in documented if p["in"] == "formData"] == [spec.FILE_PART]


def test_the_other_calls_document_no_query_parameters() -> None:
    """Status, failures, warnings and describe take only path parameters, so the sandbox refuses
    any query parameter on them."""
    from marketo_provider.testing import spec

    others = [r for r in spec.ROUTES if r.operation not in ("create", "token")]
    assert len(others) == 12
    for route in others:
        documented = BULK["paths"][route.path][route.method.lower()].get("parameters", [])
        assert all(p["in"] == "path" for p in documented), route.path
        assert {p["name"] for p in documented} == set(re.findall(r"\{(\w+)\}", route.path))


def test_identity_parameters_are_the_spec_query_parameters() -> None:
    from marketo_provider.testing import spec

    for method in ("get", "post"):
        documented = IDENTITY["paths"][spec.IDENTITY_TOKEN_PATH][method]["parameters"]
        assert {p["name"] for p in documented if p["in"] == "query"} == set(spec.IDENTITY_PARAMETERS)
        assert all(p["in"] == "query" for p in documented)


def test_the_sandbox_own_paths_are_no_marketo_paths() -> None:
    """The sandbox's record and reset live under a prefix no documented path starts with, are not in
    the path table the tests above check against the spec, and never match a spec template."""
    from marketo_provider.testing.app import create_app
    from marketo_provider.testing.backend import MarketoBackend
    from marketo_provider.testing.inspection import SANDBOX_API_PREFIX

    app = create_app(MarketoBackend())
    documented = spec_operations(BULK) | spec_operations(IDENTITY)
    own = set(app.sandbox_routes)
    assert own and all(path.startswith(SANDBOX_API_PREFIX) for _, path in own)
    assert not any(path.startswith(SANDBOX_API_PREFIX.rstrip("/")) for _, path in documented)
    assert not own & set(app.routes)
    for _, path in own:
        with pytest.raises(AssertionError, match="is not a spec path"):
            template_of(path)
