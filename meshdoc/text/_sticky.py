"""Sticky positions in rich text: Yjs `RelativePosition`s made and resolved in code points.

pycrdt's own `StickyIndex` cannot serve: `XmlText` has none, and on `Text` it mixes byte
offsets with UTF-16 clocks, so it drifts on any non-ASCII text. A relative position is only an
item ID plus an association, so this module finds IDs itself, on a scratch copy of the
document (cost: one encode and one apply of the document):

- making one: insert a scratch character at the offset and read, from the update it produces,
  which items it was placed between (its origins);
- resolving one: read the document's items to learn whether the ID's character is still
  visible, then write an item by hand right after the ID (with the lowest client ID and no
  right origin, Yjs's conflict resolution places it immediately after that item) and see
  where it shows up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pycrdt import Assoc, Doc, XmlElement, XmlFragment, XmlText

from .._exceptions import UpdateError
from ..updates._lib0 import read_var_uints
from ._codec import Item, decode_items, decode_update, encode_item

__all__ = ["StickyPosition", "create_position", "plain_text", "resolve_position"]

_EMBED = "\ufffc"
_MARKER = "\U0010fffd"
_SCRATCH_CLIENT = 2**32 - 7


def plain_text(ytext: XmlText) -> str:
    return "".join(c if isinstance(c, str) else _EMBED for c, _ in ytext.diff())


def _id(value: Any, where: str) -> tuple[int, int]:
    if not isinstance(value, dict):
        raise UpdateError(f"{where} must be {{'client': int, 'clock': int}}")
    client, clock = value.get("client"), value.get("clock")
    for name, number in (("client", client), ("clock", clock)):
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise UpdateError(f"{where}.{name} must be a non-negative int, got {number!r}")
    return (client, clock)


@dataclass(frozen=True)
class StickyPosition:
    """A position in a text that survives edits: the JSON form of a Yjs `RelativePosition`.

    Exactly one of `item` (the ID of the character it sticks to), `type_id` (the text itself:
    its start or end) or `tname` (a root type by name) is set.
    """

    item: tuple[int, int] | None = None
    type_id: tuple[int, int] | None = None
    tname: str | None = None
    assoc: Assoc = Assoc.AFTER

    def to_json(self) -> dict[str, Any]:
        """The Yjs / pycrdt JSON form: `{"item": {"client", "clock"}, "assoc": 0}` and kin."""
        data: dict[str, Any] = {}
        if self.item is not None:
            data["item"] = {"client": self.item[0], "clock": self.item[1]}
        elif self.type_id is not None:
            data["type"] = {"client": self.type_id[0], "clock": self.type_id[1]}
        else:
            data["tname"] = self.tname
        data["assoc"] = int(self.assoc)
        return data

    @classmethod
    def from_json(cls, data: Any) -> StickyPosition:
        """Read the JSON form (as written by `to_json`, pycrdt or Yjs).

        Raises:
            UpdateError: the data is not a relative position.
        """
        if not isinstance(data, dict):
            raise UpdateError("a sticky position is a JSON object")
        raw_assoc = data.get("assoc", 0)
        if isinstance(raw_assoc, bool) or not isinstance(raw_assoc, (int, float)):
            raise UpdateError(f"assoc must be a number, got {raw_assoc!r}")
        if isinstance(raw_assoc, float) and not math.isfinite(raw_assoc):
            raise UpdateError(f"assoc must be finite, got {raw_assoc!r}")
        assoc = Assoc.BEFORE if raw_assoc < 0 else Assoc.AFTER
        # Yjs writes the type beside the item; the item is what the position sticks to.
        if data.get("item") is not None:
            return cls(item=_id(data["item"], "item"), assoc=assoc)
        if data.get("type") is not None:
            return cls(type_id=_id(data["type"], "type"), assoc=assoc)
        if data.get("tname") is None:
            raise UpdateError("a sticky position needs one of 'item', 'type' or 'tname'")
        if not isinstance(data["tname"], str):
            raise UpdateError("tname must be a string")
        return cls(tname=data["tname"], assoc=assoc)


def _path(doc: Doc, ytext: XmlText) -> tuple[str, list[int]]:
    """Where `ytext` sits: the root's name and the child indices down to it."""
    indices: list[int] = []
    node: Any = ytext
    while True:
        parent = node.parent
        if parent is None:
            break
        if not isinstance(parent, (XmlElement, XmlFragment)):
            raise UpdateError("sticky positions need the text to sit in an XML tree")
        for i, child in enumerate(parent.children):
            if child == node:
                indices.append(i)
                break
        else:  # pragma: no cover - a parent always lists its live children
            raise UpdateError("the text is no longer in its parent")
        node = parent
    with doc.transaction() as txn:
        for name, root in doc._doc.roots(txn._txn).items():
            if root == node.integrated:
                return name, indices[::-1]
    raise UpdateError("the text is not attached to a root of its document")


