"""A document's items as Yjs stores them: read from an update with their raw content, placed
in their parents in Yjs order, and written back with other IDs.

A move needs what pycrdt does not expose: the item IDs of a subtree in document order (to
pair each old character with its copy) and the raw bytes of items that landed in a moved-away
subtree (to write them again at the new place). Reading follows Yjs's `readClientsStructRefs`;
the order of a parent's items is Yjs's `Item.integrate` (YATA) run on one-unit items, which is
what Yjs's splitting at origins amounts to.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any, NamedTuple

from ..text._codec import _content_length, _Reader, decode_delete_set, utf16_length
from ..updates._lib0 import append_var_uint

__all__ = [
    "COUNTABLE",
    "DELETED",
    "ID",
    "TYPE",
    "ItemTree",
    "RawItem",
    "cut_item",
    "encode_update",
    "read_update",
    "slice_item",
]

ID = tuple[int, int]
#: Content refs whose items take a place in a list (Yjs `isCountable`): JSON, binary,
#: string, embed, type, any, subdocument. Deleted and format items do not.
COUNTABLE = frozenset((2, 3, 4, 5, 7, 8, 9))
DELETED, STRING, TYPE = 1, 4, 7


class RawItem(NamedTuple):
    """One item of an update, its content kept as the bytes it was written with."""

    client: int
    clock: int
    length: int
    origin: ID | None
    right_origin: ID | None
    parent: ID | str | None  #: as written: None when the origins tell it
    parent_sub: str | None  #: as written (a map key), None when the origins tell it
    is_map_entry: bool  #: whether the item has a parent key at all (info bit 6)
    ref: int
    content: bytes


def read_update(update: bytes) -> tuple[list[RawItem], dict[int, list[tuple[int, int]]]]:
    """The items of a v1 update (GC and skip structs left out) and its delete set."""
    reader = _Reader(update)
    items: list[RawItem] = []
    for _ in range(reader.uint()):
        count, client, clock = reader.uint(), reader.uint(), reader.uint()
        for _ in range(count):
            info = reader.byte()
            ref = info & 0x1F
            if ref in (0, 10):  # GC, skip
                clock += reader.uint()
                continue
            origin = reader.id() if info & 0x80 else None
            right_origin = reader.id() if info & 0x40 else None
            parent: ID | str | None = None
            parent_sub = None
            if origin is None and right_origin is None:
                parent = reader.string() if reader.uint() == 1 else reader.id()
                if info & 0x20:
                    parent_sub = reader.string()
            start = reader.pos
            content = _content_length(reader, ref)
            if isinstance(content, str):
                length = utf16_length(content)
            elif isinstance(content, tuple):
                length = 1
            else:
                length = content
            items.append(
                RawItem(
                    client, clock, length, origin, right_origin, parent, parent_sub,
                    bool(info & 0x20), ref, update[start : reader.pos],
                )
            )  # fmt: skip
            clock += length
    return items, decode_delete_set(update[reader.pos :])


def slice_item(item: RawItem, skip: int) -> RawItem | None:
    """The part of `item` after its first `skip` clock units (None: it cannot be cut there).

    Only strings and deleted content are cut, as Yjs splits them; other content is one unit
    (types, embeds, formats, attribute values) or rare enough to take whole."""
    if skip <= 0:
        return item
    out = bytearray()
    if item.ref == STRING:
        text = _Reader(item.content).string()
        units = text.encode("utf-16-le", errors="surrogatepass")[2 * skip :]
        rest = units.decode("utf-16-le", errors="surrogatepass").encode("utf-8", "surrogatepass")
        append_var_uint(len(rest), out)
        out += rest
    elif item.ref == DELETED:
        append_var_uint(item.length - skip, out)
    else:
        return None
    return item._replace(
        clock=item.clock + skip,
        length=item.length - skip,
        origin=(item.client, item.clock + skip - 1),
        content=bytes(out),
    )


def cut_item(item: RawItem, start: int, end: int) -> RawItem | None:
    """Units ``start..end`` (clock offsets) of `item`, as Yjs would split it there."""
    part = slice_item(item, start)
    if part is None or end >= item.length:
        return part
    size = end - start
    out = bytearray()
    if part.ref == STRING:
        text = _Reader(part.content).string()
        units = text.encode("utf-16-le", errors="surrogatepass")[: 2 * size]
        kept = units.decode("utf-16-le", errors="surrogatepass").encode("utf-8", "surrogatepass")
        append_var_uint(len(kept), out)
        out += kept
    elif part.ref == DELETED:
        append_var_uint(size, out)
    else:
        return None
    return part._replace(
        length=size, right_origin=(item.client, item.clock + end), content=bytes(out)
    )


def encode_update(
    client: int, clock: int, items: list[RawItem], deletes: list[tuple[ID, int]]
) -> bytes:
    """An update of `items` written as `client`'s, from `clock` on, and of `deletes`
    (`((client, clock), length)`). Each item keeps its content, origins and parent."""
    out = bytearray()
    append_var_uint(1 if items else 0, out)
    if items:
        append_var_uint(len(items), out)
        append_var_uint(client, out)
        append_var_uint(clock, out)
        for item in items:
            info = item.ref | (0x20 if item.is_map_entry else 0)
            info |= (0x80 if item.origin else 0) | (0x40 if item.right_origin else 0)
            out.append(info)
            for ident in (item.origin, item.right_origin):
                if ident is not None:
                    append_var_uint(ident[0], out)
                    append_var_uint(ident[1], out)
            if item.origin is None and item.right_origin is None:
                if isinstance(item.parent, str):
                    append_var_uint(1, out)
                    _append_string(item.parent, out)
                else:
                    assert item.parent is not None
                    append_var_uint(0, out)
                    append_var_uint(item.parent[0], out)
                    append_var_uint(item.parent[1], out)
                if item.is_map_entry:
                    assert item.parent_sub is not None
                    _append_string(item.parent_sub, out)
            out += item.content
    by_client: dict[int, list[tuple[int, int]]] = {}
    for (c, k), n in deletes:
        by_client.setdefault(c, []).append((k, n))
    append_var_uint(len(by_client), out)
    for c, spans in by_client.items():
        append_var_uint(c, out)
        append_var_uint(len(spans), out)
        for k, n in sorted(spans):
            append_var_uint(k, out)
            append_var_uint(n, out)
    return bytes(out)


def _append_string(text: str, out: bytearray) -> None:
    data = text.encode("utf-8", "surrogatepass")
    append_var_uint(len(data), out)
    out += data


def covering(starts: list[int], runs: list[Any], clock: int) -> Any:
    """The run (anything with a `clock` and a `length`, sorted, `starts` their clocks) that
    holds `clock`, or None."""
    i = bisect_right(starts, clock) - 1
    if i < 0:
        return None
    run = runs[i]
    return run if clock < run.clock + run.length else None


class ItemTree:
    """The items of a whole document (from `doc.get_update()`), found by ID and by parent."""

    def __init__(self, items: list[RawItem], deletes: dict[int, list[tuple[int, int]]]) -> None:
        self._starts: dict[int, list[int]] = {}
        self._items: dict[int, list[RawItem]] = {}
        for item in sorted(items, key=lambda it: (it.client, it.clock)):
            self._starts.setdefault(item.client, []).append(item.clock)
            self._items.setdefault(item.client, []).append(item)
        self._deletes = {c: sorted(spans) for c, spans in deletes.items()}
        self._parents: dict[ID, tuple[ID | str | None, str | None]] = {}
        self._lists: dict[ID | str, list[RawItem]] = {}
        self._maps: dict[ID, dict[str, list[RawItem]]] = {}
        for item in items:
            parent, key = self.parent_of(item)
            if parent is None:
                continue
            if key is None:
                self._lists.setdefault(parent, []).append(item)
            elif not isinstance(parent, str):
                self._maps.setdefault(parent, {}).setdefault(key, []).append(item)

    def items(self) -> list[RawItem]:
        """Every item, by client and clock."""
        return [item for items in self._items.values() for item in items]

    def delete_set(self) -> dict[int, list[tuple[int, int]]]:
        return self._deletes

    def find(self, ident: ID) -> RawItem | None:
        """The item holding ID `ident`."""
        return covering(self._starts.get(ident[0], []), self._items.get(ident[0], []), ident[1])

    def is_deleted(self, ident: ID) -> bool:
        spans = self._deletes.get(ident[0], ())
        i = bisect_right(spans, (ident[1], float("inf"))) - 1
        return i >= 0 and spans[i][0] <= ident[1] < spans[i][0] + spans[i][1]

    def parent_of(self, item: RawItem) -> tuple[ID | str | None, str | None]:
        """Where `item` lives: its parent (an ID, or a root's name) and its map key.

        Origins tell it when the update does not: follow them (without recursion: a typed
        text is a long chain) to an item that says, then remember it along the way.
        """
        chain: list[RawItem] = []
        found: tuple[ID | str | None, str | None] = (None, None)
        node: RawItem | None = item
        while node is not None:
            key = (node.client, node.clock)
            if key in self._parents:
                found = self._parents[key]
                break
            if node.origin is None and node.right_origin is None:
                found = (node.parent, node.parent_sub)
                chain.append(node)
                break
            chain.append(node)
            neighbour = node.origin if node.origin is not None else node.right_origin
            assert neighbour is not None
            node = self.find(neighbour)
        for link in chain:
            self._parents[(link.client, link.clock)] = found
        return found

    def list_items(self, parent: ID | str) -> list[RawItem]:
        """The items of `parent`'s list (children of an element, units of a text)."""
        return self._lists.get(parent, [])

    def live_entries(self, parent: ID) -> dict[str, RawItem]:
        """The current value of each key of `parent`'s map (its attributes)."""
        live: dict[str, RawItem] = {}
        for key, entries in self._maps.get(parent, {}).items():
            for entry in entries:
                if not self.is_deleted((entry.client, entry.clock)):
                    live[key] = entry
        return live

    def map_items(self, parent: ID) -> list[RawItem]:
        return [e for entries in self._maps.get(parent, {}).values() for e in entries]

    def ordered_units(self, parent: ID | str) -> list[tuple[ID, RawItem]]:
        """Every unit (one clock) of `parent`'s list in document order, deleted ones too."""
        return _order(self.list_items(parent))

    def visible_children(self, parent: ID | str) -> list[ID]:
        """The IDs of `parent`'s live countable units, in order (an element's children)."""
        return [
            ident
            for ident, item in self.ordered_units(parent)
            if item.ref in COUNTABLE and not self.is_deleted(ident)
        ]


def _order(items: list[RawItem]) -> list[tuple[ID, RawItem]]:
    """Yjs's integration of one list's items, unit by unit, into a linked list."""
    units: dict[ID, tuple[ID | None, ID | None, RawItem]] = {}
    for item in items:  # (a zero-length item, which yrs can write, takes no place)
        for i in range(item.length):
            origin = item.origin if i == 0 else (item.client, item.clock + i - 1)
            units[(item.client, item.clock + i)] = (origin, item.right_origin, item)
    right: dict[ID | None, ID | None] = {None: None}  # None: the list's start
    done: set[ID] = set()

    def integrate(uid: ID) -> None:
        origin, right_origin, _ = units[uid]
        origin = origin if origin in done else None
        right_origin = right_origin if right_origin in done else None
        left = origin
        o = right[left]
        before: set[ID] = set()
        conflicting: set[ID] = set()
        while o is not None and o != right_origin:
            before.add(o)
            conflicting.add(o)
            o_origin, o_right, _ = units[o]
            if o_origin == origin:
                if o[0] < uid[0]:
                    left = o
                    conflicting.clear()
                elif o_right == right_origin:
                    break
            elif o_origin is not None and o_origin in before:
                if o_origin not in conflicting:
                    left = o
                    conflicting.clear()
            else:
                break
            o = right[o]
        right[uid] = right[left]
        right[left] = uid
        done.add(uid)

    for start in sorted(units):
        stack = [start]
        waiting = {start}
        while stack:
            uid = stack[-1]
            if uid in done:
                stack.pop()
                continue
            origin, right_origin, _ = units[uid]
            dep = next(
                (
                    d
                    for d in (origin, right_origin)
                    if d in units and d not in done and d not in waiting
                ),
                None,
            )
            if dep is not None:
                stack.append(dep)
                waiting.add(dep)
                continue
            stack.pop()
            integrate(uid)
    ordered: list[tuple[ID, RawItem]] = []
    node = right[None]
    while node is not None:
        ordered.append((node, units[node][2]))
        node = right[node]
    return ordered
