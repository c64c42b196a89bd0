"""The sandbox's field catalogue: the fields of each object, the describe calls, and how values are checked."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from marketo_provider.testing.errors import SandboxError
from marketo_provider.testing.spec import CUSTOM_LOOKUP_FIELD_TYPES, LEAD_LOOKUP_FIELDS, ObjectType

# The types whose describe entry carries a length the values must fit (the spec's ObjectField:
# "Only applicable to text, string, and text area"; email, phone and url are strings too).
LENGTH_TYPES = ("string", "text", "email", "phone", "url")


@dataclass(frozen=True)
class FieldSpec:
    """One field as the describe calls show it."""

    name: str
    display_name: str
    data_type: str
    length: int | None = None
    updateable: bool = True
    crm_managed: bool = False

    def describe(self) -> dict[str, object]:
        out: dict[str, object] = {
            "name": self.name,
            "displayName": self.display_name,
            "dataType": self.data_type,
            "updateable": self.updateable,
            "crmManaged": self.crm_managed,
        }
        if self.length is not None:
            out["length"] = self.length
        return out


def _f(name: str, display: str, data_type: str = "string", length: int | None = 255, **kw: bool) -> FieldSpec:
    if data_type not in LENGTH_TYPES:
        length = None
    return FieldSpec(name, display, data_type, length, **kw)


# Standard lead fields (a representative subset of a fresh instance's describe2 answer).
LEAD_FIELDS: tuple[FieldSpec, ...] = (
    _f("id", "Id", "integer", updateable=False),
    _f("email", "Email Address", "email"),
    _f("firstName", "First Name"),
    _f("lastName", "Last Name"),
    _f("middleName", "Middle Name"),
    _f("salutation", "Salutation"),
    _f("title", "Job Title"),
    _f("company", "Company Name"),
    _f("phone", "Phone Number", "phone"),
    _f("mobilePhone", "Mobile Phone Number", "phone"),
    _f("fax", "Fax Number", "phone"),
    _f("website", "Website", "url"),
    _f("address", "Address", "text", length=None),
    _f("city", "City"),
    _f("state", "State"),
    _f("postalCode", "Postal Code"),
    _f("country", "Country"),
    _f("industry", "Industry"),
    _f("leadSource", "Lead Source"),
    _f("leadStatus", "Lead Status"),
    _f("leadScore", "Lead Score", "integer"),
    _f("annualRevenue", "Annual Revenue", "currency"),
    _f("numberOfEmployees", "Num Employees", "integer"),
    _f("rating", "Lead Rating"),
    _f("unsubscribed", "Unsubscribed", "boolean"),
    _f("doNotCall", "Do Not Call", "boolean"),
    _f("dateOfBirth", "Date of Birth", "date"),
    _f("externalCompanyId", "External Company Id"),
    _f("externalSalesPersonId", "External Sales Person Id"),
    _f("cookies", "Cookies"),
    _f("twitterId", "Twitter Id"),
    _f("facebookId", "Facebook Id"),
    _f("linkedInId", "LinkedIn Id"),
    _f("sfdcAccountId", "SFDC Account Id", updateable=False, crm_managed=True),
    _f("sfdcContactId", "SFDC Contact Id", updateable=False, crm_managed=True),
    _f("sfdcLeadId", "SFDC Lead Id", updateable=False, crm_managed=True),
    _f("sfdcLeadOwnerId", "SFDC Lead Owner Id", updateable=False, crm_managed=True),
    _f("sfdcOpptyId", "SFDC Oppty Id", updateable=False, crm_managed=True),
    _f("createdAt", "Created At", "datetime", updateable=False),
    _f("updatedAt", "Updated At", "datetime", updateable=False),
)

# Names of Marketo's standard lead fields: a schema's string, email or integer lead field that is
# not one of them is taken as a custom field, which the spec accepts as a lookup field.
STANDARD_LEAD_FIELD_NAMES: frozenset[str] = frozenset(f.name for f in LEAD_FIELDS)

# Program member fields of a fresh instance; program member imports may also carry lead fields.
PROGRAM_MEMBER_FIELDS: tuple[FieldSpec, ...] = (
    _f("leadId", "Lead Id", "integer", updateable=False),
    _f("programId", "Program Id", "integer", updateable=False),
    _f("membershipDate", "Membership Date", "datetime", updateable=False),
    _f("statusName", "Status Name"),
    _f("reachedSuccess", "Success", "boolean"),
    _f("registrationCode", "Registration Code"),
    _f("webinarUrl", "Webinar Url", "url"),
    _f("nurtureCadence", "Nurture Cadence"),
    _f("isExhausted", "Exhausted", "boolean", updateable=False),
)
PROGRAM_MEMBER_DEDUPE_FIELDS: tuple[str, ...] = ("leadId", "programId")

# Statuses of the default program channels; programMemberStatus must name one of them.
PROGRAM_MEMBER_STATUSES: frozenset[str] = frozenset(
    {
        "Not in Program",
        "Member",
        "On List",
        "Invited",
        "Registered",
        "Attended",
        "No Show",
        "Engaged",
        "Responded",
        "Sent",
        "Visited",
        "Influenced",
        "Filled-out Form",
    }
)


@dataclass(frozen=True)
class CustomObjectType:
    """A custom object type as registered in the instance (Admin > Marketo Custom Objects)."""

    api_name: str
    display_name: str
    fields: tuple[FieldSpec, ...]
    dedupe_fields: tuple[str, ...]
    plural_name: str = ""
    description: str = ""
    id_field: str = "marketoGUID"
    relationships: tuple[dict[str, object], ...] = field(default_factory=tuple)


CAR_OBJECT = CustomObjectType(
    api_name="car_c",
    display_name="Car",
    plural_name="Cars",
    description="Cars owned by leads",
    fields=(
        _f("marketoGUID", "Marketo GUID", "string", length=36, updateable=False),
        _f("vin", "VIN", "string", length=17),
        _f("make", "Make"),
        _f("model", "Model"),
        _f("year", "Year", "integer"),
        _f("color", "Color"),
        _f("purchaseDate", "Purchase Date", "date"),
        _f("price", "Price", "currency"),
        _f("customerEmail", "Customer Email", "email"),
        _f("createdAt", "Created At", "datetime", updateable=False),
        _f("updatedAt", "Updated At", "datetime", updateable=False),
    ),
    dedupe_fields=("vin",),
    relationships=(
        {"field": "customerEmail", "relatedTo": {"field": "email", "name": "Lead"}, "type": "parent"},
    ),
)


@dataclass(frozen=True)
class Schema:
    """An instance's own fields, from the describe answers saved from it (see ``schema.py``).

    Each part that is None keeps the built-in catalogue's; a part that is given replaces it whole
    (``custom_objects`` replaces ``car_c`` too). ``answers`` holds the saved ``result[0]`` of each
    describe call, by ``ImportTarget.key``, served back as it was saved.
    """

    lead_fields: tuple[FieldSpec, ...] | None = None
    program_member_fields: tuple[FieldSpec, ...] | None = None
    program_member_dedupe_fields: tuple[str, ...] = PROGRAM_MEMBER_DEDUPE_FIELDS
    custom_objects: tuple[CustomObjectType, ...] | None = None
    answers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    source: str = ""


_STAMP = "2024-01-15T10:00:00Z"


class Catalog:
    """The instance's objects: the lead and program member fields and the custom object types
    registered in it. Built in: a fresh instance's standard fields and ``car_c``; a
    :class:`Schema` replaces any of them with a team's own. Answers the describe calls."""

    def __init__(self, schema: Schema | None = None) -> None:
        schema = schema or Schema()
        self.lead_fields = LEAD_FIELDS if schema.lead_fields is None else schema.lead_fields
        self.program_member_fields = (
            PROGRAM_MEMBER_FIELDS if schema.program_member_fields is None else schema.program_member_fields
        )
        self.program_member_dedupe_fields = schema.program_member_dedupe_fields
        objects = (CAR_OBJECT,) if schema.custom_objects is None else schema.custom_objects
        self.custom_objects: dict[str, CustomObjectType] = {o.api_name: o for o in objects}
        self.answers: dict[str, Mapping[str, Any]] = dict(schema.answers)

    @property
    def lead_field_names(self) -> frozenset[str]:
        return frozenset(f.name for f in self.lead_fields)

    def register(self, obj: CustomObjectType) -> None:
        self.custom_objects[obj.api_name] = obj
        self.answers.pop(f"{ObjectType.CUSTOM_OBJECTS.value}/{obj.api_name}", None)

    def custom_object(self, api_name: str | None) -> CustomObjectType:
        obj = self.custom_objects.get(api_name or "")
        if obj is None:
            raise SandboxError("1003", f"Custom object '{api_name}' not found")
        return obj

    def fields(self, object_type: ObjectType, custom_object_name: str | None = None) -> dict[str, FieldSpec]:
        """The fields an import file of this object may name, by name (program member imports may
        also carry lead fields)."""
        if object_type is ObjectType.LEADS:
            return {f.name: f for f in self.lead_fields}
        if object_type is ObjectType.PROGRAM_MEMBERS:
            return {f.name: f for f in (*self.lead_fields, *self.program_member_fields)}
        return {f.name: f for f in self.custom_object(custom_object_name).fields}

    def dedupe_fields(
        self, object_type: ObjectType, custom_object_name: str | None = None
    ) -> tuple[str, ...]:
        """A custom object's dedupe fields (every row must fill them); other objects have none here."""
        if object_type is ObjectType.CUSTOM_OBJECTS:
            return self.custom_object(custom_object_name).dedupe_fields
        return ()

    def check_lookup_field(self, name: str) -> None:
        """Refuse a leads ``lookupField`` that is not a lead field (1006) or cannot be one (1011):
        the documented standard lookup fields, and custom string, email and integer fields."""
        found = {f.name: f for f in self.lead_fields}.get(name)
        if found is None:
            raise SandboxError("1006", f"Lookup field '{name}' not found")
        custom = name not in STANDARD_LEAD_FIELD_NAMES and found.data_type in CUSTOM_LOOKUP_FIELD_TYPES
        if name not in LEAD_LOOKUP_FIELDS and not custom:
            raise SandboxError("1011", f"Field '{name}' cannot be used as lookup field")

    def describe(self, object_type: ObjectType, custom_object_name: str | None = None) -> dict[str, Any]:
        """The ``result[0]`` of the object's describe call: the saved answer where a schema gave
        one, otherwise built from the fields."""
        obj = self.custom_object(custom_object_name) if object_type is ObjectType.CUSTOM_OBJECTS else None
        key = object_type.value if obj is None else f"{object_type.value}/{obj.api_name}"
        saved = self.answers.get(key)
        if saved is not None:
            return copy.deepcopy(dict(saved))
        if object_type is ObjectType.LEADS:
            names = {f.name for f in self.lead_fields}
            return {
                "name": "API Lead",
                "searchableFields": [[n] for n in LEAD_LOOKUP_FIELDS if n in names],
                "fields": [f.describe() for f in self.lead_fields],
            }
        if object_type is ObjectType.PROGRAM_MEMBERS:
            return {
                "name": "API Program Member",
                "description": "API Program Member Map",
                "createdAt": _STAMP,
                "updatedAt": _STAMP,
                "dedupeFields": list(self.program_member_dedupe_fields),
                "searchableFields": [list(self.program_member_dedupe_fields), ["leadId"]],
                "fields": [f.describe() for f in self.program_member_fields],
            }
        assert obj is not None
        return {
            "apiName": obj.api_name,
            "displayName": obj.display_name,
            "pluralName": obj.plural_name or obj.display_name + "s",
            "description": obj.description,
            "createdAt": _STAMP,
            "updatedAt": _STAMP,
            "idField": obj.id_field,
            "dedupeFields": list(obj.dedupe_fields),
            "searchableFields": [list(obj.dedupe_fields), [obj.id_field]],
            "relationships": [dict(r) for r in obj.relationships],
            "fields": [f.describe() for f in obj.fields],
            "state": "approved",
            "status": "approved",
            "version": "approved",
        }


