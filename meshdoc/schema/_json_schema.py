"""Export a `MeshSchema` as strict JSON Schema (the shape `MeshDocument.to_json` writes).

Strict means what LLM structured-output APIs demand: every object says
``additionalProperties: false`` and lists *all* its properties in
``required``; an optional value is therefore present but nullable. Each
element type is one ``$defs`` entry so the children of an element refer to
their allowed tags with ``$ref`` (recursion included). Text runs live in
``$defs/$text``: a list of ``{"insert": str, "marks": [{name: attrs}]}``.

``suggestions=True`` adds what pending suggestions write (`_suggestion`): their two marks
and an optional ``$suggestion`` key on each element body (optional because only suggested
elements carry it, so that form is not strict).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._suggestion import SUGGESTION_ATTRIBUTE, SUGGESTION_MARKS, suggestion_json_schema

if TYPE_CHECKING:
    from ._types import ElementType, MarkType, SchemaView, ValueProperty

__all__ = ["schema_to_json_schema"]

TEXT_DEF = "$text"
RUN_DEF = "$run"


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/$defs/{name}"}


def _strict_object(properties: dict[str, Any], description: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "required": list(properties),
        "properties": properties,
    }
    if description:
        out["description"] = description
    return out


def _value_schema(prop: ValueProperty) -> dict[str, Any]:
    nullable = not prop.required and prop.type != "null"
    out: dict[str, Any] = {"type": [prop.type, "null"] if nullable else prop.type}
    if prop.enum is not None:
        out["enum"] = [*prop.enum, None] if nullable else list(prop.enum)
    if prop.description:
        out["description"] = prop.description
    return out


def _mark_schema(mark: MarkType) -> dict[str, Any]:
    attrs = _strict_object({p.name: _value_schema(p) for p in mark.properties})
    return _strict_object({mark.name: attrs}, mark.description)


def _body(
    schema: SchemaView, element: ElementType, *, with_id: bool, suggestions: bool = False
) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    if with_id:
        properties["$id"] = {
            "type": ["string", "null"],
            "description": "Stable element id; null for a new element (one is assigned).",
        }
    for prop in element.attributes.values():
        properties[prop.name] = _value_schema(prop)
    child = element.child_property
    if child is not None or element.rich_text:
        items = [_ref(tag) for tag in element.child_tags]
        if element.rich_text:
            items.insert(0, _ref(TEXT_DEF))
        children: dict[str, Any] = {"type": "array", "items": {"anyOf": items}}
        if child is not None and child.description:
            children["description"] = child.description
        if child is not None and child.ordered:
            order = ", ".join(child.child_tag_names)
            children["description"] = (
                children.get("description", "") + " "
            ).lstrip() + f"Children come grouped in this order: {order}."
        properties[element.children_key] = children
    out = _strict_object(properties, element.description)
    if with_id and suggestions:  # optional: only suggested elements carry it
        out["properties"] = {SUGGESTION_ATTRIBUTE: suggestion_json_schema(), **properties}
    return out


def schema_to_json_schema(schema: SchemaView, *, suggestions: bool = False) -> dict[str, Any]:
    """Build the strict JSON Schema of `schema`'s document JSON (see module docstring)."""
    defs: dict[str, Any] = {}
    for element in schema.elements:
        body = _body(schema, element, with_id=True, suggestions=suggestions)
        defs[element.tag_name] = _strict_object({element.tag_name: body})
    marks_list = list(schema.marks) + (list(SUGGESTION_MARKS.values()) if suggestions else [])
    mark_items = [_mark_schema(m) for m in marks_list]
    marks: dict[str, Any] = {"type": "array", "description": "Marks on this run of text."}
    marks["items"] = {"anyOf": mark_items} if mark_items else {"type": "null"}
    if not mark_items:
        marks["maxItems"] = 0
    defs[RUN_DEF] = _strict_object({"insert": {"type": "string"}, "marks": marks})
    defs[TEXT_DEF] = _strict_object(
        {"$text": {"type": "array", "items": _ref(RUN_DEF)}},
        "A run of rich text, as a list of formatted pieces.",
    )
    root = _strict_object({schema.root_tag_name: _body(schema, schema.root, with_id=False)})
    return {**root, "$defs": defs}
