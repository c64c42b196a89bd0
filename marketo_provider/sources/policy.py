"""What the row options mean: ``on_invalid_rows``, ``on_repeated_keys``, ``check_values`` and
``changed_rows_only`` parsed once into a :class:`RowPolicy`, kept as it is in the import's state."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from marketo_provider.sources.base import SourceError

_Option = TypeVar("_Option", bound=enum.Enum)


def _parse(option: type[_Option], value: Any, name: str) -> _Option:
    """``value`` (a member or its text, in any case) as a member of ``option``; a
    :class:`SourceError` naming the values ``name`` takes otherwise."""
    try:
        return option(str(value.value if isinstance(value, enum.Enum) else value).lower())
    except ValueError:
        shown = [repr(member.value) for member in option]
        raise SourceError(f"{name} must be {', '.join(shown[:-1])} or {shown[-1]}, not {value!r}") from None


class OnInvalidRows(str, enum.Enum):
    """What becomes of rows pre-flight predicts Marketo will (or may) fail."""

    SEND = "send"  # report them, and send them as they are (Marketo decides)
    SKIP = "skip"  # keep them out: they go into the failures file, refused before upload
    FAIL = "fail"  # stop before anything is sent

    @classmethod
    def parse(cls, value: Any) -> OnInvalidRows:
        return _parse(cls, value, "on_invalid_rows")


class OnRepeatedKeys(str, enum.Enum):
    """What becomes of rows whose key (lookup field, email, dedupe fields) appeared before."""

    WARN = "warn"  # report them and send every row
    KEEP_LAST = "keep_last"  # send only the last row of each key, so the later row wins
    FAIL = "fail"  # stop before anything is sent

    @classmethod
    def parse(cls, value: Any) -> OnRepeatedKeys:
        return _parse(cls, value, "on_repeated_keys")


@dataclass(frozen=True)
class RowPolicy:
    """What an import does with rows Marketo would refuse, repeated keys and unchanged rows: built
    once from the operator's arguments (every value checked here, nowhere else) and kept as it is
    in the import's state."""

    check_values: bool = True
    on_invalid_rows: OnInvalidRows = OnInvalidRows.SEND
    on_repeated_keys: OnRepeatedKeys = OnRepeatedKeys.WARN
    changed_rows_only: bool = False

    @classmethod
    def of(
        cls,
        *,
        check_values: Any = True,
        on_invalid_rows: Any = OnInvalidRows.SEND,
        on_repeated_keys: Any = OnRepeatedKeys.WARN,
        changed_rows_only: bool = False,
    ) -> RowPolicy:
        from marketo_provider.api import MarketoValueError

        invalid = OnInvalidRows.parse(on_invalid_rows)
        repeated = OnRepeatedKeys.parse(on_repeated_keys)
        checks = bool(check_values)
        if not checks and invalid is not OnInvalidRows.SEND:
            raise MarketoValueError(
                f"on_invalid_rows={invalid.value!r} needs check_values=True (the values must be checked to "
                "know which rows Marketo would refuse)"
            )
        if not checks and repeated is not OnRepeatedKeys.WARN:
            raise MarketoValueError(
                f"on_repeated_keys={repeated.value!r} needs check_values=True (the rows must be read to find "
                "repeated keys)"
            )
        return cls(checks, invalid, repeated, bool(changed_rows_only))

    @property
    def skip_invalid(self) -> bool:
        return self.on_invalid_rows is OnInvalidRows.SKIP

    @property
    def keep_last(self) -> bool:
        return self.on_repeated_keys is OnRepeatedKeys.KEEP_LAST

    @property
    def reads_rows(self) -> bool:
        """Whether pre-flight reads every row's values (and so writes a ledger of them)."""
        return self.check_values or self.changed_rows_only

    def to_json(self) -> dict[str, Any]:
        return {
            "check_values": self.check_values,
            "on_invalid_rows": self.on_invalid_rows.value,
            "on_repeated_keys": self.on_repeated_keys.value,
            "changed_rows_only": self.changed_rows_only,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RowPolicy:
        return cls.of(
            check_values=data.get("check_values", True),
            on_invalid_rows=data.get("on_invalid_rows", OnInvalidRows.SEND),
            on_repeated_keys=data.get("on_repeated_keys", OnRepeatedKeys.WARN),
            changed_rows_only=bool(data.get("changed_rows_only")),
        )
