"""How a suggestion is stored, so that every schema accepts it and a Tiptap editor renders it.

A suggestion is content proposed but not yet agreed: text or elements inserted as a
proposal, or text and elements proposed for deletion (still there, marked). It lives in the
document itself, in the shapes y-prosemirror reads and writes, so a browser editor that
declares them (``examples/web/src/suggestions.js``) shows it and its resolution syncs like
any edit:

- on rich text, two marks: ``suggestion_insert`` and ``suggestion_delete``, each
  ``{"id", "author", "time"}`` (``time`` in milliseconds since the epoch, as JavaScript's
  ``Date.now()``);
- on an element, the attribute ``$suggestion`` = ``{"id", "author", "time", "kind"}`` with
  ``kind`` ``"insert"`` or ``"delete"``. It starts with ``$`` like ``$id``: meshdoc owns it,
  so it never collides with an attribute a schema declares.

They are built in: every `MeshSchema` allows them on any rich text and any element without
declaring them (a schema may not declare marks by these names), `validate` checks their
shape, and ``MeshSchema.to_json(suggestions=True)`` describes them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ._types import MarkType, ValueProperty

__all__ = [
    "DELETE_MARK",
    "INSERT_MARK",
    "SUGGESTION_ATTRIBUTE",
    "SUGGESTION_KINDS",
    "SUGGESTION_MARKS",
    "suggestion_attribute_problems",
    "suggestion_json_schema",
]

SUGGESTION_ATTRIBUTE = "$suggestion"
INSERT_MARK = "suggestion_insert"
DELETE_MARK = "suggestion_delete"
SUGGESTION_KINDS = ("insert", "delete")


def _mark(name: str, description: str) -> MarkType:
    return MarkType(
        name,
        [
            ValueProperty("id", required=True, description="The suggestion's id."),
            ValueProperty("author", required=True, description="Who suggested it."),
            ValueProperty(
                "time", type="number", required=True, description="When (ms since the epoch)."
            ),
        ],
        description=description,
    )


#: The marks every schema accepts on rich text, whether or not it declares them.
SUGGESTION_MARKS: dict[str, MarkType] = {
    INSERT_MARK: _mark(INSERT_MARK, "Text suggested for insertion, not yet accepted."),
    DELETE_MARK: _mark(DELETE_MARK, "Text suggested for deletion, not yet accepted."),
}


def suggestion_attribute_problems(
    tag: str, value: Any
) -> Iterator[tuple[str, str, str | None, str | None]]:
    """Problems of a ``$suggestion`` attribute's value on an element `tag` (rule ``suggestion``)."""
    if value is None:
        return
    fields = ("id", "author", "time", "kind")
    if (
        not isinstance(value, dict)
        or set(value) != set(fields)
        or not isinstance(value["id"], str)
        or not value["id"]
        or not isinstance(value["author"], str)
        or isinstance(value["time"], bool)
        or not isinstance(value["time"], (int, float))
        or value["kind"] not in SUGGESTION_KINDS
    ):
        yield (
            "suggestion",
            f"{SUGGESTION_ATTRIBUTE} of <{tag}> must be {{id, author, time, kind: insert|delete}},"
            f" got {value!r}",
            tag,
            SUGGESTION_ATTRIBUTE,
        )


def suggestion_json_schema() -> dict[str, Any]:
    """The JSON Schema of a ``$suggestion`` value (nullable: most elements carry none)."""
    return {
        "type": ["object", "null"],
        "additionalProperties": False,
        "required": ["id", "author", "time", "kind"],
        "properties": {
            "id": {"type": "string"},
            "author": {"type": "string"},
            "time": {"type": "number"},
            "kind": {"type": "string", "enum": list(SUGGESTION_KINDS)},
        },
        "description": "A pending suggestion on this element: inserted or deleted, not yet"
        " accepted.",
    }
