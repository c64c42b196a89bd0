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
        answer = self.session.post(
            self.sandbox.url + "/identity/oauth/token",
            data={
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
