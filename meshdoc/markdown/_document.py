"""ProseMirror JSON ⇄ document elements: the bridge between Markdown and the Yjs tree.

Reading walks the element views (`Element`, `TextNode`) and produces
ProseMirror JSON exactly as y-prosemirror would hand it to an editor: text
nodes from the Yjs delta with marks from the text attributes (a hashed
``link--xxxxxxxx`` attribute, which y-prosemirror writes for overlapping
marks, reads as ``link``), inline elements such as ``hardBreak`` between them.

Writing goes the other way through the engine's JSON planner, so every
element gets a fresh ``$id`` and the schema checks the whole tree *before*
one transaction writes it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ..schema._checks import order_problems, raise_first
from ..text._node import TextNode
from ..tree._json import TEXT_KEY, ElementPlan, TextPlan, ids_below, plan_json, write_plan
from ._parse import MARK_ORDER, normalize_inline

if TYPE_CHECKING:
    from ..schema import MeshSchema
    from ..tree._element import Element

__all__ = ["blocks_to_json", "element_to_prosemirror", "insert_blocks"]

JSON = dict[str, Any]

_HASHED_MARK = re.compile(r"(.*)(--[a-zA-Z0-9+/=]{8})$")
_INLINE_TAGS = {"hardBreak"}
_TEXTBLOCK_TAGS = {"paragraph", "heading", "codeBlock"}


# ---------------------------------------------------------------- ProseMirror JSON → engine JSON


def _marks_json(marks: list[JSON]) -> list[JSON]:
    out: list[JSON] = []
    for mark in marks:
        attrs = {k: v for k, v in (mark.get("attrs") or {}).items() if v is not None}
        out.append({mark["type"]: attrs})
    return out


def _inline_json(content: list[JSON]) -> list[JSON]:
    out: list[JSON] = []
    runs: list[JSON] = []
    for node in content:
        if node.get("type") == "text":
            runs.append({"insert": node["text"], "marks": _marks_json(node.get("marks") or [])})
            continue
        if runs:
            out.append({TEXT_KEY: runs})
            runs = []
        out.append({node["type"]: dict(node.get("attrs") or {})})
    if runs:
        out.append({TEXT_KEY: runs})
    return out


def blocks_to_json(blocks: list[JSON], schema: MeshSchema | None = None) -> list[JSON]:
    """Engine JSON (``{"tag": {attrs..., "children": [...]}}``) for ProseMirror block nodes.

    The children go under the key `schema` declares for each tag (``"children"`` by default).
    """
    out: list[JSON] = []
    for node in blocks:
        body: JSON = {k: v for k, v in (node.get("attrs") or {}).items() if v is not None}
        content = node.get("content") or []
        element = schema.element(node["type"]) if schema is not None else None
        key = element.children_key if element is not None else "children"
        if node["type"] in _TEXTBLOCK_TAGS:
            body[key] = _inline_json(content)
        else:
            body[key] = blocks_to_json(content, schema)
        out.append({node["type"]: body})
    return out


def insert_blocks(
    parent: Element, index: int, blocks: list[JSON], *, origin: Any = None
) -> list[Element]:
    """Insert block nodes as children of `parent` from `index`, all checked, in one transaction.

    Raises:
        SchemaError: a block is not allowed there or breaks the schema (nothing is written).
        NodeNotFoundError: `parent` was deleted.
    """
    parent._ensure_alive()
    document = parent.document
    schema = document.schema
    parent_type = parent.element_type
    if schema is not None and parent_type is None:
        raise parent._unknown_tag()
    existing: set[str] | None = None

    def existing_ids() -> set[str]:
        nonlocal existing
        if existing is None:
            existing = ids_below(document.fragment)
        return existing

    plans: list[ElementPlan | TextPlan] = [
        plan_json(
            schema,
            data,
            parent=parent_type,
            where=parent.path,
            index=index + i,
            existing_ids=existing_ids,
        )
        for i, data in enumerate(blocks_to_json(blocks, schema))
    ]
    if parent_type is not None:
        tags = parent._child_tags()
        tags[index:index] = [p.tag if isinstance(p, ElementPlan) else TEXT_KEY for p in plans]
        raise_first(order_problems(parent_type, tags), parent._where)
    written: list[Element] = []
    with document.transaction(origin):
        for i, plan in enumerate(plans):
            node = write_plan(parent.node, index + i, plan)
            written.append(parent._wrap(node))  # type: ignore[arg-type]
    return written


# ---------------------------------------------------------------- elements → ProseMirror JSON


def _mark_name(attribute: str) -> str:
    match = _HASHED_MARK.match(attribute)
    return match.group(1) if match else attribute


def _text_nodes(text: TextNode) -> list[JSON]:
    out: list[JSON] = []
    for op in text.to_delta():
        insert = op["insert"]
        if not isinstance(insert, str) or not insert:
            continue  # embeds have no place in ProseMirror text
        marks: dict[str, JSON] = {}
        for name, value in (op.get("attributes") or {}).items():
            if value is None:
                continue
            mark = _mark_name(name)
            attrs = (
                {k: v for k, v in value.items() if v is not None} if isinstance(value, dict) else {}
            )
            marks[mark] = attrs
        node: JSON = {"type": "text", "text": insert}
        if marks:
            order = [m for m in MARK_ORDER if m in marks] + sorted(set(marks) - set(MARK_ORDER))
            node["marks"] = [
                {"type": m, "attrs": marks[m]} if marks[m] else {"type": m} for m in order
            ]
        out.append(node)
    return out


def _attrs(element: Element) -> JSON:
    attrs = {k: v for k, v in element.attributes.items() if v is not None}
    if element.suggestion is not None:  # an editor that declares it shows it (`schema`)
        attrs["$suggestion"] = element.suggestion
    return attrs


def _inline_content(element: Element) -> list[JSON]:
    content: list[JSON] = []
    for child in element.get_children():
        if isinstance(child, TextNode):
            content.extend(_text_nodes(child))
        elif child.tag_name in _INLINE_TAGS:
            content.append({"type": child.tag_name})
        else:  # a foreign inline element: keep its text
            content.extend(_inline_content(child))
    return normalize_inline(content)


def element_to_prosemirror(element: Element) -> JSON:
    """ProseMirror JSON for an element (the root reads as a ``doc`` node).

    Unknown elements read as what they hold: text as inline content, blocks as blocks.
    """
    tag = "doc" if element.is_root else element.tag_name
    node: JSON = {"type": tag}
    attrs = {} if element.is_root else _attrs(element)
    if attrs:
        node["attrs"] = attrs
    children = element.get_children()
    if tag in _TEXTBLOCK_TAGS or any(isinstance(child, TextNode) for child in children):
        content = _inline_content(element)
    else:
        content = [element_to_prosemirror(child) for child in children]  # type: ignore[arg-type]
    if content:
        node["content"] = content
    return node
