"""Small helpers shared by tests: a raw HTTP client for the sandbox."""

from __future__ import annotations

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
