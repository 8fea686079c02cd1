"""Moving an element: checked first, then re-created at the target in one transaction.

Yjs has no move operation: the subtree is copied (attributes, `$id` and text
marks exactly as stored) to the target and the original deleted. A peer that
edits inside the moved subtree before it sees the move edits the deleted copy;
so the move also writes a record of which new item each old one became
(`_move_record.py`), with which a hub's `MoveForwarder` makes those edits again
in the copy. Without a forwarding hub such an edit is lost, and two peers moving
the same element concurrently leave two copies with one `$id` (`validate()`
reports it as ``duplicate-id``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pycrdt import XmlElement, XmlFragment

from .._exceptions import StructureError
from .._yxml import child_index, children, iter_elements
from ..schema._checks import child_problems, raise_first
from ._json import snapshot, write_plan
from ._move_record import deleted_now, write_move_record

if TYPE_CHECKING:
    from ._views import ElementView

__all__ = ["move_element"]


def move_element(element: ElementView, parent: ElementView, index: int | None) -> XmlElement:
    """Move `element` under `parent` at `index` (last if None); returns the new node.

    Raises:
        StructureError: moving the root, into itself or a descendant, or a bad index.
        SchemaError: the parent does not allow the element there.
    """
    node = element.node
    if isinstance(node, XmlFragment):
        raise StructureError("the root cannot be moved")
    element._ensure_alive()
    parent._ensure_alive()
    if parent.node == node or any(e == parent.node for e in iter_elements(node)):
        raise StructureError(f"{element!r} cannot move into itself or its own descendant")
    old_parent = node.parent
    assert old_parent is not None
    old_index = child_index(old_parent, node)  # type: ignore[arg-type]
    same = parent.node == old_parent
    size = len(children(parent.node)) - (1 if same else 0)
    target = size if index is None else index
    if isinstance(target, bool) or not isinstance(target, int) or not 0 <= target <= size:
        raise StructureError(f"child index {index!r} is outside 0..{size} of <{parent.tag_name}>")
    schema = element.document.schema
    if schema is not None:
        parent_type = parent.element_type
        if parent_type is None:
            raise parent._unknown_tag()
        raise_first(child_problems(schema, parent_type, element.tag_name), parent._where)
        removed = old_index if same else None
        parent._check_order(parent_type, target, element.tag_name, removed=removed)
    plan = snapshot(node)
    document = element.document
    with document.transaction():
        deleted_before = deleted_now(document.doc)
        del old_parent.children[old_index]
        new_node = write_plan(parent.node, target, plan)
        assert isinstance(new_node, XmlElement)
        write_move_record(
            document.doc, document.fragment_name, old_parent, new_node, deleted_before
        )
        return new_node
