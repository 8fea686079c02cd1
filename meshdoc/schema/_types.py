"""The parts of a schema: value and child properties, marks, element types.

Plain frozen data with no behaviour beyond checking itself; `MeshSchema` (`_schema`) puts them
together, and `SchemaView` is what the checks, the validator and the JSON Schema export read
from a schema, so none of them imports `MeshSchema` back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from .._exceptions import SchemaDefinitionError

__all__ = [
    "DEFAULT_MARKS",
    "ChildProperty",
    "ElementType",
    "MarkType",
    "SchemaView",
    "ValueProperty",
    "ValueType",
    "property_from_dict",
    "value_matches",
]

ValueType = Literal["string", "number", "boolean", "null"]
_VALUE_TYPES = ("string", "number", "boolean", "null")
_RESERVED = ("$id", "$text")


def value_matches(value: Any, type_: str) -> bool:
    """Whether a JSON value has the declared type (booleans are not numbers)."""
    if type_ == "string":
        return isinstance(value, str)
    if type_ == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if type_ == "boolean":
        return isinstance(value, bool)
    return value is None


@dataclass(frozen=True)
class ValueProperty:
    """An attribute holding one JSON scalar.

    Args:
        name: attribute name (not ``$id``, which meshdoc owns).
        type: ``"string"``, ``"number"``, ``"boolean"`` or ``"null"``.
        enum: the only values allowed, if given.
        required: whether every element of this type must carry it.
        description: shown to LLMs in the exported JSON Schema.
    """

    name: str
    type: ValueType = "string"
    enum: list[Any] | None = None
    required: bool = False
    description: str | None = None

    def __post_init__(self) -> None:
        if not self.name or self.name in _RESERVED or self.name.startswith("$"):
            raise SchemaDefinitionError(f"attribute name {self.name!r} is reserved or empty")
        if self.type not in _VALUE_TYPES:
            raise SchemaDefinitionError(
                f"attribute {self.name!r}: type {self.type!r} is not one of {_VALUE_TYPES}"
            )
        if self.enum is not None:
            if not self.enum:
                raise SchemaDefinitionError(f"attribute {self.name!r}: enum is empty")
            bad = [v for v in self.enum if not value_matches(v, self.type)]
            if bad:
                raise SchemaDefinitionError(
                    f"attribute {self.name!r}: enum values {bad!r} are not of type {self.type}"
                )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "value",
            "name": self.name,
            "type": self.type,
            "enum": list(self.enum) if self.enum is not None else None,
            "required": self.required,
            "description": self.description,
        }


@dataclass(frozen=True)
class ChildProperty:
    """The children an element may hold, stored under `name` in the JSON shape.

    Args:
        name: the JSON key the children list is written under (usually ``"children"``).
        child_tag_names: element tags allowed as children.
        ordered: if true, children must come grouped in the order of `child_tag_names`
            (every ``title`` before any ``section``…).
        description: shown to LLMs in the exported JSON Schema.
    """

    name: str
    child_tag_names: list[str] = field(default_factory=list)
    ordered: bool = False
    description: str | None = None

    def __post_init__(self) -> None:
        if not self.name or self.name.startswith("$"):
            raise SchemaDefinitionError(f"child property name {self.name!r} is reserved or empty")

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "children",
            "name": self.name,
            "child_tag_names": list(self.child_tag_names),
            "ordered": self.ordered,
            "description": self.description,
        }


@dataclass(frozen=True)
class MarkType:
    """A text mark (bold, link…) as y-prosemirror stores it: ``{name: {attr: value}}``."""

    name: str
    properties: list[ValueProperty] = field(default_factory=list)
    description: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "properties": [p.to_dict() for p in self.properties],
            "description": self.description,
        }


DEFAULT_MARKS: tuple[MarkType, ...] = (
    MarkType("bold"),
    MarkType("italic"),
    MarkType("underline"),
    MarkType("strike"),
    MarkType("code"),
    MarkType(
        "link",
        [
            ValueProperty("href", required=True),
            ValueProperty("target"),
            ValueProperty("rel"),
            ValueProperty("class"),
        ],
    ),
)


@dataclass(frozen=True)
class ElementType:
    """One element tag: its attributes, its children and whether it holds rich text.

    Args:
        tag_name: the XML tag (ProseMirror node name when bound to an editor).
        properties: `ValueProperty` attributes and at most one `ChildProperty`.
        description: shown to LLMs in the exported JSON Schema.
        rich_text: its children may be text runs (plus the inline tags its
            `ChildProperty` allows, e.g. ``hardBreak``), as a ProseMirror textblock.
    """

    tag_name: str
    properties: list[ValueProperty | ChildProperty] = field(default_factory=list)
    description: str | None = None
    rich_text: bool = False

    def __post_init__(self) -> None:
        if not self.tag_name or self.tag_name.startswith("$"):
            raise SchemaDefinitionError(f"tag name {self.tag_name!r} is reserved or empty")
        names = [p.name for p in self.properties]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SchemaDefinitionError(f"element {self.tag_name!r}: duplicate properties {dupes}")
        if sum(isinstance(p, ChildProperty) for p in self.properties) > 1:
            raise SchemaDefinitionError(
                f"element {self.tag_name!r}: at most one ChildProperty is allowed"
            )

    @property
    def attributes(self) -> dict[str, ValueProperty]:
        """The value properties by name."""
        return {p.name: p for p in self.properties if isinstance(p, ValueProperty)}

    @property
    def child_property(self) -> ChildProperty | None:
        """The child property, if this element may hold children."""
        for p in self.properties:
            if isinstance(p, ChildProperty):
                return p
        return None

    @property
    def children_key(self) -> str:
        """The JSON key of this element's children."""
        child = self.child_property
        return child.name if child is not None else "children"

    @property
    def child_tags(self) -> list[str]:
        child = self.child_property
        return list(child.child_tag_names) if child is not None else []

    def to_dict(self) -> dict[str, Any]:
        return {
            "tag_name": self.tag_name,
            "description": self.description,
            "rich_text": self.rich_text,
            "properties": [p.to_dict() for p in self.properties],
        }


def property_from_dict(data: dict[str, Any]) -> ValueProperty | ChildProperty:
    kind = data.get("kind")
    if kind == "value":
        return ValueProperty(
            data["name"],
            type=data.get("type", "string"),
            enum=data.get("enum"),
            required=bool(data.get("required", False)),
            description=data.get("description"),
        )
    if kind == "children":
        return ChildProperty(
            data["name"],
            list(data.get("child_tag_names", [])),
            ordered=bool(data.get("ordered", False)),
            description=data.get("description"),
        )
    raise SchemaDefinitionError(f"property kind {kind!r} is neither 'value' nor 'children'")


class SchemaView(Protocol):
    """What reading a schema needs: its root, its element types and marks, looked up by name."""

    root_tag_name: str
    elements: list[ElementType]
    marks: list[MarkType]

    @property
    def root(self) -> ElementType: ...

    def element(self, tag_name: str) -> ElementType | None: ...

    def mark(self, name: str) -> MarkType | None: ...
