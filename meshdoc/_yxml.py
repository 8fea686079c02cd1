"""Low-level reads over the Yjs XML tree that every other module shares.

pycrdt's attribute view hides the difference between an attribute set to
``null`` and a missing one, and returns every number as a float; these helpers
read the raw attribute list once and give JSON back (``3.0`` becomes ``3``) so
that `to_json` is the same on every replica whatever language wrote the value.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from pycrdt import XmlElement, XmlFragment, XmlText

__all__ = [
    "ID",
    "child_index",
    "iter_elements",
    "new_id",
    "node_path",
    "normalize",
    "raw_attributes",
]

ID = "$id"

XmlNode = XmlElement | XmlFragment | XmlText


def new_id() -> str:
    """A fresh element id (UUID4 string)."""
    return str(uuid.uuid4())


def normalize(value: Any) -> Any:
    """JSON-normalize a value read from Yjs: integral floats become ints, containers recurse."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalize(v) for v in value]
    return value


def raw_attributes(node: XmlElement | XmlText) -> dict[str, Any]:
    """All attributes of `node` (``$id`` included), nulls kept, numbers normalized."""
    with node.doc.transaction() as txn:
        pairs = node.integrated.attributes(txn._txn)
    return {k: normalize(v) for k, v in pairs}


def get_attribute_raw(node: XmlElement, name: str) -> Any:
    """One attribute's value (None when missing or null)."""
    with node.doc.transaction() as txn:
        return normalize(node.integrated.attribute(txn._txn, name))


def children(node: XmlElement | XmlFragment) -> list[XmlNode]:
    """The child nodes of `node` (a list snapshot)."""
    return list(node.children)


def iter_elements(node: XmlElement | XmlFragment) -> Iterator[XmlElement]:
    """Every element below `node` in document order (not `node` itself)."""
    stack = list(reversed(children(node)))
    while stack:
        child = stack.pop()
        if isinstance(child, XmlElement):
            yield child
            stack.extend(reversed(children(child)))


def child_index(parent: XmlElement | XmlFragment, child: XmlNode) -> int:
    """Index of `child` in `parent`'s children, or -1 when it is no longer there."""
    for i, node in enumerate(children(parent)):
        if node == child:
            return i
    return -1


def node_path(root_tag: str, node: XmlNode) -> str:
    """Slash path from the root, each step ``tag[index]``: ``doc/section[1]/p[0]``."""
    steps: list[str] = []
    current: XmlNode = node
    while not isinstance(current, XmlFragment):
        parent = current.parent
        if parent is None:
            break
        index = child_index(parent, current)  # type: ignore[arg-type]
        tag = current.tag if isinstance(current, XmlElement) else "$text"
        steps.append(f"{tag}[{index}]")
        current = parent
    steps.append(root_tag)
    return "/".join(reversed(steps))
