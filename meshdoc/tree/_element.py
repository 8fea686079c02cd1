"""`Element`: a typed view over one Yjs `XmlElement` (or the root `XmlFragment`).

A view, never a copy: every read goes to the Yjs tree, so an element edited by
another peer reads its new state at once. Every write is checked against the
schema *first*, then runs in one transaction with the document's origin, so a
refused write changes nothing.

```py
doc = MeshDocument(None)
section = doc.root.append_child("section", {"title": "Plan"})
section.append_child("p").text.insert(0, "Ship it")
assert doc.get_node_by_id(section.id) == section
```

Longer than 400 lines: it is one class, the public API of an element method by method
(each a docstring users read); what the methods do lives elsewhere already (`_json`,
`_move`, `_search`, `_xml_string`, the schema checks).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pycrdt import XmlElement, XmlFragment, XmlText

from .._exceptions import NodeNotFoundError, SchemaError, StructureError
from .._yxml import ID, child_index, children, new_id, node_path, raw_attributes
from ..schema._checks import (
    attribute_problems,
    child_problems,
    drop_absent,
    mark_problems,
    order_problems,
    raise_first,
    text_problems,
)
from ..schema._suggestion import SUGGESTION_ATTRIBUTE
from ._json import ElementPlan, ids_below, node_to_json, plan_json, write_plan
from ._move import move_element
from ._search import find_nodes, grep_nodes, node_by_id
from ._xml_string import node_to_xml

if TYPE_CHECKING:
    from ..schema import ElementType
    from ..text._node import TextNode
    from ._views import DocumentView

__all__ = ["Element"]

_SCALARS = (str, int, float, bool, type(None))


class Element:
    """One element of a `MeshDocument`: tag, attributes, children (elements and text)."""

    __slots__ = ("_document", "_node")

    def __init__(self, document: DocumentView, node: XmlElement | XmlFragment) -> None:
        self._document = document
        self._node = node

    # ------------------------------------------------------------ identity

    @property
    def document(self) -> DocumentView:
        return self._document

    @property
    def node(self) -> XmlElement | XmlFragment:
        """The underlying pycrdt node (the `XmlFragment` for the root)."""
        return self._node

    @property
    def is_root(self) -> bool:
        return isinstance(self._node, XmlFragment)

    @property
    def tag_name(self) -> str:
        if isinstance(self._node, XmlFragment):
            return self._document.root_tag_name
        return self._node.tag or ""

    @property
    def id(self) -> str | None:
        """The element's stable `$id` (None for the root and for foreign elements without one)."""
        if isinstance(self._node, XmlFragment):
            return None
        value = self._node.attributes.get(ID)
        return value if isinstance(value, str) else None

    @property
    def element_type(self) -> ElementType | None:
        """The schema's type for this tag (None in an untyped document or for an unknown tag)."""
        schema = self._document.schema
        return schema.element(self.tag_name) if schema is not None else None

    @property
    def parent(self) -> Element | None:
        if isinstance(self._node, XmlFragment):
            return None
        parent = self._node.parent
        if parent is None:
            return None
        return Element(self._document, parent)  # type: ignore[arg-type]

    @property
    def path(self) -> str:
        """Slash path of ``tag[index]`` steps from the root, as errors and violations show it."""
        return node_path(self._document.root_tag_name, self._node)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Element) and other._node == self._node

    def __hash__(self) -> int:
        return hash(self._node)

    def __repr__(self) -> str:
        return f"Element(<{self.tag_name}> $id={self.id!r})"

    def _where(self) -> tuple[str | None, str]:
        return self.id, self.path

    def _error(
        self, message: str, rule: str, attribute: str | None = None, *, tag: str | None = None
    ) -> SchemaError:
        """A `SchemaError` located at this element."""
        return SchemaError(
            f"{message} [rule: {rule}; at {self.path}]",
            rule=rule,
            element_id=self.id,
            path=self.path,
            tag=tag or self.tag_name,
            attribute=attribute,
        )

    def _unknown_tag(self) -> SchemaError:
        return self._error(f"<{self.tag_name}> is not declared in the schema", "unknown-tag")

    def _ensure_alive(self) -> None:
        if isinstance(self._node, XmlFragment) or self._node.attributes.get(ID) is not None:
            return
        parent = self._node.parent
        if parent is None or child_index(parent, self._node) < 0:  # type: ignore[arg-type]
            raise NodeNotFoundError(f"<{self.tag_name}> was deleted", element_id=None)

    # ------------------------------------------------------------ attributes

    @property
    def attributes(self) -> dict[str, Any]:
        """All attributes but `$id` and `$suggestion` (meshdoc's own), as JSON values."""
        if isinstance(self._node, XmlFragment):
            return self._document._root_attributes()
        attrs = raw_attributes(self._node)
        attrs.pop(ID, None)
        attrs.pop(SUGGESTION_ATTRIBUTE, None)
        return attrs

    @property
    def suggestion(self) -> dict[str, Any] | None:
        """The pending suggestion on this element (``{id, author, time, kind}``), or None.

        See `MeshDocument.suggesting`; accepting or rejecting it removes it.
        """
        if isinstance(self._node, XmlFragment):
            return None
        value = raw_attributes(self._node).get(SUGGESTION_ATTRIBUTE)
        return value if isinstance(value, dict) else None

    def get_attribute(self, name: str, default: Any = None) -> Any:
        """The value of attribute `name`, or `default` when it is not set."""
        if name == ID:
            return self.id
        return self.attributes.get(name, default)

    def set_attribute(self, name: str, value: Any) -> None:
        """Set attribute `name`; ``None`` on an optional typed attribute removes it.

        Raises:
            SchemaError: `$id`, an unknown attribute, a wrong type or a value outside the enum.
        """
        if not isinstance(name, str) or not name or name.startswith("$"):
            raise self._error(f"attribute name {name!r} is reserved", "reserved", str(name))
        if not isinstance(value, _SCALARS):
            raise self._error(
                f"attribute {name!r} must be a string, number, boolean or null, got {value!r}",
                "type",
                name,
            )
        self._ensure_alive()
        element = self.element_type
        if element is not None:
            prop = element.attributes.get(name)
            if value is None and prop is not None and prop.type != "null":
                self.remove_attribute(name)
                return
            raise_first(attribute_problems(element, {name: value}, complete=False), self._where)
        elif self._document.schema is not None:
            raise self._unknown_tag()
        with self._document.transaction():
            if isinstance(self._node, XmlFragment):
                self._document.root_attribute_map[name] = value
            else:
                self._node.attributes[name] = value

    def remove_attribute(self, name: str) -> None:
        """Remove attribute `name` (no-op when absent).

        Raises:
            SchemaError: the attribute is required, or is `$id`.
        """
        element = self.element_type
        if name == ID or (
            element is not None and name in element.attributes and element.attributes[name].required
        ):
            rule = "reserved" if name == ID else "required"
            raise self._error(f"<{self.tag_name}> requires attribute {name!r}", rule, name)
        self._ensure_alive()
        with self._document.transaction():
            if isinstance(self._node, XmlFragment):
                attrs = self._document.root_attribute_map
                if name in attrs:
                    del attrs[name]
            elif name in raw_attributes(self._node):
                del self._node.attributes[name]

    # ------------------------------------------------------------ children

    def _wrap(self, node: XmlElement | XmlText | XmlFragment) -> Element | TextNode:
        if isinstance(node, XmlText):
            from ..text._node import TextNode

            return TextNode(self._document, node)
        return Element(self._document, node)

    def get_children(self) -> list[Element | TextNode]:
        """Child elements and text nodes, in order."""
        return [self._wrap(child) for child in children(self._node)]

    def get_child_elements(self) -> list[Element]:
        """Only the child elements."""
        return [
            Element(self._document, c) for c in children(self._node) if not isinstance(c, XmlText)
        ]

    def _child_tags(self) -> list[str]:
        return [c.tag or "" if isinstance(c, XmlElement) else "$text" for c in children(self._node)]

    def _check_order(
        self, parent: ElementType, index: int, tag: str, *, removed: int | None = None
    ) -> None:
        """Refuse putting `tag` at child `index` of an ordered parent (others: no cost)."""
        child = parent.child_property
        if child is None or not child.ordered:
            return
        tags = self._child_tags()
        if removed is not None:
            del tags[removed]
        tags.insert(index, tag)
        raise_first(order_problems(parent, tags), self._where)

    def _check_new_child(self, index: int, tag: str, attributes: dict[str, Any]) -> dict[str, Any]:
        """Refuse a new child `tag` at `index`; return its attributes as they will be stored."""
        for name, value in attributes.items():
            if name.startswith("$") or not isinstance(value, _SCALARS):
                rule = "reserved" if name.startswith("$") else "type"
                message = f"attribute {name!r}={value!r} is reserved or not a JSON scalar"
                raise self._error(message, rule, name, tag=tag)
        schema = self._document.schema
        if schema is None:
            return attributes
        parent = self.element_type
        if parent is None:
            raise self._unknown_tag()
        raise_first(child_problems(schema, parent, tag), self._where)
        child_type = schema.element(tag)
        assert child_type is not None
        values = drop_absent(child_type, attributes)
        raise_first(attribute_problems(child_type, values, complete=True), self._where)
        self._check_order(parent, index, tag)
        return values

    def _check_index(self, index: int) -> int:
        size = len(self._node.children)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= size:
            raise StructureError(f"child index {index!r} is outside 0..{size} of <{self.tag_name}>")
        return index

    def insert_child_at(
        self, index: int, tag_name: str, attributes: dict[str, Any] | None = None
    ) -> Element:
        """Insert a new element `tag_name` at child `index`, with a fresh `$id`.

        Raises:
            SchemaError: the tag is unknown or not allowed here, or an attribute breaks a rule.
            StructureError: `index` is outside the children.
        """
        self._ensure_alive()
        index = self._check_index(index)
        attributes = self._check_new_child(index, tag_name, dict(attributes or {}))
        with self._document.transaction():
            node = self._node.children.insert(
                index, XmlElement(tag_name, {ID: new_id(), **attributes})
            )
        return Element(self._document, node)

    def append_child(self, tag_name: str, attributes: dict[str, Any] | None = None) -> Element:
        """Append a new element `tag_name` (see `insert_child_at`)."""
        return self.insert_child_at(len(self._node.children), tag_name, attributes)

    def _sibling_index(self, sibling: Element | TextNode) -> int:
        node = sibling.node if isinstance(sibling, Element) else sibling.ytext
        index = child_index(self._node, node)
        if index < 0:
            raise NodeNotFoundError(
                f"{sibling!r} is not a child of {self!r}", element_id=getattr(sibling, "id", None)
            )
        return index

    def insert_child_after(
        self, sibling: Element | TextNode, tag_name: str, attributes: dict[str, Any] | None = None
    ) -> Element:
        """Insert a new element right after child `sibling`."""
        return self.insert_child_at(self._sibling_index(sibling) + 1, tag_name, attributes)

    def insert_child_before(
        self, sibling: Element | TextNode, tag_name: str, attributes: dict[str, Any] | None = None
    ) -> Element:
        """Insert a new element right before child `sibling`."""
        return self.insert_child_at(self._sibling_index(sibling), tag_name, attributes)

    @property
    def text(self) -> TextNode:
        """This element's first text node, created (appended) when it has none.

        Raises:
            SchemaError: the element's type does not hold rich text.
        """
        for child in children(self._node):
            if isinstance(child, XmlText):
                from ..text._node import TextNode

                return TextNode(self._document, child)
        return self.append_text()

    def append_text(self, text: str = "", attributes: dict[str, Any] | None = None) -> TextNode:
        """Append a new text node (a new run beside inline elements such as ``hardBreak``)."""
        self._ensure_alive()
        element = self.element_type
        if self._document.schema is not None:
            if element is None:
                raise self._unknown_tag()
            raise_first(text_problems(element), self._where)
            self._check_order(element, len(self._node.children), "$text")
        from ..text._node import TextNode

        if attributes and self._document.schema is not None:
            raise_first(mark_problems(self._document.schema, dict(attributes)), self._where)
        with self._document.transaction():
            node = self._node.children.append(XmlText())
            view = TextNode(self._document, node)
            if text:
                view.insert(0, text, attributes)
        return view

    def insert_json_at(self, index: int, data: dict[str, Any]) -> Element | TextNode:
        """Insert a node given as JSON (``{"tag": {...}}`` or ``{"$text": [...]}``) at `index`.

        The whole tree is checked before anything is written. A given `$id` is kept
        (it must be unused); a missing or null one is assigned.
        """
        self._ensure_alive()
        index = self._check_index(index)
        schema = self._document.schema
        parent = self.element_type
        if schema is not None and parent is None:
            raise self._unknown_tag()
        plan = plan_json(
            schema,
            data,
            parent=parent,
            where=self.path,
            index=index,
            existing_ids=lambda: ids_below(self._document.fragment),
        )
        if parent is not None:
            tag = plan.tag if isinstance(plan, ElementPlan) else "$text"
            self._check_order(parent, index, tag)
        with self._document.transaction():
            node = write_plan(self._node, index, plan)
        return self._wrap(node)

    def append_json(self, data: dict[str, Any]) -> Element | TextNode:
        """Append a node given as JSON (see `insert_json_at`)."""
        return self.insert_json_at(len(self._node.children), data)

    # ------------------------------------------------------------ structure

    def move(self, parent: Element, index: int | None = None) -> None:
        """Move this element under `parent` at `index` (default: last), keeping `$id` and content.

        Yjs has no move: the subtree is re-created at the target and the original
        deleted, in one transaction (see `meshdoc._move` for what that means for
        concurrent edits).

        Raises:
            StructureError: moving the root, or into itself or one of its descendants.
            SchemaError: the parent does not allow this element there.
        """
        self._node = move_element(self, parent, index)

    def delete(self) -> None:
        """Remove this element and its subtree.

        Raises:
            StructureError: the root cannot be deleted.
        """
        if isinstance(self._node, XmlFragment):
            raise StructureError("the root cannot be deleted")
        self._ensure_alive()
        parent = self._node.parent
        index = child_index(parent, self._node) if parent is not None else -1  # type: ignore[arg-type]
        if index < 0:
            raise NodeNotFoundError(f"{self!r} was already deleted", element_id=self.id)
        with self._document.transaction():
            del parent.children[index]  # type: ignore[union-attr]

    # ------------------------------------------------------------ search

    def get_node_by_id(self, id: str) -> Element | None:
        """The element with `$id` == `id` in this subtree (this element included), or None."""
        if self.id == id:
            return self
        node = node_by_id(self._node, id)
        return Element(self._document, node) if node is not None else None

    def find(self, tag_name: str | None = None, **attributes: Any) -> list[Element]:
        """Descendants with tag `tag_name` (any if None) whose attributes equal `attributes`."""
        return [Element(self._document, n) for n in find_nodes(self._node, tag_name, attributes)]

    def grep(self, pattern: str | re.Pattern[str], *, ignore_case: bool = False) -> list[Element]:
        """Descendant elements whose own text or attribute values match regex `pattern`."""
        nodes = grep_nodes(self._node, pattern, ignore_case=ignore_case)
        return [Element(self._document, n) for n in nodes]

    def to_xml(self) -> str:
        """This element as XML, byte for byte what Yjs's ``toString()`` gives (sorted attributes).

        For the root: the fragment's content, as ``doc.getXmlFragment(name).toString()``.
        """
        return node_to_xml(self._node)

    def to_json(self) -> dict[str, Any]:
        """This element as ``{"tag": {"$id": ..., attrs..., "children": [...]}}``."""
        root_attrs = (
            self._document._root_attributes() if isinstance(self._node, XmlFragment) else None
        )
        return node_to_json(
            self._document.schema, self._node, tag=self.tag_name, root_attributes=root_attrs
        )
