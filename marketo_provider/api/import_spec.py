"""What one import sends to Marketo besides the file: :class:`ImportSpec`, built from the object
type and the :class:`ImportKeywords` (stated once, for :meth:`ImportSpec.of`, the hook's
``submit_import`` and the bulk import operator), each value checked once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from marketo_provider.api.errors import MarketoValueError
from marketo_provider.api.targets import FileFormat, ImportTarget, ObjectType, positive_int, required_columns

__all__ = [
    "IMPORT_KEYWORDS",
    "ImportKeywords",
    "ImportSpec",
    "given_keywords",
]

if TYPE_CHECKING:
    from typing_extensions import Unpack


class ImportKeywords(TypedDict, total=False):
    """What an import sends besides the file, as :meth:`ImportSpec.of`,
    ``MarketoHook.submit_import`` and the bulk import operator take it: keyword arguments, text a
    template rendered included (``list_id="1234"``).

    ``file_format``: ``csv`` (the default), ``tsv`` or ``ssv``. ``lookup_field``, ``list_id``,
    ``partition_name``: leads only (the field leads are matched on, a static list to add them to,
    the lead partition). ``program_id``, ``program_member_status``: program members, both
    required. ``custom_object_name``: custom objects, required (the API name, e.g. ``car_c``).
    """

    file_format: str | FileFormat | None
    lookup_field: str | None
    list_id: int | str | None
    partition_name: str | None
    program_id: int | str | None
    program_member_status: str | None
    custom_object_name: str | None


#: The names of :class:`ImportKeywords`, in order.
IMPORT_KEYWORDS: tuple[str, ...] = tuple(ImportKeywords.__annotations__)


def given_keywords(where: str, keywords: Mapping[str, Any]) -> list[str]:
    """The :class:`ImportKeywords` given a value (not None), in their order. Another name is
    refused as Python refuses an unexpected keyword argument of ``where``."""
    for name in keywords:
        if name not in IMPORT_KEYWORDS:
            raise TypeError(f"{where}() got an unexpected keyword argument {name!r}")
    return [name for name in IMPORT_KEYWORDS if keywords.get(name) is not None]


@dataclass(frozen=True)
class ImportSpec:
    """What one import sends to Marketo besides the file: the target, the file format, and the
    options of lead and program member imports. Build it with :meth:`of`, which checks every value
    once; it knows its create path and its query string (where the spec puts the parameters)."""

    target: ImportTarget
    file_format: FileFormat = FileFormat.CSV
    lookup_field: str | None = None
    list_id: int | None = None
    partition_name: str | None = None
    program_member_status: str | None = None

    def __post_init__(self) -> None:
        kind = self.target.object_type
        lead_only = {
            "lookup_field": self.lookup_field,
            "list_id": self.list_id,
            "partition_name": self.partition_name,
        }
        given = [name for name, value in lead_only.items() if value not in (None, "")]
        if kind is not ObjectType.LEADS and given:
            raise MarketoValueError(f"{', '.join(given)} only apply to lead imports, not {kind.value}")
        if kind is ObjectType.PROGRAM_MEMBERS:
            if self.target.program_id is None:
                raise MarketoValueError("program_id is required for program member imports")
            if not self.program_member_status:
                raise MarketoValueError(
                    "program_member_status is required for program member imports (e.g. 'On List'); "
                    "it must be a status of the program's channel"
                )
        elif self.program_member_status:
            raise MarketoValueError(
                f"program_member_status only applies to program member imports, not {kind.value}"
            )

    @classmethod
    def of(cls, object_type: str | ObjectType, **keywords: Unpack[ImportKeywords]) -> ImportSpec:
        """The spec from arguments as users give them (strings a template rendered included): the
        object type and the :class:`ImportKeywords`."""
        given_keywords("ImportSpec.of", keywords)
        return cls(
            target=ImportTarget.of(
                object_type,
                program_id=keywords.get("program_id"),
                custom_object_name=keywords.get("custom_object_name"),
            ),
            file_format=FileFormat.parse(keywords.get("file_format", FileFormat.CSV)),
            lookup_field=_text(keywords.get("lookup_field")),
            list_id=positive_int("list_id", keywords.get("list_id")),
            partition_name=_text(keywords.get("partition_name")),
            program_member_status=_text(keywords.get("program_member_status")),
        )

    @property
    def object_type(self) -> ObjectType:
        return self.target.object_type

    @property
    def create_path(self) -> str:
        return self.target.create_path

    @property
    def query(self) -> dict[str, str]:
        """The create call's query string."""
        params = {"format": self.file_format.value}
        if self.lookup_field:
            params["lookupField"] = self.lookup_field
        if self.list_id is not None:
            params["listId"] = str(self.list_id)
        if self.partition_name:
            params["partitionName"] = self.partition_name
        if self.program_member_status:
            params["programMemberStatus"] = self.program_member_status
        return params

    def required_columns(self, dedupe_fields: Iterable[str] = ()) -> tuple[str, ...]:
        return required_columns(self.object_type, lookup_field=self.lookup_field, dedupe_fields=dedupe_fields)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None
