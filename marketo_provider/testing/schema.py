"""A team's own fields: the describe answers saved from their Marketo instance, read into a :class:`Schema`.

The schema file is JSON, an object with any of three keys, each holding what Marketo answered::

    {
      "leads": <GET /rest/v1/leads/describe2.json (or /rest/v1/leads/describe.json)>,
      "program_members": <GET /rest/v1/programs/members/describe.json>,
      "custom_objects": [<GET /rest/v1/customobjects/{apiName}/describe.json>, ...]
    }

Each answer may be saved whole (``requestId``, ``success``, ``result``), as its ``result`` list,
or as the one ``result`` entry; ``custom_objects`` may also be an object keyed by API name. A key
that is given replaces that part of the built-in catalogue whole; a key left out keeps it.

Problems are :class:`SchemaError`, whose message names the file, the place in it and what to fix.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union

from marketo_provider.testing.catalog import (
    LENGTH_TYPES,
    PROGRAM_MEMBER_DEDUPE_FIELDS,
    CustomObjectType,
    FieldSpec,
    Schema,
)
from marketo_provider.testing.spec import ObjectType

SchemaSource = Union[str, "os.PathLike[str]", Mapping[str, Any], Schema]

# A schema file holds a few describe answers: a few MB at most. Larger files, and JSON nested
# deeper than a describe answer ever is, are refused before they cost memory or the stack.
MAX_SCHEMA_BYTES = 32 * 1024 * 1024
MAX_SCHEMA_DEPTH = 32

KEYS = (ObjectType.LEADS.value, ObjectType.PROGRAM_MEMBERS.value, ObjectType.CUSTOM_OBJECTS.value)
_KEYS_TEXT = "leads, program_members and custom_objects"


class SchemaError(ValueError):
    """A schema the sandbox cannot use; the message says where and what to fix."""


def load_schema(source: SchemaSource) -> Schema:
    """A :class:`Schema` from a schema file's path, its parsed JSON, or a Schema (returned as is)."""
    if isinstance(source, Schema):
        return source
    if isinstance(source, Mapping):
        return read_schema(source, "schema")
    path = Path(source)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_SCHEMA_BYTES + 1)
        if len(raw) > MAX_SCHEMA_BYTES:
            raise SchemaError(
                f"schema file {path} is larger than {MAX_SCHEMA_BYTES:,} bytes; a schema file holds a few "
                "describe answers (leads, program_members, custom_objects), a few MB at most"
            )
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise SchemaError(f"schema file {path} does not exist") from None
    except UnicodeDecodeError as exc:
        raise SchemaError(f"schema file {path} is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise SchemaError(f"schema file {path} cannot be read: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{path} is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except RecursionError:
        data = None  # nested deeper than Python's stack: refused below as too deep
        depth = MAX_SCHEMA_DEPTH + 1
    else:
        depth = _depth(data)
    if depth > MAX_SCHEMA_DEPTH:
        raise SchemaError(
            f"{path} nests arrays and objects more than {MAX_SCHEMA_DEPTH} deep; describe answers nest a few levels"
        )
    return read_schema(data, str(path))


def _depth(data: Any) -> int:
    """How deep arrays and objects nest in parsed JSON (without recursion)."""
    deepest = 0
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            deepest = max(deepest, depth)
            if depth <= MAX_SCHEMA_DEPTH:
                stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))
    return deepest


def read_schema(data: Any, source: str = "schema") -> Schema:
    """Check the parsed schema file ``data`` (``source`` names it in messages) and read its fields."""
    if not isinstance(data, Mapping):
        raise SchemaError(
            f"{source}: must be a JSON object with the keys {_KEYS_TEXT} (any of them), not {_kind(data)}"
        )
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise SchemaError(
            f"{source}: unknown key(s) {', '.join(repr(k) for k in unknown)}; the keys are {_KEYS_TEXT}"
        )
    if not data:
        raise SchemaError(f"{source}: is empty; give at least one of {_KEYS_TEXT}")
    answers: dict[str, Mapping[str, Any]] = {}
    lead_fields = program_member_fields = None
    program_member_dedupe = PROGRAM_MEMBER_DEDUPE_FIELDS
    custom_objects = None
    if "leads" in data:
        lead_fields, saved = _leads(data["leads"], f"{source}, leads")
        if saved is not None:
            answers[ObjectType.LEADS.value] = saved
    if "program_members" in data:
        entry = _one_entry(data["program_members"], f"{source}, program_members")
        where = f"{source}, program_members: result[0]"
        program_member_fields = _fields(entry.get("fields"), where + ".fields")
        if "dedupeFields" in entry:
            program_member_dedupe = _names(entry["dedupeFields"], where + ".dedupeFields")
        answers[ObjectType.PROGRAM_MEMBERS.value] = entry
    if "custom_objects" in data:
        custom_objects = _custom_objects(data["custom_objects"], f"{source}, custom_objects")
        for obj, entry in custom_objects:
            answers[f"{ObjectType.CUSTOM_OBJECTS.value}/{obj.api_name}"] = entry
    return Schema(
        lead_fields=lead_fields,
        program_member_fields=program_member_fields,
        program_member_dedupe_fields=program_member_dedupe,
        custom_objects=None if custom_objects is None else tuple(obj for obj, _ in custom_objects),
        answers=answers,
        source=source,
    )


