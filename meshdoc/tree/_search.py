"""Finding elements in a subtree: by `$id`, by tag and attributes, by regular expression.

Each search walks the subtree once, in document order, reading the Yjs tree
directly (no index to keep in sync with remote updates): cost is linear in the
subtree's size.
"""

from __future__ import annotations

import re
from typing import Any

from pycrdt import XmlElement, XmlFragment, XmlText

from .._yxml import ID, children, iter_elements, raw_attributes

__all__ = ["find_nodes", "grep_nodes", "node_by_id", "plain_text"]

_MISSING = object()


def plain_text(node: XmlText) -> str:
    """The characters of a text node, without its marks."""
    return "".join(c for c, _ in node.diff() if isinstance(c, str))


def node_by_id(root: XmlElement | XmlFragment, id: str) -> XmlElement | None:
    """The first element below `root` whose `$id` is `id`."""
    for node in iter_elements(root):
        if node.attributes.get(ID) == id:
            return node
    return None


def find_nodes(
    root: XmlElement | XmlFragment, tag_name: str | None, attributes: dict[str, Any]
) -> list[XmlElement]:
    """Elements below `root` with this tag (any if None) and these exact attribute values."""
    found = []
    for node in iter_elements(root):
        if tag_name is not None and node.tag != tag_name:
            continue
        if attributes:
            attrs = raw_attributes(node)
            if any(attrs.get(k, _MISSING) != v for k, v in attributes.items()):
                continue
        found.append(node)
    return found


def grep_nodes(
    root: XmlElement | XmlFragment, pattern: str | re.Pattern[str], *, ignore_case: bool
) -> list[XmlElement]:
    """Elements below `root` whose own text or attribute values match `pattern`."""
    if isinstance(pattern, str):
        regex = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    else:
        regex = pattern
    found = []
    for node in iter_elements(root):
        texts = [plain_text(c) for c in children(node) if isinstance(c, XmlText)]
        values = [str(v) for k, v in raw_attributes(node).items() if k != ID and v is not None]
        if any(regex.search(s) for s in (*texts, *values)):
            found.append(node)
    return found
