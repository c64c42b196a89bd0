"""Small helpers shared by tests: a raw HTTP client for the sandbox, files to import, a saved schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests

from marketo_provider.testing import MarketoSandbox


class RawClient:
    """Plain requests against the sandbox, with no provider code in between."""

    def __init__(self, sandbox: MarketoSandbox) -> None:
        self.sandbox = sandbox
        self.session = requests.Session()
        self.token = ""

    def authenticate(self) -> str:
        # Adobe documents the credentials in the query string only, for GET and POST alike.
        answer = self.session.post(
            self.sandbox.url + "/identity/oauth/token",
            params={
                "grant_type": "client_credentials",
                "client_id": self.sandbox.client_id,
                "client_secret": self.sandbox.client_secret,
            },
            timeout=10,
        )
        answer.raise_for_status()
        self.token = answer.json()["access_token"]
        return self.token

    def headers(self) -> dict[str, str]:
        if not self.token:
            self.authenticate()
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self.sandbox.url + path, headers=self.headers(), timeout=10, **kwargs)

    def upload(
        self,
        path: str,
        content: bytes,
        params: dict[str, Any] | None = None,
        filename: str = "import.csv",
        **kwargs: Any,
    ) -> requests.Response:
        return self.session.post(
            self.sandbox.url + path,
            params=params if params is not None else {"format": "csv"},
            files={"file": (filename, content, "text/csv")},
            headers=self.headers(),
            timeout=30,
            **kwargs,
        )


def leads_csv(
    rows: int, *, fail_every: int = 0, warn_every: int = 0, multiline_every: int = 0
) -> tuple[bytes, dict[str, int]]:
    """A leads file: ``email,firstName,leadScore,address``. Every ``fail_every``-th row has a text
    lead score (fails), every ``warn_every``-th an invalid email (warns), every ``multiline_every``-th
    a quoted address with a comma, quotes and a newline. Returns the bytes and the expected counts."""
    lines = ["email,firstName,leadScore,address"]
    failed = warned = 0
    for i in range(1, rows + 1):
        email = f"lead{i}@example.com"
        score = str(i % 100)
        address = f"{i} Main St"
        if fail_every and i % fail_every == 0:
            score = "NOT_A_NUMBER"
            failed += 1
        elif warn_every and i % warn_every == 0:
            email = f"lead{i}-at-example"
            warned += 1
        if multiline_every and i % multiline_every == 0:
            address = f'"{i} Main St, ""Suite"" 4\nSpringfield"'
        lines.append(f"{email},Name{i},{score},{address}")
    data = ("\n".join(lines) + "\n").encode()
    return data, {"rows": rows, "failed": failed, "warned": warned, "processed": rows - failed}


def cars_csv(rows: int, *, fail_every: int = 0) -> bytes:
    lines = ["vin,make,year,customerEmail"]
    for i in range(1, rows + 1):
        year = "older" if fail_every and i % fail_every == 0 else str(2000 + i % 25)
        lines.append(f"VIN{i:014d},Make{i % 7},{year},owner{i}@example.com")
    return ("\n".join(lines) + "\n").encode()


def _field(name: str, display: str, data_type: str, length: int | None = None, **kw: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "displayName": display, "dataType": data_type}
    if length is not None:
        out["length"] = length
    return {**out, "updateable": kw.get("updateable", True), "crmManaged": kw.get("crmManaged", False)}


# Describe answers as a team saves them from its own instance: the lead describe whole (envelope
# included), the program member describe as its result list, one custom object as its result entry.
SAVED_DESCRIBE_ANSWERS: dict[str, Any] = {
    "leads": {
        "requestId": "e42b#14272d07d78",
        "success": True,
        "result": [
            {
                "name": "API Lead",
                "searchableFields": [["email"], ["id"], ["cookies"], ["crmContactKey"]],
                "fields": [
                    _field("id", "Id", "integer", updateable=False),
                    _field("email", "Email Address", "email", 255),
                    _field("firstName", "First Name", "string", 255),
                    _field("lastName", "Last Name", "string", 255),
                    _field("cookies", "Cookies", "string", 255),
                    _field("accountTier", "Account Tier", "string", 8),
                    _field("loyaltyPoints", "Loyalty Points", "integer"),
                    _field("contractSigned", "Contract Signed", "date"),
                    _field("crmContactKey", "CRM Contact Key", "string", 64),
                ],
            }
        ],
    },
    "program_members": [
        {
            "name": "API Program Member",
            "description": "API Program Member Map",
            "createdAt": "2023-03-01T09:00:00Z",
            "updatedAt": "2024-06-11T15:20:00Z",
            "dedupeFields": ["leadId", "programId"],
            "searchableFields": [["leadId", "programId"], ["leadId"]],
            "fields": [
                _field("leadId", "Lead Id", "integer", updateable=False),
                _field("programId", "Program Id", "integer", updateable=False),
                _field("statusName", "Status Name", "string", 255),
                _field("boothVisits", "Booth Visits", "integer"),
            ],
        }
    ],
    "custom_objects": [
        {
            "apiName": "subscription_c",
            "displayName": "Subscription",
            "pluralName": "Subscriptions",
            "description": "Product subscriptions",
            "createdAt": "2023-05-02T10:00:00Z",
            "updatedAt": "2024-01-09T08:30:00Z",
            "idField": "marketoGUID",
            "dedupeFields": ["subscriptionId"],
            "searchableFields": [["subscriptionId"], ["marketoGUID"], ["leadEmail"]],
            "relationships": [
                {"field": "leadEmail", "type": "parent", "relatedTo": {"name": "Lead", "field": "email"}}
            ],
            "fields": [
                _field("marketoGUID", "Marketo GUID", "string", 36, updateable=False),
                _field("subscriptionId", "Subscription Id", "string", 40),
                _field("plan", "Plan", "string", 20),
                _field("seats", "Seats", "integer"),
                _field("leadEmail", "Lead Email", "email", 255),
            ],
            "state": "approved",
            "version": "approved",
        }
    ],
}


def write_schema(path: Path, answers: dict[str, Any] | None = None) -> Path:
    """Save describe answers (by default :data:`SAVED_DESCRIBE_ANSWERS`) as a schema file."""
    path.write_text(json.dumps(SAVED_DESCRIBE_ANSWERS if answers is None else answers, indent=2))
    return path
