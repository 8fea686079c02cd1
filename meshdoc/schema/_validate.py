"""Validate a whole document against a schema: list every violation, change nothing.

Content that arrives from other peers was never checked by our write path (a
browser editor, an older client, a concurrent merge of two valid edits can all
produce it). Validation walks the tree once and reports each problem with the
element's path and `$id`, so a person or an agent can repair it; it never
deletes anyone's data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from pycrdt import XmlElement, XmlFragment, XmlText

from .._yxml import ID, children, raw_attributes
from ._checks import (
    Problem,
    attribute_problems,
    child_problems,
    mark_problems,
    order_problems,
    text_problems,
)
from ._suggestion import SUGGESTION_ATTRIBUTE, suggestion_attribute_problems
from ._types import ElementType, SchemaView

__all__ = ["Validatable", "Violation", "validate_document"]


class Validatable(Protocol):
    """What validation reads of a document (a `MeshDocument`): its root attributes and tree."""

    @property
    def fragment(self) -> XmlFragment: ...

    def _root_attributes(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Violation:
    """One place where a document breaks its schema.

    Attributes:
        path: slash path of ``tag[index]`` steps from the root (``doc/section[1]/p[0]``).
        element_id: `$id` of the offending element (or of the parent, for child rules).
        rule: the rule's name, as in `SchemaError.rule` (plus ``missing-id`` and
            ``duplicate-id``).
        message: a sentence for people and LLMs.
        tag: the tag involved, if any.
        attribute: the attribute or mark involved, if any.
    """

    path: str
    element_id: str | None
    rule: str
    message: str
    tag: str | None = None
    attribute: str | None = None


class _Walker:
    def __init__(self, schema: SchemaView) -> None:
        self.schema = schema
        self.violations: list[Violation] = []
        self.seen_ids: set[str] = set()

    def add(self, problems: list[Problem], path: str, element_id: str | None) -> None:
        for rule, message, tag, attribute in problems:
            self.violations.append(Violation(path, element_id, rule, message, tag, attribute))

    def walk(
        self,
        node: XmlElement | XmlFragment,
        element: ElementType | None,
        path: str,
        element_id: str | None,
    ) -> None:
        tags: list[str] = []
        for i, child in enumerate(children(node)):
            if isinstance(child, XmlText):
                tags.append("$text")
                here = f"{path}/$text[{i}]"
                if element is not None:
                    self.add(list(text_problems(element)), here, element_id)
                for _content, attrs in child.diff():
                    if attrs:
                        self.add(list(mark_problems(self.schema, attrs)), here, element_id)
                continue
            tag = child.tag or ""
            tags.append(tag)
            here = f"{path}/{tag}[{i}]"
            attrs = raw_attributes(child)
            child_id = attrs.pop(ID, None)
            suggestion = attrs.pop(SUGGESTION_ATTRIBUTE, None)  # built in: any element
            if not isinstance(child_id, str):
                self.add([("missing-id", f"<{tag}> has no $id", tag, ID)], here, None)
                child_id = None
            elif child_id in self.seen_ids:
                self.add(
                    [("duplicate-id", f"$id {child_id!r} is used twice", tag, ID)], here, child_id
                )
            else:
                self.seen_ids.add(child_id)
            if element is not None:
                self.add(list(child_problems(self.schema, element, tag)), here, child_id)
            self.add(list(suggestion_attribute_problems(tag, suggestion)), here, child_id)
            child_type = self.schema.element(tag)
            if child_type is not None:
                self.add(list(attribute_problems(child_type, attrs, complete=True)), here, child_id)
            self.walk(child, child_type, here, child_id)
        if element is not None:
            self.add(list(order_problems(element, tags)), path, element_id)


def validate_document(schema: SchemaView, document: Validatable) -> list[Violation]:
    """Every violation of `schema` in `document`, in document order."""
    walker = _Walker(schema)
    root = schema.root
    root_path = schema.root_tag_name
    walker.add(
        list(attribute_problems(root, document._root_attributes(), complete=True)), root_path, None
    )
    walker.walk(document.fragment, root, root_path, None)
    return walker.violations
