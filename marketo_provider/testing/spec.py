"""Marketo as Adobe documents it: the sandbox's own statement of the bulk import API.

Written from Adobe's OpenAPI spec (``tests/spec/``, from AdobeDocs/marketo-apis) and developer
pages, never imported from the client's rules in ``marketo_provider.api``: a sandbox that borrowed
the client's rules could not catch the client's mistakes. The conformance tests check the path
table below against the spec files.

Where the docs are silent, the sandbox's choice is written next to the rule, and it is the strict
one: refuse what Adobe does not document.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

# ---- limits (developer pages: bulk import, rate limits, authentication) ------------------------

# Import files must be under 10 MB; Marketo answers HTTP 413 above. 10,000,000 bytes is below both
# readings of "10 MB".
MAX_IMPORT_FILE_BYTES = 10_000_000
# An upload's body is the file and its multipart framing (boundaries, part headers); the body may
# exceed the file limit by this much before it is refused unread.
MULTIPART_FRAMING_BYTES = 64 * 1024
# The other calls carry no documented body (identity reads the query string; status, files and
# describe are GETs). Adobe states no limit for them; the sandbox refuses a body over this, unread,
# with the same 413 as an upload.
MAX_BODY_BYTES = 64 * 1024
# Per instance: 2 jobs processed at once, 10 in the queue including those two (1016 above).
MAX_IMPORTING_JOBS = 2
MAX_QUEUED_JOBS = 10
# 100 calls in any 20 second window (606), 10 calls at once (615); identity calls are not counted.
RATE_LIMIT_CALLS = 100
RATE_LIMIT_WINDOW_SECONDS = 20.0
CONCURRENCY_LIMIT = 10
# A new access token lives one hour; ``expires_in`` is its remaining life.
TOKEN_LIFE_SECONDS = 3600

# ---- error codes and the messages Marketo sends with them ---------------------------------------

# (Injected faults answer with these too, so every code of the error codes page a bulk import can
# meet is here.)
ERROR_MESSAGES: dict[str, str] = {
    "600": "Access token not specified",
    "601": "Access token invalid",
    "602": "Access token expired",
    "603": "Access denied",
    "604": "Request time-out",
    "605": "HTTP Method not supported",
    "606": "Max rate limit '100' exceeded with in '20' secs",
    "607": "Daily quota reached",
    "608": "API Temporarily Unavailable",
    "609": "Invalid JSON",
    "610": "Requested resource not found",
    "611": "System error",
    "612": "Invalid Content Type",
    "613": "Invalid Multipart Request",
    "615": "Concurrent access limit reached",
    "616": "Invalid subscription type",
    "713": "Transient Error",
    "719": "Lock wait timeout exception",
    "1003": "Invalid data",
    "1006": "Field not found",
    "1008": "Partition does not exist",
    "1009": "Partition not specified",
    "1010": "Partition update not allowed",
    "1011": "Field cannot be used as lookup field",
    "1016": "Too many imports",
    "1019": "Import in progress",
}

# ---- object kinds, formats, statuses -------------------------------------------------------------


class ObjectType(str, enum.Enum):
    """The three kinds of record the bulk import API loads."""

    LEADS = "leads"
    PROGRAM_MEMBERS = "program_members"
    CUSTOM_OBJECTS = "custom_objects"

    @classmethod
    def parse(cls, value: str) -> ObjectType:
        try:
            return cls(str(getattr(value, "value", value)))
        except ValueError:
            choices = ", ".join(repr(o.value) for o in cls)
            raise ValueError(f"object type {value!r} is not one of {choices}") from None

    @property
    def processed_count_field(self) -> str:
        """The status field that counts imported rows."""
        return "numOfObjectsProcessed" if self is ObjectType.CUSTOM_OBJECTS else "numOfLeadsProcessed"


class FileFormat(str, enum.Enum):
    """The ``format`` query parameter: comma, tab or semicolon separated values."""

    CSV = "csv"
    TSV = "tsv"
    SSV = "ssv"

    @property
    def delimiter(self) -> str:
        return {"csv": ",", "tsv": "\t", "ssv": ";"}[self.value]

    @classmethod
    def parse(cls, value: str) -> FileFormat | None:
        # The spec's enum is lower case for leads and custom objects and upper case for program
        # members, and Adobe's own program member examples send ``format=csv``: case is taken as
        # insignificant. Anything else is not a format.
        try:
            return cls(value.lower())
        except ValueError:
            return None


QUEUED = "Queued"
IMPORTING = "Importing"
COMPLETE = "Complete"
FAILED = "Failed"

FAILURE_REASON_COLUMN = "Import Failure Reason"
WARNING_REASON_COLUMN = "Import Warning Reason"
# What real servers send failures/warnings files as (captured answers).
RESULT_FILE_CONTENT_TYPE = "text/csv;charset=UTF-8"

# ---- paths, as the spec writes them -------------------------------------------------------------

IDENTITY_TOKEN_PATH = "/identity/oauth/token"


@dataclass(frozen=True)
class Route:
    """One documented operation: HTTP method, path template, what it does and on which object."""

    method: str
    path: str
    operation: str  # token | create | status | failures | warnings | describe
    object_type: ObjectType | None = None


ROUTES: tuple[Route, ...] = (
    Route("GET", IDENTITY_TOKEN_PATH, "token"),
    Route("POST", IDENTITY_TOKEN_PATH, "token"),
    Route("POST", "/bulk/v1/leads.json", "create", ObjectType.LEADS),
    Route("GET", "/bulk/v1/leads/batch/{batchId}.json", "status", ObjectType.LEADS),
    Route("GET", "/bulk/v1/leads/batch/{batchId}/failures.json", "failures", ObjectType.LEADS),
    Route("GET", "/bulk/v1/leads/batch/{batchId}/warnings.json", "warnings", ObjectType.LEADS),
    Route("GET", "/rest/v1/leads/describe2.json", "describe", ObjectType.LEADS),
    Route("POST", "/bulk/v1/program/{programId}/members/import.json", "create", ObjectType.PROGRAM_MEMBERS),
    Route(
        "GET", "/bulk/v1/program/members/import/{batchId}/status.json", "status", ObjectType.PROGRAM_MEMBERS
    ),
    Route(
        "GET",
        "/bulk/v1/program/members/import/{batchId}/failures.json",
        "failures",
        ObjectType.PROGRAM_MEMBERS,
    ),
    Route(
        "GET",
        "/bulk/v1/program/members/import/{batchId}/warnings.json",
        "warnings",
        ObjectType.PROGRAM_MEMBERS,
    ),
    Route("GET", "/rest/v1/programs/members/describe.json", "describe", ObjectType.PROGRAM_MEMBERS),
    Route("POST", "/bulk/v1/customobjects/{apiName}/import.json", "create", ObjectType.CUSTOM_OBJECTS),
    Route(
        "GET",
        "/bulk/v1/customobjects/{apiName}/import/{batchId}/status.json",
        "status",
        ObjectType.CUSTOM_OBJECTS,
    ),
    Route(
        "GET",
        "/bulk/v1/customobjects/{apiName}/import/{batchId}/failures.json",
        "failures",
        ObjectType.CUSTOM_OBJECTS,
    ),
    Route(
        "GET",
        "/bulk/v1/customobjects/{apiName}/import/{batchId}/warnings.json",
        "warnings",
        ObjectType.CUSTOM_OBJECTS,
    ),
    Route(
        "GET",
        "/rest/v1/customobjects/{customObjectName}/describe.json",
        "describe",
        ObjectType.CUSTOM_OBJECTS,
    ),
)

# ---- parameters -----------------------------------------------------------------------------------

# The identity service reads all three from the query string, for GET and POST alike; that is the
# only place the spec and the docs put them.
IDENTITY_PARAMETERS: tuple[str, ...] = ("client_id", "client_secret", "grant_type")
GRANT_TYPE = "client_credentials"

# The multipart part that carries an import file ("in": "formData", "type": "file").
FILE_PART = "file"


@dataclass(frozen=True)
class QueryParameter:
    """A documented query parameter: its name, the spec's type and whether it is required."""

    name: str
    type: str = "string"  # "string" or "integer" (int32)
    required: bool = False