# ---- one saved answer -----------------------------------------------------------------------------


def _kind(value: Any) -> str:
    """A JSON value's kind, for messages."""
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "null"


def _result(answer: Any, where: str) -> list[Any]:
    """The ``result`` list of a saved answer, whichever way it was saved."""
    if isinstance(answer, Mapping) and ({"result", "success", "errors", "requestId"} & set(answer)):
        if answer.get("success") is False or "result" not in answer:
            errors = answer.get("errors")
            first = (
                errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], Mapping) else {}
            )
            raise SchemaError(
                f"{where}: the saved answer is Marketo's error {first.get('code', '(no code)')} "
                f"({first.get('message', 'no message')}), not a describe answer; call describe again "
                "with a valid access token and save its answer"
            )
        answer = answer["result"]
    if isinstance(answer, Mapping):
        return [answer]
    if isinstance(answer, list):
        return answer
    raise SchemaError(
        f"{where}: expected a describe answer (the JSON Marketo sent, or its 'result'), not {_kind(answer)}"
    )


def _one_entry(answer: Any, where: str) -> Mapping[str, Any]:
    result = _result(answer, where)
    if len(result) != 1 or not isinstance(result[0], Mapping) or "fields" not in result[0]:
        raise SchemaError(
            f"{where}: expected one describe result with a 'fields' list, found {len(result)} "
            f"result entr{'y' if len(result) == 1 else 'ies'}"
            + ("" if len(result) != 1 else " without 'fields'")
        )
    return result[0]


def _leads(answer: Any, where: str) -> tuple[tuple[FieldSpec, ...], Mapping[str, Any] | None]:
    """The lead fields of a describe2.json answer (kept to serve back) or a describe.json one (its
    fields with a REST name; the sandbox serves describe2 only, so that answer is rebuilt)."""
    result = _result(answer, where)
    if len(result) == 1 and isinstance(result[0], Mapping) and "fields" in result[0]:
        return _fields(result[0]["fields"], f"{where}: result[0].fields"), result[0]
    if result and all(isinstance(e, Mapping) and ("rest" in e or "soap" in e) for e in result):
        found = [_describe_v1_field(e, f"{where}: result[{i}]") for i, e in enumerate(result)]
        fields = tuple(f for f in found if f is not None)
        if not fields:
            raise SchemaError(f"{where}: no field has a REST name ('rest': {{'name': ...}})")
        _no_repeats(fields, f"{where}: result")
        return fields, None
    raise SchemaError(
        f"{where}: not a lead describe answer; save the answer of GET /rest/v1/leads/describe2.json "
        "(one result with 'fields') or of GET /rest/v1/leads/describe.json (a result list of fields "
        "with 'rest' names)"
    )


def _custom_objects(value: Any, where: str) -> list[tuple[CustomObjectType, Mapping[str, Any]]]:
    if isinstance(value, Mapping) and ({"result", "success", "errors", "fields"} & set(value)):
        items = [(where, None, value)]  # one answer on its own
    elif isinstance(value, Mapping):
        items = [(f"{where}[{json.dumps(k)}]", k, v) for k, v in value.items()]
    elif isinstance(value, list):
        items = [(f"{where}[{i}]", None, v) for i, v in enumerate(value)]
    else:
        raise SchemaError(
            f"{where}: expected a list of custom object describe answers (or an object of them by "
            f"API name), not {_kind(value)}"
        )
    objects: list[tuple[CustomObjectType, Mapping[str, Any]]] = []
    seen: set[str] = set()
    for item_where, key, answer in items:
        obj, entry = _custom_object(answer, item_where)
        if key is not None and key != obj.api_name:
            raise SchemaError(f"{item_where}: describes '{obj.api_name}', not '{key}'")
        if obj.api_name in seen:
            raise SchemaError(f"{item_where}: '{obj.api_name}' is described twice")
        seen.add(obj.api_name)
        objects.append((obj, entry))
    return objects


