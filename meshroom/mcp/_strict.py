"""MCP tool schemas as strict JSON Schema, and the model's arguments back in the server's terms.

MCP servers publish plain JSON Schema: optional properties, open objects, ``oneOf``,
defaults. Meshroom's toolkits speak OpenAI's strict function calling, which wants
every property required (optional ones nullable) and every object closed, so a
model constrained by the endpoint cannot send what the server would refuse.

`strict_schema` rewrites a schema that way when the meaning survives: an
optional property becomes a required one that may be null, an object with
properties is closed (the server never saw extra keys from us before, either),
``oneOf`` becomes ``anyOf`` and ``default`` goes (the server applies it when the
key is absent). `server_arguments` undoes it: a null the model sent for an
optional property is left out, so the server sees exactly what a call without it
looks like.

A schema with no strict equivalent (a free-form object, a map of arbitrary keys)
returns None; `McpToolkit` then takes the arguments as one JSON string and checks
them against the server's own schema before calling (see `json_argument_schema`).

The other way, meshroom's strict tools listed to MCP clients (`meshroom mcp`),
`optional_nulls` lets a client leave out what may be null, as MCP clients do
with optional arguments, and `with_nulls` fills those in before validation.
"""

from __future__ import annotations

import copy
import json
from typing import Any

__all__ = [
    "json_argument_schema",
    "optional_nulls",
    "server_arguments",
    "strict_schema",
    "with_nulls",
]

#: Keywords strict endpoints refuse; the server still applies them on its side.
_DROPPED = ("default", "$schema")


class _NotStrict(Exception):
    """The schema has a part with no strict equivalent."""


def strict_schema(schema: dict[str, Any]) -> dict[str, Any] | None:
    """A strict version of an MCP tool's input `schema`, or None when there is none."""
    source = copy.deepcopy(schema) if schema else {"type": "object", "properties": {}}
    if source.get("type") is None and "properties" in source:
        source["type"] = "object"
    if source.get("type") != "object":
        return None
    try:
        return _strict(source)
    except _NotStrict:
        return None


def _strict(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return schema
    out = {key: value for key, value in schema.items() if key not in _DROPPED}
    if "oneOf" in out:
        out["anyOf"] = out.pop("oneOf")
    is_object = out.get("type") == "object" or "properties" in out
    if is_object:
        properties = out.get("properties") or {}
        extra = out.get("additionalProperties")
        if "properties" not in out and extra is not False:
            raise _NotStrict("a free-form object")
        if isinstance(extra, dict) or "patternProperties" in out:
            raise _NotStrict("a map of arbitrary keys")
        required = set(out.get("required") or [])
        out["properties"] = {
            key: _strict(value) if key in required else _nullable(_strict(value))
            for key, value in properties.items()
        }
        out["required"] = list(properties)
        out["additionalProperties"] = False
    if isinstance(out.get("items"), dict):
        out["items"] = _strict(out["items"])
    for key in ("anyOf", "allOf"):
        if key in out:
            out[key] = [_strict(member) for member in out[key]]
    for group in ("$defs", "definitions"):
        if group in out:
            out[group] = {name: _strict(member) for name, member in out[group].items()}
    return out


def _nullable(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return schema
    kind = schema.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return schema
    if any(isinstance(m, dict) and m.get("type") == "null" for m in schema.get("anyOf", [])):
        return schema
    if isinstance(kind, str) and "enum" not in schema and kind not in ("object", "array"):
        return {**schema, "type": [kind, "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def server_arguments(arguments: Any, schema: dict[str, Any]) -> Any:
    """`arguments` the model sent for the strict form of `schema`, as the server expects them:
    the nulls standing for optional properties left out (recursively)."""
    return _strip(arguments, schema, schema)


def _strip(value: Any, schema: Any, root: dict[str, Any]) -> Any:
    schema = _resolve(schema, root)
    if not isinstance(schema, dict):
        return value
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        required = set(schema.get("required") or [])
        return {
            key: _strip(item, properties.get(key), root)
            for key, item in value.items()
            if not (item is None and key not in required)
        }
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_strip(item, schema["items"], root) for item in value]
    if value is not None:
        for member in schema.get("anyOf", schema.get("oneOf", [])):
            member = _resolve(member, root)
            if isinstance(member, dict) and member.get("type") != "null":
                return _strip(value, member, root) if isinstance(value, dict) else value
    return value


def _resolve(schema: Any, root: dict[str, Any]) -> Any:
    reference = schema.get("$ref") if isinstance(schema, dict) else None
    if not isinstance(reference, str) or not reference.startswith("#/"):
        return schema
    target: Any = root
    for part in reference[2:].split("/"):
        target = target.get(part) if isinstance(target, dict) else None
    return target if isinstance(target, dict) else schema


def json_argument_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The strict stand-in for a schema with no strict form: one string of JSON arguments."""
    return {
        "type": "object",
        "properties": {
            "arguments": {
                "type": "string",
                "description": "The arguments as a JSON object, matching this JSON Schema: "
                + json.dumps(schema, separators=(",", ":")),
            }
        },
        "required": ["arguments"],
        "additionalProperties": False,
    }


def optional_nulls(schema: dict[str, Any]) -> dict[str, Any]:
    """A tool's strict schema as MCP clients read it: a top-level property that may be
    null need not be sent (strict mode spells "optional" as "required, may be null";
    MCP clients leave optional arguments out)."""
    properties = schema.get("properties") or {}
    required = [key for key in schema.get("required", []) if not _admits_null(properties.get(key))]
    return {**schema, "required": required}


def with_nulls(schema: dict[str, Any], arguments: Any) -> Any:
    """`arguments` with the nullable properties an MCP client left out given as null."""
    if not isinstance(arguments, dict):
        return arguments
    properties = schema.get("properties") or {}
    missing = {
        key: None
        for key in schema.get("required", [])
        if key not in arguments and _admits_null(properties.get(key))
    }
    return {**arguments, **missing}


def _admits_null(schema: Any) -> bool:
    if not isinstance(schema, dict):
        return False
    kind = schema.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    return any(_admits_null(member) for member in schema.get("anyOf", []))
