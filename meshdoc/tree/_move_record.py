"""The record a move leaves: which new item each item of the old subtree became.

Read inside the move's transaction, after the copy is written and the original deleted
(before the transaction ends, when yrs would collect the deleted content): the whole
document's items, the delete set from just before the move, the old element (the type
item under the old parent that the move deleted) and the new one (found by its path).
Old and new are then walked side by side: attributes by key, children and characters
in order (the copy writes them in the same order, from the same snapshot).
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from pycrdt import Doc, Map, XmlElement, XmlFragment

from .._yxml import child_index
from ._items import COUNTABLE, ID, TYPE, ItemTree, read_update
from ._move_table import ANCHORED, AT_START, PAIRED, encode_ranges, record_key

__all__ = ["deleted_now", "moves_map", "write_move_record"]


def moves_map(doc: Doc, fragment: str) -> Map:
    """The shared map holding a document's move records."""
    return doc.get(f"{fragment}:moves", type=Map)


def deleted_now(doc: Doc) -> dict[int, list[tuple[int, int]]]:
    """The document's delete set (an update from its own state holds only that)."""
    return read_update(doc.get_update(doc.get_state()))[1]


def _path(node: XmlElement | XmlFragment) -> list[int]:
    path: list[int] = []
    while not isinstance(node, XmlFragment):
        parent = node.parent
        assert parent is not None
        path.append(child_index(parent, node))
        node = parent
    return path[::-1]


def _find(tree: ItemTree, fragment: str, path: list[int]) -> ID | str:
    container: ID | str = fragment
    for index in path:
        container = tree.visible_children(container)[index]
    return container


def write_move_record(
    doc: Doc,
    fragment: str,
    old_parent: XmlElement | XmlFragment,
    new_node: XmlElement,
    deleted_before: dict[int, list[tuple[int, int]]],
) -> None:
    """Write the record of the move just made in the transaction in progress."""
    items, deletes = read_update(doc.get_update())
    tree = ItemTree(items, deletes)
    before = ItemTree([], deleted_before)
    old_container = _find(tree, fragment, _path(old_parent))
    gone = [
        ident
        for ident, item in tree.ordered_units(old_container)
        if item.ref == TYPE and tree.is_deleted(ident) and not before.is_deleted(ident)
    ]
    assert len(gone) == 1, "a move deletes exactly one element of the old parent"
    old = gone[0]
    new = _find(tree, fragment, _path(new_node))
    assert not isinstance(new, str)
    ranges = _pair(tree, before, old, new)
    record = {"from": list(old), "ranges": encode_ranges(ranges)}
    value = json.dumps(record, separators=(",", ":"))
    moves_map(doc, fragment)[record_key("m", new)] = value


def _pair(tree: ItemTree, before: ItemTree, old: ID, new: ID) -> list[list[Any]]:
    """The ranges mapping every unit inside `old` (not `old` itself) to `new`'s copy."""
    ranges: list[list[Any]] = []
    pending = [(old, new)]
    while pending:
        source, copy = pending.pop()
        ranges += _pair_attributes(tree, before, source, copy)
        queues: dict[int, deque[ID]] = {}
        for ident, item in tree.ordered_units(copy):
            if item.ref in COUNTABLE:
                queues.setdefault(item.ref, deque()).append(ident)
        last: ID | None = None
        for ident, item in tree.ordered_units(source):
            queue = queues.get(item.ref)
            if item.ref in COUNTABLE and not before.is_deleted(ident) and queue:
                last = queue.popleft()
                ranges.append([*ident, 1, *last, PAIRED, *copy])
                if item.ref == TYPE:
                    pending.append((ident, last))
            elif last is not None:
                ranges.append([*ident, 1, *last, ANCHORED, *copy])
            else:
                ranges.append([*ident, 1, *copy, AT_START, *copy])
    return ranges


def _pair_attributes(tree: ItemTree, before: ItemTree, old: ID, new: ID) -> list[list[Any]]:
    copies = tree.live_entries(new)
    ranges: list[list[Any]] = []
    for entry in tree.map_items(old):
        ident = (entry.client, entry.clock)
        key = tree.parent_of(entry)[1]
        assert key is not None
        copy = copies.get(key)
        last = (entry.client, entry.clock + entry.length - 1)
        if copy is None:
            ranges.append([*ident, entry.length, *new, AT_START, *new, key])
        elif before.is_deleted(last):
            ranges.append([*ident, entry.length, copy.client, copy.clock, ANCHORED, *new, key])
        else:
            ranges.append([*ident, entry.length, copy.client, copy.clock, PAIRED, *new, key])
    return ranges