# ---- value checks -----------------------------------------------------------------------------

# The values each field type takes, as Adobe's "Field Types" page lists them. Where Adobe's bulk
# import pages show no example of a bad value (every type but integer and email), the sandbox still
# fails the row: it is strict where the docs are silent, so that a client passing here passes there.
# Digits are ASCII digits.
_INT_RE = re.compile(r"[+-]?[0-9]+")
_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_URL_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")
_EMAIL_RE = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[A-Za-z]{2,}$")
# Dates and times: Adobe gives W3C format (ISO 8601), i.e. the W3C date-time profile
# (https://www.w3.org/TR/NOTE-datetime) and its six levels: YYYY, YYYY-MM, YYYY-MM-DD,
# YYYY-MM-DDThh:mmTZD, YYYY-MM-DDThh:mm:ssTZD, YYYY-MM-DDThh:mm:ss.sTZD, where TZD is Z, +hh:mm or
# -hh:mm. Adobe calls the offset best practice, not a must (ISO 8601 has local times too), so a time
# without one is taken. No other form is (a space for the T, a comma before the fraction, an offset
# without its colon or without its minutes).
_W3C_RE = re.compile(
    r"(?P<year>[0-9]{4})(?:-(?P<month>[0-9]{2})(?:-(?P<day>[0-9]{2})"
    r"(?:T(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})(?::(?P<second>[0-9]{2})(?:\.[0-9]+)?)?"
    r"(?:Z|(?P<sign>[+-])(?P<off_hours>[0-9]{2}):(?P<off_minutes>[0-9]{2}))?)?)?)?"
)
# The UTC offsets in use run from -12:00 to +14:00, in minutes.
OFFSET_MINUTES = (-12 * 60, 14 * 60)
# Adobe's field types page: integer, score and percent fields take whole numbers.
WHOLE_NUMBER_TYPES = ("integer", "score", "percent")
TEXT_AREA_BYTES = 30_000  # a text area field holds up to 30,000 bytes
STRING_LENGTH = 255  # a string field, when describe gives no length


