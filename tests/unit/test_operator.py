"""The operator's mapping of an import to Airflow, without I/O: arguments, events, errors."""

from __future__ import annotations

from typing import Any

import pytest

from marketo_provider._compat import AirflowException, AirflowFailException
from marketo_provider.api import BatchStatus, ImportTarget, ObjectType
from marketo_provider.importing import ImportState
from marketo_provider.operators.bulk_import import MarketoBulkImportOperator

LEADS = ImportTarget(ObjectType.LEADS)


def timeout_event() -> dict[str, Any]:
    state = ImportState.for_batches(LEADS, [11, 12], deadline=0)
    state.finished[11] = BatchStatus(11, "Complete", 1, 0, 0).to_json()
    return {"event": "timeout", "import_state": state.to_json(), "message": "deadline passed"}


def test_timeout_message_names_running_batches() -> None:
    op = MarketoBulkImportOperator(task_id="t", source="x.csv", timeout=5)
    with pytest.raises(
        AirflowException, match=r"still running in Marketo \(Marketo cannot cancel an import\): \[12\]"
    ):
        op.execute_complete({}, timeout_event())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"object_type": "contacts"}, "object_type 'contacts'"),
        ({"poll_interval": "0"}, "poll_interval must be a positive number"),
        ({"timeout": -1}, "timeout must be a positive number"),
        ({"list_id": "abc"}, "list_id must be a whole number"),
        ({"object_type": "program_members", "program_id": 3}, "program_member_status is required"),
        ({"results_path": "nosuchscheme://bucket/results/"}, "results_path 'nosuchscheme://bucket/results/'"),
        (
            {"on_invalid_rows": "skip", "wait_for_completion": False},
            "on_invalid_rows='skip' with wait_for_completion=False needs results_path",
        ),
        (
            {"on_invalid_rows": "skip", "check_values": False},
            "on_invalid_rows='skip' needs check_values=True",
        ),
    ],
)
def test_bad_arguments_fail_without_retries_before_anything_is_sent(
    kwargs: dict[str, Any], message: str
) -> None:
    op = MarketoBulkImportOperator(task_id="t", source="does-not-matter.csv", **kwargs)
    with pytest.raises(AirflowFailException, match=message):
        op.execute({})  # type: ignore[arg-type]