def _custom_object(answer: Any, where: str) -> tuple[CustomObjectType, Mapping[str, Any]]:
    entry = _one_entry(answer, where)
    where = f"{where}: result[0]"
    api_name = entry.get("apiName", entry.get("name"))
    if not isinstance(api_name, str) or not api_name:
        raise SchemaError(f"{where}: has no 'apiName' (the custom object's API name, e.g. car_c)")
    fields = _fields(entry["fields"], f"{where}.fields")
    dedupe = _names(entry.get("dedupeFields"), f"{where}.dedupeFields")
    if not dedupe:
        raise SchemaError(f"{where}.dedupeFields: '{api_name}' needs at least one dedupe field")
    names = {f.name for f in fields}
    missing = [d for d in dedupe if d not in names]
    if missing:
        raise SchemaError(f"{where}.dedupeFields: {', '.join(missing)} not among '{api_name}' fields")
    relationships = entry.get("relationships", [])
    if not isinstance(relationships, list) or not all(isinstance(r, Mapping) for r in relationships):
        raise SchemaError(f"{where}.relationships: expected a list of objects")
    display = entry.get("displayName", api_name)
    obj = CustomObjectType(
        api_name=api_name,
        display_name=display if isinstance(display, str) else api_name,
        fields=fields,
        dedupe_fields=dedupe,
        plural_name=str(entry.get("pluralName") or ""),
        description=str(entry.get("description") or ""),
        id_field=str(entry.get("idField") or "marketoGUID"),
        relationships=tuple(dict(r) for r in relationships),
    )
    return obj, entry


# ---- fields ---------------------------------------------------------------------------------------


def _fields(entries: Any, where: str) -> tuple[FieldSpec, ...]:
    if not isinstance(entries, list) or not entries:
        raise SchemaError(f"{where}: expected a non-empty list of fields, found {_kind(entries)}")
    fields = tuple(_field(e, f"{where}[{i}]") for i, e in enumerate(entries))
    _no_repeats(fields, where)
    return fields


def _field(entry: Any, where: str) -> FieldSpec:
    """A field of a describe2, program member or custom object describe answer."""
    if not isinstance(entry, Mapping):
        raise SchemaError(f"{where}: expected a field object, not {_kind(entry)}")
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise SchemaError(f"{where}: has no 'name' (the field's REST API name)")
    return _field_spec(entry, name, entry.get("updateable", True), f"{where} ('{name}')")


def _describe_v1_field(entry: Mapping[str, Any], where: str) -> FieldSpec | None:
    """A field of a lead describe.json answer; None for one without a REST name (SOAP only)."""
    rest = entry.get("rest")
    if rest is None:
        return None
    if not isinstance(rest, Mapping) or not isinstance(rest.get("name"), str) or not rest["name"]:
        raise SchemaError(f"{where}.rest: has no 'name' (the field's REST API name)")
    read_only = rest.get("readOnly", False)
    if not isinstance(read_only, bool):
        raise SchemaError(f"{where}.rest.readOnly: expected true or false, not {_kind(read_only)}")
    return _field_spec(entry, rest["name"], not read_only, f"{where} ('{rest['name']}')")


def _field_spec(entry: Mapping[str, Any], name: str, updateable: Any, where: str) -> FieldSpec:
    data_type = entry.get("dataType")
    if not isinstance(data_type, str) or not data_type:
        raise SchemaError(f"{where}: has no 'dataType'")
    display = entry.get("displayName", name)
    if not isinstance(display, str):
        raise SchemaError(f"{where}.displayName: expected a string, not {_kind(display)}")
    length = entry.get("length")
    if length is not None and (isinstance(length, bool) or not isinstance(length, int) or length < 0):
        raise SchemaError(f"{where}.length: expected a whole number, not {json.dumps(length)}")
    crm_managed = entry.get("crmManaged", False)
    for key, value in (("updateable", updateable), ("crmManaged", crm_managed)):
        if not isinstance(value, bool):
            raise SchemaError(f"{where}.{key}: expected true or false, not {_kind(value)}")
    return FieldSpec(
        name=name,
        display_name=display,
        data_type=data_type,
        length=length if data_type in LENGTH_TYPES else None,
        updateable=updateable,
        crm_managed=crm_managed,
    )


def _names(value: Any, where: str) -> tuple[str, ...]:
    """Field names: a list of strings, or of lists of strings (compound keys), flattened."""
    if not isinstance(value, list):
        raise SchemaError(f"{where}: expected a list of field names, not {_kind(value)}")
    names: list[str] = []
    for item in value:
        for name in item if isinstance(item, list) else [item]:
            if not isinstance(name, str) or not name:
                raise SchemaError(f"{where}: expected field names, found {json.dumps(name)}")
            if name not in names:
                names.append(name)
    return tuple(names)


def _no_repeats(fields: tuple[FieldSpec, ...], where: str) -> None:
    seen: set[str] = set()
    for f in fields:
        if f.name in seen:
            raise SchemaError(f"{where}: field '{f.name}' is listed twice")
        seen.add(f.name)


__all__ = ["KEYS", "SchemaError", "SchemaSource", "load_schema", "read_schema"]
