"""An unmodified third-party Marketo client (marketorestpython, from PyPI) against the sandbox."""

from __future__ import annotations

import time
from pathlib import Path

from marketorestpython.client import MarketoClient

from marketo_provider.testing import MarketoSandbox


def test_marketorestpython_imports_polls_and_reads_results(tmp_path: Path, sandbox: MarketoSandbox) -> None:
    source = tmp_path / "leads.csv"
    source.write_text(
        "firstName,lastName,email,leadScore\n"
        "Able,Baker,ablebaker@example.com,10\n"
        "Charlie,Dog,charliedog@example.com,TEXT_VALUE_IN_INTEGER_FIELD\n"
        "Easy,Fox,not-an-email,3\n"
    )
    client = MarketoClient("123-ABC-456", sandbox.client_id, sandbox.client_secret)
    # The client builds https://<munchkin>.mktorest.com from the munchkin id; point it at the sandbox.
    client.host = sandbox.url

    created = client.execute(method="import_lead", file=str(source), format="csv", lookupField="email")
    batch_id = created[0]["batchId"]
    assert created[0]["status"] == "Queued"

    deadline = time.monotonic() + 15
    while (status := client.execute(method="get_import_lead_status", id=batch_id)[0])["status"] != "Complete":
        assert time.monotonic() < deadline, status
        time.sleep(0.1)
    assert status["numOfLeadsProcessed"] == 2
    assert status["numOfRowsFailed"] == 1 and status["numOfRowsWithWarning"] == 1

    failures = client.execute(method="get_import_failure_file", id=batch_id)
    warnings = client.execute(method="get_import_warning_file", id=batch_id)
    assert failures == (
        "firstName,lastName,email,leadScore,Import Failure Reason\n"
        "Charlie,Dog,charliedog@example.com,TEXT_VALUE_IN_INTEGER_FIELD,Invalid data type in field Lead Score\n"
    )
    assert (
        warnings
        == "firstName,lastName,email,leadScore,Import Warning Reason\nEasy,Fox,not-an-email,3,Invalid email address\n"
    )

    # it authenticated once, sent the token only in the header, and the import arrived once
    assert len(sandbox.calls_to("/identity/oauth/token")) == 1
    rest_calls = [c for c in sandbox.calls if not c.path.startswith("/identity")]
    assert rest_calls and all(c.bearer and not c.secrets_in_url for c in rest_calls)
    assert [r["email"] for r in sandbox.imported_rows("leads")] == ["ablebaker@example.com", "not-an-email"]