def _scratch(doc: Doc, ytext: XmlText) -> tuple[Doc, XmlText]:
    """A copy of the document and the copy's twin of `ytext`."""
    name, indices = _path(doc, ytext)
    copy: Doc = Doc(client_id=_SCRATCH_CLIENT)
    copy.apply_update(doc.get_update())
    node: Any = copy.get(name, type=XmlFragment)
    for i in indices:
        node = node.children[i]
    return copy, node


def _new_items(copy: Doc, state: bytes) -> list[Any]:
    return [it for it in decode_items(copy.get_update(state)) if it.client == _SCRATCH_CLIENT]


def _text_id(copy: Doc, twin: XmlText) -> tuple[int, int]:
    """The ID of the text's own item: the origin of a sibling inserted right after it."""
    parent = twin.parent
    assert isinstance(parent, (XmlElement, XmlFragment))
    index = next(i for i, child in enumerate(parent.children) if child == twin)
    state = copy.get_state()
    parent.children.insert(index + 1, XmlText())
    (item,) = _new_items(copy, state)
    assert item.origin is not None
    return item.origin


def create_position(doc: Doc, ytext: XmlText, offset: int, assoc: Assoc) -> StickyPosition:
    """The sticky position at byte `offset` (a character boundary) of `ytext`."""
    copy, twin = _scratch(doc, ytext)
    with copy.transaction() as txn:
        size = twin.integrated.len(txn._txn)
    if (assoc == Assoc.AFTER and offset == size) or (assoc == Assoc.BEFORE and offset == 0):
        return StickyPosition(type_id=_text_id(copy, twin), assoc=assoc)
    state = copy.get_state()
    with copy.transaction() as txn:
        twin.integrated.insert(txn._txn, offset, _MARKER, None)
    (item,) = _new_items(copy, state)
    ident = item.right_origin if assoc == Assoc.AFTER else item.origin
    assert ident is not None
    return StickyPosition(item=ident, assoc=assoc)


def _next_clock(copy: Doc, client: int) -> int:
    values = read_var_uints(copy.get_state())
    for i in range(values[0]):
        c, clock = values[1 + 2 * i], values[2 + 2 * i]
        if c == client:
            return clock
    return 0


def resolve_position(doc: Doc, ytext: XmlText, position: StickyPosition, text: str) -> int:
    """The code-point index of `position` in `ytext`, whose current plain text is `text`."""
    if position.tname is not None:
        raise UpdateError(f"the position points to the root type {position.tname!r}, not here")
    copy, twin = _scratch(doc, ytext)
    if position.type_id is not None:
        if _text_id(copy, twin) != position.type_id:
            raise UpdateError("the position points into another type")
        return len(text) if position.assoc == Assoc.AFTER else 0
    assert position.item is not None
    client, clock = position.item
    found = _find_item(copy, client, clock)
    if found is None:
        raise UpdateError("the position points to an item this document does not have")
    item, deleted = found
    origin_clock = clock
    visible = not deleted and item.content_ref in (2, 3, 4, 5, 7, 8, 9)
    if item.text is not None:
        # An ID may name the first UTF-16 half of an astral character (Yjs counts units):
        # an item placed right after it would split the character, so use the second half.
        units = item.text.encode("utf-16-le")
        at = 2 * (clock - item.clock)
        if 0xD800 <= int.from_bytes(units[at : at + 2], "little") <= 0xDBFF:
            origin_clock += 1
    copy.apply_update(encode_item(0, _next_clock(copy, 0), _MARKER, (client, origin_clock), None))
    marked = plain_text(twin)
    m = next((i for i, (a, b) in enumerate(zip(text, marked, strict=False)) if a != b), len(text))
    if len(marked) != len(text) + 1 or marked[m] != _MARKER:
        raise UpdateError("the position does not point into this text")
    if visible and position.assoc == Assoc.AFTER:
        return m - 1
    return m


def _find_item(copy: Doc, client: int, clock: int) -> tuple[Item, bool] | None:
    """The item holding ID `(client, clock)` and whether that ID is deleted."""
    items, deletes = decode_update(copy.get_update())
    found = next(
        (it for it in items if it.client == client and it.clock <= clock < it.clock + it.length),
        None,
    )
    if found is None:
        return None
    deleted = any(start <= clock < start + n for start, n in deletes.get(client, ()))
    return found, deleted
