"""Strict JSON Schema from Python type hints, and a check that a schema is strict.

OpenAI's strict function calling (and structured outputs) accept a subset of JSON
Schema: every object lists all its properties in `required` and sets
`additionalProperties: false`; optional values are spelled as a union with
`null`. Building the schema from the function's type hints keeps the tool's
signature, its documentation and what the model may send in one place.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from ._exceptions import ToolDefinitionError

__all__ = ["check_strict", "function_schema", "parse_docstring", "type_schema"]

_SCALARS: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into (description, {parameter: description}).

    The description is everything before the first section header (`Args:`,
    `Returns:`, `Raises:`…); parameter descriptions come from `Args:`, with
    indented continuation lines joined.
    """
    text = inspect.cleandoc(doc or "")
    description_lines: list[str] = []
    parameters: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    for line in text.splitlines():
        header = re.fullmatch(
            r"(Args|Arguments|Parameters|Returns|Raises|Example|Examples):\s*", line
        )
        if header:
            section = header.group(1)
            current = None
            continue
        if section is None:
            description_lines.append(line)
        elif section in ("Args", "Arguments", "Parameters"):
            match = re.fullmatch(r"\s{0,8}(\*{0,2}\w+)(?:\s*\([^)]*\))?:\s*(.*)", line)
            if match and not line.startswith(" " * 8):
                current = match.group(1).lstrip("*")
                parameters[current] = match.group(2).strip()
            elif current and line.strip():
                parameters[current] = f"{parameters[current]} {line.strip()}".strip()
    description = "\n".join(description_lines).strip()
    return description, parameters


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return schema
    if any(member.get("type") == "null" for member in schema.get("anyOf", [])):
        return schema
    if isinstance(kind, str) and set(schema) <= {"type", "description"}:
        return {**schema, "type": [kind, "null"]}
    if isinstance(kind, list) and "null" not in kind and set(schema) <= {"type", "description"}:
        return {**schema, "type": [*kind, "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def type_schema(annotation: Any, *, where: str = "value") -> dict[str, Any]:
    """The strict JSON Schema of one Python type (scalars, Literal, Enum, lists, TypedDict…).

    Raises:
        ToolDefinitionError: the type has no strict JSON Schema (`Any`, `dict[str, X]`…).
    """
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        inner, *extras = get_args(annotation)
        schema = type_schema(inner, where=where)
        text = next((extra for extra in extras if isinstance(extra, str)), None)
        return {**schema, "description": text} if text else schema
    if annotation is type(None) or annotation is None:
        return {"type": "null"}
    if annotation in _SCALARS:
        return {"type": _SCALARS[annotation]}
    if origin is Literal:
        values = list(get_args(annotation))
        kinds = sorted({_SCALARS.get(type(value), "null") for value in values})
        return {"type": kinds[0] if len(kinds) == 1 else kinds, "enum": values}
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        values = [member.value for member in annotation]
        kinds = sorted({_SCALARS.get(type(value), "null") for value in values})
        return {"type": kinds[0] if len(kinds) == 1 else kinds, "enum": values}
    if origin in (Union, types.UnionType):
        members = get_args(annotation)
        others = [member for member in members if member is not type(None)]
        schema = (
            type_schema(others[0], where=where)
            if len(others) == 1
            else {"anyOf": [type_schema(member, where=where) for member in others]}
        )
        return _nullable(schema) if len(others) < len(members) else schema
    if origin in (list, Sequence, tuple) or annotation in (list, tuple):
        args = get_args(annotation)
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            raise ToolDefinitionError(f"{where}: use tuple[X, ...] or list[X], not {annotation!r}")
        if not args:
            raise ToolDefinitionError(f"{where}: a list needs an item type, e.g. list[str]")
        return {"type": "array", "items": type_schema(args[0], where=f"{where}[]")}
    if typing.is_typeddict(annotation):
        hints = get_type_hints(annotation, include_extras=True)
        optional = getattr(annotation, "__optional_keys__", frozenset())
        properties = {}
        for key, hint in hints.items():
            schema = type_schema(hint, where=f"{where}.{key}")
            properties[key] = _nullable(schema) if key in optional else schema
        return _object(properties)
    if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
        hints = get_type_hints(annotation, include_extras=True)
        properties = {}
        for item in dataclasses.fields(annotation):
            schema = type_schema(hints[item.name], where=f"{where}.{item.name}")
            has_default = item.default is not dataclasses.MISSING or (
                item.default_factory is not dataclasses.MISSING
            )
            properties[item.name] = _nullable(schema) if has_default else schema
        return _object(properties)
    if origin in (dict, Mapping) or annotation in (dict, Any):
        raise ToolDefinitionError(
            f"{where}: {annotation!r} has no strict JSON Schema (free-form objects are not "
            "allowed in strict mode); use a TypedDict or a list of name/value pairs"
        )
    raise ToolDefinitionError(f"{where}: unsupported type {annotation!r}")


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def function_schema(
    function: Callable[..., Any], *, skip: Sequence[str] = ()
) -> tuple[str, dict[str, Any]]:
    """(description, strict input schema) of a typed function; `skip` names injected parameters.

    Parameters with a default become nullable: the model sends `null` to mean
    "use the default", since strict mode requires every property.
    """
    description, documented = parse_docstring(function.__doc__)
    hints = get_type_hints(function, include_extras=True)
    properties: dict[str, Any] = {}
    for parameter in inspect.signature(function).parameters.values():
        if parameter.name in skip:
            continue
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise ToolDefinitionError(
                f"{function.__name__}: *args/**kwargs cannot be described to a model",
                tool=function.__name__,
            )
        if parameter.name not in hints:
            raise ToolDefinitionError(
                f"{function.__name__}: parameter {parameter.name!r} needs a type hint",
                tool=function.__name__,
            )
        schema = type_schema(hints[parameter.name], where=f"{function.__name__}.{parameter.name}")
        if parameter.default is not parameter.empty:
            schema = _nullable(schema)
        text = documented.get(parameter.name)
        if parameter.default is not parameter.empty and parameter.default is not None:
            default = f"null means {parameter.default!r}"
            text = f"{text} ({default})" if text else default.capitalize()
        if text and "description" not in schema:
            schema = {**schema, "description": text}
        properties[parameter.name] = schema
    return description, _object(properties)


def check_strict(schema: Mapping[str, Any], *, where: str = "schema") -> None:
    """Raise `ToolDefinitionError` where `schema` breaks OpenAI's strict-mode rules.

    Checks what the endpoint would otherwise reject at request time: every
    object closes `additionalProperties` and requires all of its properties.
    """
    if schema.get("type") == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        if schema.get("additionalProperties") is not False:
            raise ToolDefinitionError(f"{where}: objects need additionalProperties: false")
        if sorted(schema.get("required", [])) != sorted(properties):
            raise ToolDefinitionError(f"{where}: every property must be listed in 'required'")
        for key, value in properties.items():
            check_strict(value, where=f"{where}.{key}")
    for key in ("items",):
        if isinstance(schema.get(key), Mapping):
            check_strict(schema[key], where=f"{where}[]")
    for key in ("anyOf", "allOf", "oneOf"):
        for index, member in enumerate(schema.get(key, [])):
            check_strict(member, where=f"{where}.{key}[{index}]")
    for group in ("$defs", "definitions"):
        for name, member in schema.get(group, {}).items():
            check_strict(member, where=f"{where}.{group}.{name}")
