"""How an import runs (:class:`ImportOptions`) and the batch ids a sensor watches, every value
checked once, before the first call."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from marketo_provider.api import MarketoValueError
from marketo_provider.api.targets import positive_seconds
from marketo_provider.results import ResultsLocation
from marketo_provider.sources import OnInvalidRows, OnRepeatedKeys, RowPolicy
from marketo_provider.storage import StateLocation

DEFAULT_POLL_INTERVAL_SECONDS = 30.0
DEFAULT_IMPORT_TIMEOUT_SECONDS = 24 * 3600.0


@dataclass(frozen=True)
class ImportOptions:
    """How an import runs, every value checked once before anything is sent."""

    poll_interval: float = DEFAULT_POLL_INTERVAL_SECONDS
    timeout: float = DEFAULT_IMPORT_TIMEOUT_SECONDS
    results: ResultsLocation = field(default_factory=ResultsLocation)
    max_failed_rows: int | None = None
    check_columns: bool = True
    wait_for_completion: bool = True
    resend_uncertain_parts: bool = False
    rows: RowPolicy = field(default_factory=RowPolicy)  # what becomes of invalid, repeated, unchanged rows
    state: StateLocation | None = None  # where the confirmed state (and the journal) is kept
    full_refresh: bool = False

    @property
    def changed_rows_only(self) -> bool:
        """Whether only rows changed since the last confirmed import are sent (``rows`` says it)."""
        return self.rows.changed_rows_only

    @classmethod
    def of(
        cls,
        *,
        poll_interval: float | str = DEFAULT_POLL_INTERVAL_SECONDS,
        timeout: float | str = DEFAULT_IMPORT_TIMEOUT_SECONDS,
        results_path: str | None = None,
        results_conn_id: str | None = None,
        source: Any = None,
        source_conn_id: str | None = None,
        max_failed_rows: int | str | None = None,
        check_columns: bool = True,
        wait_for_completion: bool = True,
        resend_uncertain_parts: bool = False,
        check_values: bool = True,
        on_invalid_rows: str | OnInvalidRows = OnInvalidRows.SEND,
        on_repeated_keys: str | OnRepeatedKeys = OnRepeatedKeys.WARN,
        changed_rows_only: bool | str = False,
        state_path: str | None = None,
        state_conn_id: str | None = None,
        full_refresh: bool | str = False,
    ) -> ImportOptions:
        failed: int | None = None
        if max_failed_rows not in (None, ""):
            try:
                failed = int(max_failed_rows)
            except (TypeError, ValueError):
                raise MarketoValueError(
                    f"max_failed_rows must be a whole number, not {max_failed_rows!r}"
                ) from None
            if failed < 0:
                raise MarketoValueError(f"max_failed_rows must be 0 or more, not {max_failed_rows!r}")
        rows = RowPolicy.of(
            check_values=check_values,
            on_invalid_rows=on_invalid_rows,
            on_repeated_keys=on_repeated_keys,
            changed_rows_only=_flag("changed_rows_only", changed_rows_only),
        )
        if (
            not wait_for_completion
            and rows.skip_invalid
            and results_path in (None, "")
            and state_path in (None, "")
        ):
            raise MarketoValueError(
                "on_invalid_rows='skip' with wait_for_completion=False needs results_path (or state_path): the "
                "sensor that concludes the import writes the rows refused before upload into the failures file "
                "from the import's ledger, which is kept there for it"
            )
        return cls(
            poll_interval=positive_seconds("poll_interval", poll_interval),
            timeout=positive_seconds("timeout", timeout),
            results=ResultsLocation.of(
                results_path, results_conn_id, source=source, source_conn_id=source_conn_id
            ),
            max_failed_rows=failed,
            check_columns=bool(check_columns),
            wait_for_completion=bool(wait_for_completion),
            resend_uncertain_parts=bool(resend_uncertain_parts),
            rows=rows,
            state=_state_location(changed_rows_only, state_path, state_conn_id, source, source_conn_id),
            full_refresh=_flag("full_refresh", full_refresh),
        )


def _flag(name: str, value: Any) -> bool:
    """A yes/no argument, as given or as a template rendered it."""
    if isinstance(value, bool) or value is None:
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", "", "none"):
        return False
    raise MarketoValueError(f"{name} must be true or false, not {value!r}")


def _state_location(
    changed_rows_only: Any, path: str | None, conn_id: str | None, source: Any, source_conn_id: str | None
) -> StateLocation | None:
    path = str(path).strip() if path not in (None, "") else None
    if path is None:
        if _flag("changed_rows_only", changed_rows_only):
            raise MarketoValueError(
                "changed_rows_only needs state_path: a folder (local or object storage) where what Marketo "
                "confirmed is kept between runs"
            )
        return None
    same = ResultsLocation.of(path, conn_id, source=source, source_conn_id=source_conn_id)
    return StateLocation(path, same.conn_id)


def parse_batch_ids(value: Any) -> list[int]:
    """Batch ids as given to the sensor: a list, the operator's summary, or text rendered from a
    template (``"[3404, 3405]"`` or ``"3404,3405"``)."""
    if isinstance(value, Mapping) and "batch_ids" in value:
        value = value["batch_ids"]
    if isinstance(value, str):
        text = value.strip()
        try:
            value = json.loads(text) if text.startswith("[") else [v for v in text.split(",") if v.strip()]
        except ValueError:
            raise MarketoValueError(f"batch_ids {text!r} is not a list of batch ids") from None
    if isinstance(value, int):
        value = [value]
    try:
        ids = [int(v) for v in value]
    except (TypeError, ValueError):
        raise MarketoValueError(f"batch_ids must be a list of whole numbers, not {value!r}") from None
    if not ids:
        raise MarketoValueError("batch_ids is empty: there is nothing to wait for")
    return ids