def _days_in_month(year: int, month: int) -> int:
    """The Gregorian calendar's days in a month (a leap year: divisible by 4, not by 100 unless by 400)."""
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _w3c_datetime(value: str, *, date_only: bool) -> bool:
    """Whether ``value`` is a W3C date-time of real calendar parts (``date_only``: a complete date
    and nothing more, as date fields take)."""
    found = _W3C_RE.fullmatch(value)
    if found is None:
        return False
    parts = {k: int(v) for k, v in found.groupdict().items() if v is not None and k != "sign"}
    if date_only and ("day" not in parts or "hour" in parts):
        return False
    if "month" in parts and not 1 <= parts["month"] <= 12:
        return False
    if "day" in parts and not 1 <= parts["day"] <= _days_in_month(parts["year"], parts["month"]):
        return False
    if parts.get("hour", 0) > 23 or parts.get("minute", 0) > 59 or parts.get("second", 0) > 59:
        return False
    if found["sign"] is not None:
        if parts["off_minutes"] > 59:
            return False
        offset = parts["off_hours"] * 60 + parts["off_minutes"]
        low, high = OFFSET_MINUTES
        if not low <= (-offset if found["sign"] == "-" else offset) <= high:
            return False
    return True


def _fits(kind: str, value: str) -> bool:
    value = value.strip()
    if kind in WHOLE_NUMBER_TYPES:
        return bool(_INT_RE.fullmatch(value)) and (kind != "integer" or -(2**31) <= int(value) < 2**31)
    if kind in ("float", "currency"):
        return bool(_NUMBER_RE.fullmatch(value))
    if kind == "boolean":
        return value.lower() in ("true", "false")
    if kind in ("date", "datetime"):
        return _w3c_datetime(value, date_only=kind == "date")
    if kind == "url":
        return bool(_URL_RE.fullmatch(value))
    return True


def value_error(spec: FieldSpec, value: str) -> str | None:
    """Marketo's failure reason for a value of the wrong type or length, or None when it fits."""
    if value == "":
        return None
    kind = spec.data_type
    if not _fits(kind, value):
        return f"Invalid data type in field {spec.display_name}"
    if kind == "text":
        too_long = len(value.encode("utf-8")) > TEXT_AREA_BYTES
    elif kind == "string":
        too_long = len(value) > (spec.length or STRING_LENGTH)
    else:
        too_long = spec.length is not None and len(value) > spec.length
    return f"Value too long for field {spec.display_name}" if too_long else None


def value_warning(spec: FieldSpec, value: str) -> str | None:
    """Marketo's warning for a value it imports but flags (an invalid email address)."""
    if spec.data_type == "email" and value and not _EMAIL_RE.match(value.strip()):
        return "Invalid email address"
    return None
