"""Elements to JSON and back, in the shape the schema's JSON Schema describes.

An element is ``{"tag": {"$id": "...", "attr": value, ..., "children": [...]}}``;
a run of rich text is ``{"$text": [{"insert": "Hello", "marks": [{"bold": {}}]}]}``.

Why marks are a list of one-key objects rather than a Yjs delta's
``attributes`` dict: a *strict* JSON Schema (what LLM structured output
requires) must list every property as required, so a dict of optional marks
would force every run to spell out every mark as ``null``. A list keeps runs
short and still converts 1:1 to Yjs text attributes (``{"bold": {}}`` is
exactly what y-prosemirror stores for a bold mark).

With a schema, every declared attribute is written (``null`` when absent) and
``null`` on an optional attribute means "not set", so ``to_json`` output
validates against `MeshSchema.to_json()` and loads back to the same document.

JSON is checked completely (shape, schema, ids) *before* anything is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pycrdt import XmlElement, XmlFragment, XmlText

from .._exceptions import SchemaError
from .._yxml import ID, children, iter_elements, new_id, normalize, raw_attributes
from ..schema._checks import (
    attribute_problems,
    child_problems,
    drop_absent,
    mark_problems,
    order_problems,
    raise_first,
    text_problems,
)
from ..schema._suggestion import SUGGESTION_ATTRIBUTE, suggestion_attribute_problems

if TYPE_CHECKING:
    from ..schema import ElementType, MeshSchema

__all__ = ["ElementPlan", "TextPlan", "node_to_json", "plan_json", "text_to_json", "write_plan"]

TEXT_KEY = "$text"


# ---------------------------------------------------------------- reading


def _marks_to_json(schema: MeshSchema | None, attrs: dict[str, Any] | None) -> list[Any]:
    marks: list[Any] = []
    for name in sorted(attrs or {}):
        value = normalize(attrs[name])  # type: ignore[index]
        mark = schema.mark(name) if schema is not None else None
        if mark is not None and isinstance(value, dict):
            value = {**{p.name: None for p in mark.properties}, **value}
        marks.append({name: value})
    return marks


def text_to_json(schema: MeshSchema | None, node: XmlText) -> dict[str, Any]:
    """``{"$text": [runs]}`` for one Yjs text node, adjacent equal runs merged."""
    runs: list[dict[str, Any]] = []
    for content, attrs in node.diff():
        marks = _marks_to_json(schema, attrs)
        if isinstance(content, str) and runs and runs[-1]["marks"] == marks:
            runs[-1]["insert"] += content
            continue
        runs.append({"insert": content if isinstance(content, str) else normalize(content)})
        runs[-1]["marks"] = marks
    return {TEXT_KEY: runs}


def node_to_json(
    schema: MeshSchema | None,
    node: XmlElement | XmlFragment,
    *,
    tag: str,
    root_attributes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON of an element (or of the root fragment, whose attributes are passed in)."""
    is_root = isinstance(node, XmlFragment)
    attrs = dict(root_attributes or {}) if is_root else raw_attributes(node)
    element = schema.element(tag) if schema is not None else None
    body: dict[str, Any] = {}
    if not is_root:
        body[ID] = attrs.pop(ID, None)
        suggestion = attrs.pop(SUGGESTION_ATTRIBUTE, None)
        if suggestion is not None:  # only while suggested: see `MeshSchema.to_json`
            body[SUGGESTION_ATTRIBUTE] = suggestion
    if element is not None:
        for name in element.attributes:
            body[name] = attrs.pop(name, None)
    for name in sorted(attrs):
        body[name] = attrs[name]
    items: list[dict[str, Any]] = []
    for child in children(node):
        if isinstance(child, XmlText):
            items.append(text_to_json(schema, child))
        else:
            items.append(node_to_json(schema, child, tag=child.tag or ""))
    if element is None or element.child_property is not None or element.rich_text or items:
        body[element.children_key if element is not None else "children"] = items
    return {tag: body}


