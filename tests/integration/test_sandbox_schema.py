"""The sandbox started from a team's saved describe answers, over real HTTP with the provider's hook."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from marketo_provider.hooks.marketo import MarketoHook, clear_token_cache
from marketo_provider.testing import MarketoSandbox
from marketo_provider.testing.schema import SchemaError
from tests.conftest import fast_hook
from tests.helpers import SAVED_DESCRIBE_ANSWERS, RawClient, write_schema


@pytest.fixture
def schema_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MarketoSandbox]:
    """A fast sandbox with the saved describe answers' fields, as the ``marketo_default`` connection."""
    schema = write_schema(tmp_path / "describe-answers.json")
    with MarketoSandbox(schema=str(schema), queued_seconds=0.05, import_seconds=0.1) as sb:
        clear_token_cache()
        for key, value in sb.env().items():
            monkeypatch.setenv(key, value)
        yield sb


def import_and_wait(hook: MarketoHook, tmp_path: Path, content: bytes, **kwargs: Any) -> dict[str, Any]:
    source = tmp_path / "import.csv"
    source.write_bytes(content)
    object_type = kwargs.pop("object_type", "leads")
    batch = hook.submit_import(object_type, source, **kwargs)["batchId"]
    name = {"custom_object_name": kwargs["custom_object_name"]} if "custom_object_name" in kwargs else {}
    deadline = time.monotonic() + 10
    while (status := hook.get_import_status(object_type, batch, **name))["status"] not in (
        "Complete",
        "Failed",
    ):
        assert time.monotonic() < deadline, status
        time.sleep(0.05)
    buffer = io.BytesIO()
    written = hook.download_result_file(object_type, batch, "failures", buffer, **name)
    status["failures"] = None if written is None else buffer.getvalue()
    return status


def test_an_unknown_custom_field_is_refused_and_a_known_one_accepted(
    schema_sandbox: MarketoSandbox, tmp_path: Path
) -> None:
    hook = fast_hook()
    known = import_and_wait(hook, tmp_path, b"email,accountTier,loyaltyPoints\nann@example.com,gold,120\n")
    assert (known["status"], known["numOfLeadsProcessed"], known["numOfRowsFailed"]) == ("Complete", 1, 0)
    unknown = import_and_wait(hook, tmp_path, b"email,shoeSize\nbob@example.com,44\n")
    assert (unknown["numOfLeadsProcessed"], unknown["numOfRowsFailed"]) == (0, 1)
    assert unknown["failures"] == (
        b"email,shoeSize,Import Failure Reason\nbob@example.com,44,Field not found: shoeSize\n"
    )
    assert schema_sandbox.imported_rows("leads") == [
        {"email": "ann@example.com", "accountTier": "gold", "loyaltyPoints": "120"}
    ]


def test_describe_answers_the_saved_fields(schema_sandbox: MarketoSandbox) -> None:
    hook = fast_hook()
    described = hook.describe("leads")
    assert {"accountTier", "loyaltyPoints", "crmContactKey"} <= set(described["fields"])
    assert "leadScore" not in described["fields"]
    assert hook.describe("custom_objects", custom_object_name="subscription_c")["dedupe_fields"] == [
        "subscriptionId"
    ]
    raw = RawClient(schema_sandbox).get("/rest/v1/leads/describe2.json").json()
    assert raw["success"] is True and raw["result"] == SAVED_DESCRIBE_ANSWERS["leads"]["result"]


def test_the_saved_custom_object_and_a_custom_lookup_field(
    schema_sandbox: MarketoSandbox, tmp_path: Path
) -> None:
    hook = fast_hook()
    subscriptions = import_and_wait(
        hook,
        tmp_path,
        b"subscriptionId,plan,seats\nS-1,team,5\nS-2,team,five\n",
        object_type="custom_objects",
        custom_object_name="subscription_c",
    )
    assert (subscriptions["numOfObjectsProcessed"], subscriptions["numOfRowsFailed"]) == (1, 1)
    assert subscriptions["failures"] is not None
    assert subscriptions["failures"].endswith(b"S-2,team,five,Invalid data type in field Seats\n")
    by_key = import_and_wait(
        hook, tmp_path, b"crmContactKey,firstName\nK-1,Ann\n", lookup_field="crmContactKey"
    )
    assert by_key["numOfLeadsProcessed"] == 1


def test_a_bad_schema_file_stops_the_sandbox_before_it_starts(tmp_path: Path) -> None:
    answers = {"leads": SAVED_DESCRIBE_ANSWERS["leads"], "custom_object": []}
    with pytest.raises(SchemaError, match="unknown key\\(s\\) 'custom_object'"):
        MarketoSandbox(schema=write_schema(tmp_path / "schema.json", answers))
