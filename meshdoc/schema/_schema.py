"""Schema definitions: which elements exist, their attributes, and which children they hold.

The names follow the MeshAgent SDK (`MeshSchema`, `ElementType`, `ValueProperty`,
`ChildProperty`) so code written for it reads the same here. A schema is plain
data: it dumps to and loads from a JSON-compatible dict so it can be stored
next to the documents it types.

```py
schema = MeshSchema(
    "doc",
    elements=[
        ElementType("doc", properties=[ChildProperty("children", ["p"])]),
        ElementType("p", properties=[ChildProperty("children", ["hardBreak"])], rich_text=True),
        ElementType("hardBreak"),
    ],
)
assert MeshSchema.from_dict(schema.to_dict()) == schema
```
"""

from __future__ import annotations

from typing import Any

from .._exceptions import SchemaDefinitionError
from ._json_schema import schema_to_json_schema
from ._suggestion import SUGGESTION_MARKS
from ._types import (
    DEFAULT_MARKS,
    ElementType,
    MarkType,
    property_from_dict,
)
from ._validate import Validatable, Violation, validate_document

__all__ = ["MeshSchema"]


class MeshSchema:
    """The element types of a document and its root tag.

    Args:
        root_tag_name: tag of the root element (the document's `XmlFragment`).
        elements: every `ElementType`, the root's included.
        marks: the text marks rich text may carry (default: bold, italic,
            underline, strike, code, link).

    Raises:
        SchemaDefinitionError: duplicate tags, a missing root, or a child tag never declared.
    """

    def __init__(
        self,
        root_tag_name: str,
        elements: list[ElementType],
        *,
        marks: list[MarkType] | tuple[MarkType, ...] = DEFAULT_MARKS,
    ) -> None:
        self.root_tag_name = root_tag_name
        self.elements = list(elements)
        self.marks = list(marks)
        self._by_tag: dict[str, ElementType] = {}
        for element in self.elements:
            if element.tag_name in self._by_tag:
                raise SchemaDefinitionError(f"element {element.tag_name!r} is declared twice")
            self._by_tag[element.tag_name] = element
        if root_tag_name not in self._by_tag:
            raise SchemaDefinitionError(f"root tag {root_tag_name!r} has no ElementType")
        for element in self.elements:
            unknown = [t for t in element.child_tags if t not in self._by_tag]
            if unknown:
                raise SchemaDefinitionError(
                    f"element {element.tag_name!r} allows undeclared child tags {unknown}"
                )
        self._marks = {m.name: m for m in self.marks}
        if len(self._marks) != len(self.marks):
            raise SchemaDefinitionError("a mark is declared twice")
        reserved = sorted(set(self._marks) & set(SUGGESTION_MARKS))
        if reserved:
            raise SchemaDefinitionError(f"marks {reserved} are built in (suggestions)")

    def __repr__(self) -> str:
        return f"MeshSchema({self.root_tag_name!r}, elements=[{len(self.elements)} types])"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MeshSchema) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self.root_tag_name)

    @property
    def root(self) -> ElementType:
        """The root element type."""
        return self._by_tag[self.root_tag_name]

    def element(self, tag_name: str) -> ElementType | None:
        """The `ElementType` for a tag, or None if the tag is unknown."""
        return self._by_tag.get(tag_name)

    def mark(self, name: str) -> MarkType | None:
        """The `MarkType` for a mark name, or None if unknown.

        The suggestion marks (``suggestion_insert``, ``suggestion_delete``) are known to
        every schema without being declared: any rich text may carry a suggestion.
        """
        return self._marks.get(name) or SUGGESTION_MARKS.get(name)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible dict, loaded back by `MeshSchema.from_dict`."""
        return {
            "root_tag_name": self.root_tag_name,
            "elements": [e.to_dict() for e in self.elements],
            "marks": [m.to_dict() for m in self.marks],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MeshSchema:
        """Load a schema written by `to_dict`.

        Raises:
            SchemaDefinitionError: the dict is not a schema.
        """
        try:
            elements = [
                ElementType(
                    e["tag_name"],
                    properties=[property_from_dict(p) for p in e.get("properties", [])],
                    description=e.get("description"),
                    rich_text=bool(e.get("rich_text", False)),
                )
                for e in data["elements"]
            ]
            marks_data = data.get("marks")
            marks = (
                DEFAULT_MARKS
                if marks_data is None
                else [
                    MarkType(
                        m["name"],
                        [property_from_dict(p) for p in m.get("properties", [])],  # type: ignore[misc]
                        description=m.get("description"),
                    )
                    for m in marks_data
                ]
            )
            return cls(data["root_tag_name"], elements, marks=marks)
        except (KeyError, TypeError, AttributeError) as exc:
            raise SchemaDefinitionError(f"not a schema dict: {exc!r}") from exc

    def to_json(self, *, suggestions: bool = False) -> dict[str, Any]:
        """A strict JSON Schema of the document's JSON shape (LLM structured-output ready).

        Every object has ``additionalProperties: false`` and lists all its
        properties in ``required``; optional values are nullable; each element
        type is one entry of ``$defs``.

        With `suggestions`, it also describes pending suggestions: the suggestion marks on
        runs and an optional ``$suggestion`` key on every element. That key is the one
        property not listed in ``required`` (`to_json` writes it only on suggested
        elements), so this form validates any document's JSON but is not for strict
        structured output; the default form validates documents without suggestions.
        """
        return schema_to_json_schema(self, suggestions=suggestions)

    def validate(self, document: Validatable) -> list[Violation]:
        """Every place where `document` breaks this schema; never modifies the document."""
        return validate_document(self, document)