# ---------------------------------------------------------------- planning


@dataclass
class TextPlan:
    """A text node to write: runs of (text, marks as Yjs attributes)."""

    runs: list[tuple[str, dict[str, Any]]]


@dataclass
class ElementPlan:
    """An element to write, fully checked: tag, attributes (``$id`` included), children."""

    tag: str
    attributes: dict[str, Any]
    children: list[ElementPlan | TextPlan] = field(default_factory=list)


def _shape_error(message: str, where: str) -> SchemaError:
    return SchemaError(f"{message} [rule: json-shape; at {where}]", rule="json-shape", path=where)


class _Planner:
    def __init__(self, schema: MeshSchema | None, existing_ids: Callable[[], set[str]]) -> None:
        self.schema = schema
        self._existing_ids = existing_ids
        self._existing: set[str] | None = None
        self.seen: set[str] = set()

    def _check_id(self, value: Any, where: str) -> str:
        if value is None:
            return new_id()
        if not isinstance(value, str) or not value:
            raise _shape_error(f"$id must be a non-empty string or null, got {value!r}", where)
        if self._existing is None:
            self._existing = self._existing_ids()
        if value in self._existing or value in self.seen:
            raise SchemaError(
                f"an element with $id {value!r} already exists [rule: duplicate-id; at {where}]",
                rule="duplicate-id",
                element_id=value,
                path=where,
            )
        self.seen.add(value)
        return value

    def text(self, data: Any, where: str) -> TextPlan:
        if not isinstance(data, list):
            raise _shape_error("$text must be a list of runs", where)
        runs: list[tuple[str, dict[str, Any]]] = []
        for i, run in enumerate(data):
            here = f"{where}/insert[{i}]"
            if not isinstance(run, dict) or not isinstance(run.get("insert"), str):
                raise _shape_error('a run must be {"insert": str, "marks": [...]}', here)
            extra = set(run) - {"insert", "marks", "attributes"}
            if extra:
                raise _shape_error(f"unexpected keys {sorted(extra)} in a run", here)
            attrs: dict[str, Any] = dict(run.get("attributes") or {})
            marks = run.get("marks") or []
            if not isinstance(marks, list):
                raise _shape_error("marks must be a list", here)
            for mark in marks:
                if not isinstance(mark, dict) or len(mark) != 1:
                    raise _shape_error(f"a mark must be a one-key object, got {mark!r}", here)
                attrs.update(mark)
            if self.schema is not None:
                attrs = {
                    k: ({a: b for a, b in v.items() if b is not None} if isinstance(v, dict) else v)
                    for k, v in attrs.items()
                }
                raise_first(mark_problems(self.schema, attrs), lambda h=here: (None, h))
            runs.append((run["insert"], attrs))
        return TextPlan(runs)

    def node(
        self, data: Any, parent: ElementType | None, where: str, index: int
    ) -> ElementPlan | TextPlan:
        if not isinstance(data, dict) or len(data) != 1:
            raise _shape_error(
                'a node must be {"tag": {...}} or {"$text": [...]}', f"{where}/?[{index}]"
            )
        ((tag, body),) = data.items()
        here = f"{where}/{tag}[{index}]"
        if tag == TEXT_KEY:
            if parent is not None:
                raise_first(text_problems(parent), lambda: (None, here))
            return self.text(body, here)
        if not isinstance(body, dict):
            raise _shape_error(f"the body of <{tag}> must be an object", here)
        element = None
        if self.schema is not None:
            element = self.schema.element(tag)
            context = parent if parent is not None else self.schema.root
            raise_first(child_problems(self.schema, context, tag), lambda: (None, here))
        return self.element(tag, body, element, here, with_id=True)

    def element(
        self,
        tag: str,
        body: dict[str, Any],
        element: ElementType | None,
        where: str,
        *,
        with_id: bool,
    ) -> ElementPlan:
        body = dict(body)
        attrs: dict[str, Any] = {}
        if with_id:
            attrs[ID] = self._check_id(body.pop(ID, None), where)
        elif ID in body:
            raise _shape_error("the root has no $id", where)
        suggestion = body.pop(SUGGESTION_ATTRIBUTE, None) if with_id else None
        if suggestion is not None:
            raise_first(suggestion_attribute_problems(tag, suggestion), lambda: (None, where))
            attrs[SUGGESTION_ATTRIBUTE] = suggestion
        key = element.children_key if element is not None else "children"
        kids = body.pop(key, None) or []
        if not isinstance(kids, list):
            raise _shape_error(f"{key!r} must be a list", where)
        if element is not None:
            values = drop_absent(element, body)
            raise_first(attribute_problems(element, values, complete=True), lambda: (None, where))
            attrs.update(values)
        else:
            for name in body:
                if name.startswith("$"):
                    raise _shape_error(f"attribute name {name!r} is reserved", where)
            attrs.update(body)
        plan = ElementPlan(tag, attrs)
        for i, child in enumerate(kids):
            plan.children.append(self.node(child, element, where, i))
        if element is not None:
            tags = [c.tag if isinstance(c, ElementPlan) else TEXT_KEY for c in plan.children]
            raise_first(order_problems(element, tags), lambda: (None, where))
        return plan


