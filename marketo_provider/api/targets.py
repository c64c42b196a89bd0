"""What an import is: object types and file formats, where batches live (:class:`ImportTarget`),
the paths in the spec's words, the values users give (whole numbers, seconds), the columns every
row must fill, and Marketo's rules for the header line. What one import sends besides the file is
:mod:`.import_spec`'s."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import quote

from marketo_provider.api.errors import MarketoValueError
from marketo_provider.bounds import named

__all__ = [
    "COMPLETE",
    "DEFAULT_LOOKUP_FIELD",
    "DONE_STATUSES",
    "FAILED",
    "FAILURE_REASON_COLUMN",
    "IMPORTING",
    "PATH_TEMPLATES",
    "QUEUED",
    "RESULT_KINDS",
    "WARNING_REASON_COLUMN",
    "Choice",
    "FileFormat",
    "ImportTarget",
    "ObjectType",
    "header_name_problems",
    "importable_field_objects",
    "positive_int",
    "positive_seconds",
    "required_columns",
    "why_required",
]

FAILURE_REASON_COLUMN = "Import Failure Reason"


WARNING_REASON_COLUMN = "Import Warning Reason"


RESULT_KINDS = ("failures", "warnings")


Choice = TypeVar("Choice", bound=enum.Enum)


def _one_of(kind: type[Choice], value: object, refusal: str) -> Choice:
    """The member of ``kind`` that ``value`` names, or a :class:`MarketoValueError` saying ``refusal``."""
    try:
        return kind(value)
    except ValueError:
        raise MarketoValueError(refusal) from None


class ObjectType(str, enum.Enum):
    """The three kinds of record the bulk import API loads."""

    LEADS = "leads"
    PROGRAM_MEMBERS = "program_members"
    CUSTOM_OBJECTS = "custom_objects"

    @classmethod
    def parse(cls, value: str | ObjectType) -> ObjectType:
        choices = ", ".join(repr(o.value) for o in cls)
        return _one_of(cls, value, f"object_type {value!r} is not one of {choices}")

    @property
    def processed_count_field(self) -> str:
        """Name of the status field that counts processed rows."""
        return "numOfObjectsProcessed" if self is ObjectType.CUSTOM_OBJECTS else "numOfLeadsProcessed"

    @property
    def has_result_file_when_empty(self) -> bool:
        """Leads and program members answer an empty failures/warnings file; custom objects 404."""
        return self is not ObjectType.CUSTOM_OBJECTS


class FileFormat(str, enum.Enum):
    """Import file formats: comma, tab or semicolon separated values."""

    CSV = "csv"
    TSV = "tsv"
    SSV = "ssv"

    @classmethod
    def parse(cls, value: str | FileFormat | None) -> FileFormat:
        given = str(value.value if isinstance(value, FileFormat) else value).lower()
        refusal = f"file_format {value!r} is not one of 'csv' (comma), 'tsv' (tab) or 'ssv' (semicolon)"
        return _one_of(cls, given, refusal)

    @property
    def delimiter(self) -> str:
        return {"csv": ",", "tsv": "\t", "ssv": ";"}[self.value]

    @property
    def content_type(self) -> str:
        return {"csv": "text/csv", "tsv": "text/tab-separated-values", "ssv": "text/plain"}[self.value]

    @property
    def delimiter_name(self) -> str:
        return {"csv": "comma", "tsv": "tab", "ssv": "semicolon"}[self.value]


QUEUED = "Queued"


IMPORTING = "Importing"


COMPLETE = "Complete"


FAILED = "Failed"


DONE_STATUSES = frozenset({COMPLETE, FAILED})


def _quote(segment: str) -> str:
    return quote(segment, safe="")


# Path templates, in the spec's own words.
PATH_TEMPLATES: dict[tuple[ObjectType, str], str] = {
    (ObjectType.LEADS, "create"): "/bulk/v1/leads.json",
    (ObjectType.LEADS, "status"): "/bulk/v1/leads/batch/{batchId}.json",
    (ObjectType.LEADS, "failures"): "/bulk/v1/leads/batch/{batchId}/failures.json",
    (ObjectType.LEADS, "warnings"): "/bulk/v1/leads/batch/{batchId}/warnings.json",
    (ObjectType.LEADS, "describe"): "/rest/v1/leads/describe2.json",
    (ObjectType.PROGRAM_MEMBERS, "create"): "/bulk/v1/program/{programId}/members/import.json",
    (ObjectType.PROGRAM_MEMBERS, "status"): "/bulk/v1/program/members/import/{batchId}/status.json",
    (ObjectType.PROGRAM_MEMBERS, "failures"): "/bulk/v1/program/members/import/{batchId}/failures.json",
    (ObjectType.PROGRAM_MEMBERS, "warnings"): "/bulk/v1/program/members/import/{batchId}/warnings.json",
    (ObjectType.PROGRAM_MEMBERS, "describe"): "/rest/v1/programs/members/describe.json",
    (ObjectType.CUSTOM_OBJECTS, "create"): "/bulk/v1/customobjects/{apiName}/import.json",
    (ObjectType.CUSTOM_OBJECTS, "status"): "/bulk/v1/customobjects/{apiName}/import/{batchId}/status.json",
    (
        ObjectType.CUSTOM_OBJECTS,
        "failures",
    ): "/bulk/v1/customobjects/{apiName}/import/{batchId}/failures.json",
    (
        ObjectType.CUSTOM_OBJECTS,
        "warnings",
    ): "/bulk/v1/customobjects/{apiName}/import/{batchId}/warnings.json",
    (ObjectType.CUSTOM_OBJECTS, "describe"): "/rest/v1/customobjects/{customObjectName}/describe.json",
}


@dataclass(frozen=True)
class ImportTarget:
    """Where batches live: the object type and what names it (program id, custom object name).

    Status and result file paths need only the object type (and a custom object's name); creating
    a program member import also needs the program (:class:`ImportSpec` checks that).
    """

    object_type: ObjectType
    program_id: int | None = None
    custom_object_name: str | None = None

    def __post_init__(self) -> None:
        kind = self.object_type
        if kind is ObjectType.CUSTOM_OBJECTS and not self.custom_object_name:
            raise MarketoValueError(
                "custom_object_name (the object's API name, e.g. 'car_c') is required for custom object imports"
            )
        if kind is not ObjectType.PROGRAM_MEMBERS and self.program_id is not None:
            raise MarketoValueError(f"program_id only applies to program member imports, not {kind.value}")
        if kind is not ObjectType.CUSTOM_OBJECTS and self.custom_object_name:
            raise MarketoValueError(
                f"custom_object_name only applies to custom object imports, not {kind.value}"
            )

    @classmethod
    def of(
        cls,
        object_type: str | ObjectType,
        *,
        program_id: int | str | None = None,
        custom_object_name: str | None = None,
    ) -> ImportTarget:
        return cls(
            ObjectType.parse(object_type),
            program_id=positive_int("program_id", program_id),
            custom_object_name=custom_object_name or None,
        )

    @property
    def create_path(self) -> str:
        if self.object_type is ObjectType.PROGRAM_MEMBERS and self.program_id is None:
            raise MarketoValueError("program_id is required for program member imports")
        template = PATH_TEMPLATES[(self.object_type, "create")]
        return template.format(programId=self.program_id, apiName=_quote(self.custom_object_name or ""))

    def batch_path(self, batch_id: int, kind: str) -> str:
        """The path of a batch's ``status``, ``failures`` or ``warnings``."""
        if kind not in ("status", *RESULT_KINDS):
            raise MarketoValueError(f"kind must be 'status', 'failures' or 'warnings', not {kind!r}")
        template = PATH_TEMPLATES[(self.object_type, kind)]
        return template.format(batchId=int(batch_id), apiName=_quote(self.custom_object_name or ""))

    def result_file_path(self, batch_id: int, kind: str) -> str:
        """The path of a batch's ``failures`` or ``warnings`` file."""
        if kind not in RESULT_KINDS:
            raise MarketoValueError(f"result file kind must be 'failures' or 'warnings', not {kind!r}")
        return self.batch_path(batch_id, kind)

    @property
    def describe_path(self) -> str:
        template = PATH_TEMPLATES[(self.object_type, "describe")]
        return template.format(customObjectName=_quote(self.custom_object_name or ""))

    @property
    def label(self) -> str:
        """Short human name, e.g. ``leads`` or ``custom object car_c``."""
        if self.object_type is ObjectType.PROGRAM_MEMBERS:
            return f"program members of program {self.program_id}" if self.program_id else "program members"
        if self.object_type is ObjectType.CUSTOM_OBJECTS:
            return f"custom object {self.custom_object_name}"
        return "leads"


DEFAULT_LOOKUP_FIELD = "email"


def positive_seconds(name: str, value: float | str) -> float:
    """A positive number of seconds, from a number or the text a template rendered."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise MarketoValueError(f"{name} must be a number of seconds, not {value!r}") from None
    if not seconds > 0 or seconds == float("inf"):
        raise MarketoValueError(f"{name} must be a positive number of seconds, not {value!r}")
    return seconds


def positive_int(name: str, value: int | str | None) -> int | None:
    """A positive whole number (an id), from a number or the text a template rendered; None as is."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise MarketoValueError(f"{name} must be a whole number, not {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise MarketoValueError(f"{name} must be a whole number, not {value!r}") from None
    if number <= 0:
        raise MarketoValueError(f"{name} must be a positive number, not {value!r}")
    return number


def required_columns(
    object_type: str | ObjectType, *, lookup_field: str | None = None, dedupe_fields: Iterable[str] = ()
) -> tuple[str, ...]:
    """The columns every row of an import must fill: leads their lookup field (default ``email``),
    program members ``email``, custom objects their dedupe fields (from the describe call)."""
    kind = ObjectType.parse(object_type)
    if kind is ObjectType.PROGRAM_MEMBERS:
        return ("email",)
    if kind is ObjectType.LEADS:
        return (lookup_field or DEFAULT_LOOKUP_FIELD,)
    return tuple(dedupe_fields)


def why_required(object_type: str | ObjectType) -> str:
    """Why an import of this kind needs its :func:`required_columns`, for messages."""
    return {
        ObjectType.PROGRAM_MEMBERS: "which program member imports need to find each lead",
        ObjectType.LEADS: "the lookup field leads are matched on",
        ObjectType.CUSTOM_OBJECTS: "the custom object's dedupe field",
    }[ObjectType.parse(object_type)]


def importable_field_objects(object_type: str | ObjectType) -> tuple[ObjectType, ...]:
    """The objects whose describe calls list the columns an import of this kind may name: program
    member imports may also name lead fields (they create or update the lead)."""
    kind = ObjectType.parse(object_type)
    if kind is ObjectType.PROGRAM_MEMBERS:
        return (ObjectType.PROGRAM_MEMBERS, ObjectType.LEADS)
    return (kind,)


def header_name_problems(names: Iterable[str], file_format: str | FileFormat) -> list[str]:
    """What is wrong with an import file's header names, as phrases that follow "the header of
    <source>" and say what to fix; empty when Marketo can read the header."""
    fmt = FileFormat.parse(file_format)
    names = list(names)
    problems: list[str] = []
    if len(names) == 1:
        for other in FileFormat:
            if other is not fmt and other.delimiter in names[0]:
                problems.append(
                    f"has one column when read as {fmt.value} ({fmt.delimiter_name}-separated) but looks "
                    f"{other.delimiter_name}-separated: {names[0][:80]!r}; set file_format='{other.value}'"
                )
                break
    empty = [str(i + 1) for i, n in enumerate(names) if not n.strip()]
    if empty:
        problems.append(f"has empty column names (column {named(empty)}); name every column")
    padded = [n for n in names if n != n.strip()]
    if padded:
        listed = named(padded, quote=True)
        problems.append(
            f"has column names with leading or trailing spaces: {listed}; "
            "Marketo fails every row of such a file (missing.dedupe.fields). Remove the spaces."
        )
    seen: set[str] = set()
    duplicates = sorted({n for n in names if n in seen or seen.add(n)})  # type: ignore[func-returns-value]
    if duplicates:
        problems.append(f"names these columns more than once: {named(duplicates)}")
    return problems
