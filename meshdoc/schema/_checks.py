"""The schema rules, written once, used for refusing writes and for validating documents.

Each check yields `(rule, message, tag, attribute)` tuples instead of raising,
so `MeshSchema.validate` can list every violation while the write path
raises the first one as a `SchemaError` before touching the document.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from .._exceptions import SchemaError
from ._types import ElementType, SchemaView, value_matches

__all__ = [
    "Problem",
    "attribute_problems",
    "child_problems",
    "drop_absent",
    "mark_problems",
    "order_problems",
    "raise_first",
]

# y-prosemirror stores a mark that may overlap itself (one that does not exclude its own
# type, e.g. a comment) under "name--<8-char hash>", so two of them can cover one character.
_HASHED_MARK = re.compile(r"--[a-zA-Z0-9+/=]{8}$")

# rule, message, tag, attribute
Problem = tuple[str, str, str | None, str | None]


def _value_problem(tag: str, prop: Any, value: Any) -> Problem | None:
    if value is None and not prop.required and prop.type != "null":
        return None
    if not value_matches(value, prop.type):
        return (
            "type",
            f"attribute {prop.name!r} of <{tag}> must be {prop.type}, got {value!r}",
            tag,
            prop.name,
        )
    if prop.enum is not None and value not in prop.enum:
        return (
            "enum",
            f"attribute {prop.name!r} of <{tag}> must be one of {prop.enum!r}, got {value!r}",
            tag,
            prop.name,
        )
    return None


def attribute_problems(
    element: ElementType, attributes: dict[str, Any], *, complete: bool
) -> Iterator[Problem]:
    """Problems of `attributes` (no ``$id``) on an element of type `element`.

    `complete` means `attributes` is the whole set, so missing required ones count.
    """
    tag = element.tag_name
    declared = element.attributes
    for name, value in attributes.items():
        prop = declared.get(name)
        if prop is None:
            yield (
                "unknown-attribute",
                f"<{tag}> has no attribute {name!r} (declared: {sorted(declared)})",
                tag,
                name,
            )
            continue
        problem = _value_problem(tag, prop, value)
        if problem is not None:
            yield problem
    if complete:
        for name, prop in declared.items():
            missing = name not in attributes or (attributes[name] is None and prop.type != "null")
            if prop.required and missing:
                yield ("required", f"<{tag}> requires attribute {name!r}", tag, name)


def drop_absent(element: ElementType, attributes: dict[str, Any]) -> dict[str, Any]:
    """`attributes` without the ``None`` values that mean "not set" (optional, non-null type)."""
    declared = element.attributes
    return {
        k: v
        for k, v in attributes.items()
        if v is not None or k not in declared or declared[k].type == "null"
    }


def child_problems(schema: SchemaView, parent: ElementType, child_tag: str) -> Iterator[Problem]:
    """Problems of putting an element `child_tag` under an element of type `parent`."""
    if schema.element(child_tag) is None:
        yield ("unknown-tag", f"tag <{child_tag}> is not declared in the schema", child_tag, None)
        return
    if child_tag not in parent.child_tags:
        allowed = parent.child_tags
        yield (
            "child-not-allowed",
            f"<{parent.tag_name}> does not allow child <{child_tag}> (allowed: {allowed})",
            child_tag,
            None,
        )


def text_problems(parent: ElementType) -> Iterator[Problem]:
    """Problems of putting a text node under an element of type `parent`."""
    if not parent.rich_text:
        yield (
            "text-not-allowed",
            f"<{parent.tag_name}> does not hold rich text",
            "$text",
            None,
        )


def order_problems(parent: ElementType, child_tags: list[str]) -> Iterator[Problem]:
    """Problems of the child sequence `child_tags` (text as ``$text``) for an ordered parent."""
    child = parent.child_property
    if child is None or not child.ordered:
        return
    rank = {tag: i for i, tag in enumerate(child.child_tag_names)}
    last = -1
    for tag in child_tags:
        r = rank.get(tag)
        if r is None:
            continue
        if r < last:
            yield (
                "child-order",
                f"<{parent.tag_name}> children must come in the order {child.child_tag_names}:"
                f" <{tag}> cannot follow <{child.child_tag_names[last]}>",
                tag,
                None,
            )
            return
        last = r


def mark_problems(schema: SchemaView, marks: dict[str, Any]) -> Iterator[Problem]:
    """Problems of the text attributes (marks) `marks`, ``None`` values meaning "remove"."""
    for name, value in marks.items():
        mark = schema.mark(_HASHED_MARK.sub("", name))
        if mark is None:
            known = [m.name for m in schema.marks]
            yield ("unknown-mark", f"mark {name!r} is not declared (known: {known})", None, name)
            continue
        if value is None:
            continue
        if not isinstance(value, dict):
            yield (
                "mark-attribute",
                f"mark {name!r} must be an object of attributes, got {value!r}",
                None,
                name,
            )
            continue
        declared = {p.name: p for p in mark.properties}
        for key, item in value.items():
            prop = declared.get(key)
            if prop is None:
                yield ("mark-attribute", f"mark {name!r} has no attribute {key!r}", None, name)
                continue
            problem = _value_problem(name, prop, item)
            if problem is not None:
                yield ("mark-attribute", f"mark {problem[1]}", None, name)
        for key, prop in declared.items():
            if prop.required and value.get(key) is None:
                yield ("mark-attribute", f"mark {name!r} requires {key!r}", None, name)


def raise_first(problems: Iterator[Problem], where: Callable[[], tuple[str | None, str]]) -> None:
    """Raise the first problem as a `SchemaError` located by `where()` -> (element id, path)."""
    for rule, message, tag, attribute in problems:
        element_id, path = where()
        raise SchemaError(
            f"{message} [rule: {rule}; at {path}]",
            rule=rule,
            element_id=element_id,
            path=path,
            tag=tag,
            attribute=attribute,
        )