def plan_json(
    schema: MeshSchema | None,
    data: Any,
    *,
    parent: ElementType | None,
    where: str,
    index: int,
    existing_ids: Callable[[], set[str]],
) -> ElementPlan | TextPlan:
    """Check one node of JSON bound for child `index` of a `parent` typed element at `where`."""
    return _Planner(schema, existing_ids).node(data, parent, where, index)


def plan_root(
    schema: MeshSchema | None, data: Any, existing_ids: Callable[[], set[str]]
) -> ElementPlan:
    """Check a whole document's JSON (``{root_tag: {...}}``)."""
    if not isinstance(data, dict) or len(data) != 1:
        raise _shape_error("a document must be {root_tag: {...}}", "")
    ((tag, body),) = data.items()
    if not isinstance(body, dict):
        raise _shape_error("the root body must be an object", tag)
    element = None
    if schema is not None:
        if tag != schema.root_tag_name:
            raise SchemaError(
                f"root tag must be <{schema.root_tag_name}>, got <{tag}> "
                f"[rule: unknown-tag; at {tag}]",
                rule="unknown-tag",
                path=tag,
                tag=tag,
            )
        element = schema.root
    return _Planner(schema, existing_ids).element(tag, body, element, tag, with_id=False)


def ids_below(node: XmlElement | XmlFragment) -> set[str]:
    """Every `$id` in the subtree under `node`."""
    out: set[str] = set()
    for element in iter_elements(node):
        value = element.attributes.get(ID)
        if value is not None:
            out.add(value)
    return out


# ---------------------------------------------------------------- writing


def write_plan(
    parent: XmlElement | XmlFragment, index: int, plan: ElementPlan | TextPlan
) -> XmlElement | XmlText:
    """Insert `plan` at `index` of `parent` (call inside a transaction)."""
    if isinstance(plan, TextPlan):
        text = parent.children.insert(index, XmlText())
        for content, attrs in plan.runs:
            if content:
                text.insert(len(text), content, attrs)
        return text
    element = parent.children.insert(index, XmlElement(plan.tag, plan.attributes))
    for i, child in enumerate(plan.children):
        write_plan(element, i, child)
    return element


def snapshot(node: XmlElement | XmlText) -> ElementPlan | TextPlan:
    """An exact, unchecked copy of a subtree (attributes and marks as stored), for `move`."""
    if isinstance(node, XmlText):
        return TextPlan([(c, dict(a or {})) for c, a in node.diff() if isinstance(c, str)])
    plan = ElementPlan(node.tag or "", raw_attributes(node))
    plan.children = [snapshot(child) for child in children(node)]  # type: ignore[arg-type]
    return plan