# The create calls' query parameters, per object, as the spec lists them ("in": "query"). The
# status, failures, warnings and describe calls document none.
CREATE_PARAMETERS: dict[ObjectType, tuple[QueryParameter, ...]] = {
    ObjectType.LEADS: (
        QueryParameter("format", required=True),
        QueryParameter("lookupField"),
        QueryParameter("partitionName"),
        QueryParameter("listId", "integer"),
    ),
    ObjectType.PROGRAM_MEMBERS: (
        QueryParameter("programMemberStatus", required=True),
        QueryParameter("format", required=True),
    ),
    ObjectType.CUSTOM_OBJECTS: (QueryParameter("format", required=True),),
}

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

# lookupField, from the spec's description: "id, cookies, email, twitterId, facebookId,
# linkedInId, sfdcAccountId, sfdcContactId, sfdcLeadId, sfdcLeadOwnerId, sfdcOpptyId", plus custom
# fields of type string, email or integer (a fresh sandbox has none; a team's schema may). Default
# is email; id updates only.
DEFAULT_LOOKUP_FIELD = "email"
LEAD_LOOKUP_FIELDS: tuple[str, ...] = (
    "id",
    "cookies",
    "email",
    "twitterId",
    "facebookId",
    "linkedInId",
    "sfdcAccountId",
    "sfdcContactId",
    "sfdcLeadId",
    "sfdcLeadOwnerId",
    "sfdcOpptyId",
)
CUSTOM_LOOKUP_FIELD_TYPES: tuple[str, ...] = ("string", "email", "integer")


def required_fields(
    object_type: ObjectType, lookup_field: str | None = None, dedupe_fields: tuple[str, ...] = ()
) -> tuple[str, ...]:
    """The fields every row of an import must fill: leads their lookup field (default ``email``),
    program members ``email`` (the docs: every row must have it), custom objects their dedupe
    fields (a row without them fails with ``missing.dedupe.fields``)."""
    if object_type is ObjectType.LEADS:
        return (lookup_field or DEFAULT_LOOKUP_FIELD,)
    if object_type is ObjectType.PROGRAM_MEMBERS:
        return ("email",)
    return dedupe_fields


@dataclass(frozen=True)
class ImportTarget:
    """Where an import goes: the object type and what its path names (program id, object API name)."""

    object_type: ObjectType
    program_id: int | None = None
    custom_object_name: str | None = None

    @property
    def key(self) -> str:
        """The name imported rows are kept under: ``leads``, ``program_members``, ``custom_objects/car_c``."""
        if self.object_type is ObjectType.CUSTOM_OBJECTS:
            return f"custom_objects/{self.custom_object_name}"
        return self.object_type.value


__all__ = [
    "COMPLETE",
    "CREATE_PARAMETERS",
    "ERROR_MESSAGES",
    "FAILED",
    "IMPORTING",
    "QUEUED",
    "ROUTES",
    "FileFormat",
    "ImportTarget",
    "ObjectType",
    "QueryParameter",
    "Route",
    "required_fields",
]
