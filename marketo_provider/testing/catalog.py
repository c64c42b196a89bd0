"""The sandbox's field catalogue: the fields of each object, the describe calls, and how values are checked."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from marketo_provider.testing.errors import SandboxError
from marketo_provider.testing.spec import LEAD_LOOKUP_FIELDS, ObjectType


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
    if data_type not in ("string", "email", "phone", "url", "text"):
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

LEAD_SEARCHABLE_FIELDS: tuple[tuple[str, ...], ...] = tuple((name,) for name in LEAD_LOOKUP_FIELDS)

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


def fields_for(
    object_type: ObjectType, custom_object: CustomObjectType | None = None
) -> dict[str, FieldSpec]:
    """The fields an import file of this object may name, by name."""
    if object_type is ObjectType.LEADS:
        return {f.name: f for f in LEAD_FIELDS}
    if object_type is ObjectType.PROGRAM_MEMBERS:
        return {f.name: f for f in (*LEAD_FIELDS, *PROGRAM_MEMBER_FIELDS)}
    assert custom_object is not None
    return {f.name: f for f in custom_object.fields}


_STAMP = "2024-01-15T10:00:00Z"


class Catalog:
    """The instance's objects: the standard lead and program member fields and the custom object
    types registered in it (``car_c`` to begin with). Answers the describe calls."""

    def __init__(self) -> None:
        self.custom_objects: dict[str, CustomObjectType] = {CAR_OBJECT.api_name: CAR_OBJECT}

    def register(self, obj: CustomObjectType) -> None:
        self.custom_objects[obj.api_name] = obj

    def custom_object(self, api_name: str | None) -> CustomObjectType:
        obj = self.custom_objects.get(api_name or "")
        if obj is None:
            raise SandboxError("1003", f"Custom object '{api_name}' not found")
        return obj

    def fields(self, object_type: ObjectType, custom_object_name: str | None = None) -> dict[str, FieldSpec]:
        """The fields an import file of this object may name, by name."""
        if object_type is ObjectType.CUSTOM_OBJECTS:
            return fields_for(object_type, self.custom_object(custom_object_name))
        return fields_for(object_type)

    def dedupe_fields(
        self, object_type: ObjectType, custom_object_name: str | None = None
    ) -> tuple[str, ...]:
        """A custom object's dedupe fields (every row must fill them); other objects have none here."""
        if object_type is ObjectType.CUSTOM_OBJECTS:
            return self.custom_object(custom_object_name).dedupe_fields
        return ()

    def describe(self, object_type: ObjectType, custom_object_name: str | None = None) -> dict[str, Any]:
        """The ``result[0]`` of the object's describe call."""
        if object_type is ObjectType.LEADS:
            return {
                "name": "API Lead",
                "searchableFields": [list(f) for f in LEAD_SEARCHABLE_FIELDS],
                "fields": [f.describe() for f in LEAD_FIELDS],
            }
        if object_type is ObjectType.PROGRAM_MEMBERS:
            return {
                "name": "API Program Member",
                "description": "API Program Member Map",
                "createdAt": _STAMP,
                "updatedAt": _STAMP,
                "dedupeFields": list(PROGRAM_MEMBER_DEDUPE_FIELDS),
                "searchableFields": [list(PROGRAM_MEMBER_DEDUPE_FIELDS), ["leadId"]],
                "fields": [f.describe() for f in PROGRAM_MEMBER_FIELDS],
            }
        obj = self.custom_object(custom_object_name)
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

_INT_RE = re.compile(r"^[+-]?\d+$")
_EMAIL_RE = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[A-Za-z]{2,}$")
_BOOLEANS = {"true", "false", "1", "0", "yes", "no", "t", "f", "y", "n"}


def value_error(spec: FieldSpec, value: str) -> str | None:
    """Marketo's failure reason for a value of the wrong type, or None when the value fits."""
    if value == "":
        return None
    kind = spec.data_type
    ok = True
    if kind == "integer":
        ok = bool(_INT_RE.match(value)) and -(2**31) <= int(value) < 2**31
    elif kind in ("float", "currency"):
        try:
            float(value)
        except ValueError:
            ok = False
    elif kind == "boolean":
        ok = value.strip().lower() in _BOOLEANS
    elif kind == "date":
        try:
            date.fromisoformat(value.strip())
        except ValueError:
            ok = False
    elif kind == "datetime":
        try:
            datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            ok = False
    if ok and spec.length is not None and len(value) > spec.length:
        return f"Value too long for field {spec.display_name}"
    return None if ok else f"Invalid data type in field {spec.display_name}"


def value_warning(spec: FieldSpec, value: str) -> str | None:
    """Marketo's warning for a value it imports but flags (an invalid email address)."""
    if spec.data_type == "email" and value and not _EMAIL_RE.match(value.strip()):
        return "Invalid email address"
    return None
