"""Edits made inside a moved-away element, made again at its new place.

A move (`_move.py`) copies an element and deletes the original; a peer that had not seen
the move yet still edits the original, and Yjs keeps those edits there, deleted with it.
The document that every edit passes through (a hub: the server's copy of a room's
document) runs a `MoveForwarder` around each update it applies (the room server does not
run one yet). Using the records moves leave
(`_move_table.py`), it re-makes in the copy, in a transaction of its own that every peer
receives:

- the items the update brought into a moved-away subtree: same content, origins mapped
  to the copy's items, new IDs (this document's client), recorded as ``f:`` entries so
  that later edits built on them are mapped too;
- deletions of items that were visible when the move was made (a character, a child, an
  attribute value), unless the same delete set also deletes the moved element itself
  (it then holds the move's own deletions: a peer's full state, the move re-sent);
- when the update carries a move: what this document had inside the element that the
  mover had not seen yet (items, and deletions), read from its state before the update.

When two peers moved one element at once, or one moved an element and another the
element around it, the move this document got last wins: the other copy is deleted, and
what was made in it is sent to the winner (``r:`` records). Proven by the property test
for one peer moving paragraphs while the others edit; with sections and paragraphs moved
in chains at once it can still double a concurrent edit (the test finds it within about
a thousand cases), so those cases are not claimed.

A concurrent delete of the moved element leaves the copy (the move wins); text format
marks placed inside a moved element by a peer that had not seen the move land where their
neighbours went. Every peer gets the forwarded edits as ordinary updates, so browsers with
plain Yjs converge with the hub.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pycrdt import Doc, Map, MapEvent

from ..updates import decode_state
from ._forward_batch import Batch
from ._items import ID, ItemTree, RawItem, read_update, slice_item
from ._move_record import moves_map
from ._move_table import MoveTable, key_id

__all__ = ["MoveForwarder", "Pending"]

#: How many times forwarded edits are looked at again (see `MoveForwarder.after`).
MAX_PASSES = 4


@dataclass
class Pending:
    """What `MoveForwarder.before` saw of the document before an update went in."""

    updates: Sequence[bytes]
    state: dict[int, int]
    table: MoveTable  #: the records before the update (a move makes a new table)
    full: bytes | None  #: the whole state, when the update may carry a move
    deletes: bool = True  #: whether to follow the update's deletions


class MoveForwarder:
    """Re-makes at a moved element's new place what peers still edited at the old one.

    Call `before` with the update (and the updates waiting for a gap, which may go in with
    it) before applying it, and `after` with what it returned once applied: an update that
    touches no moved element, in a document that has none, costs a byte search.
    """

    def __init__(self, doc: Doc, fragment: str = "default") -> None:
        self.doc = doc
        self._moves: Map = moves_map(doc, fragment)
        self._marker = f"{fragment}:moves".encode()
        self._table: MoveTable | None = None
        self._subscription = self._moves.observe(self._changed)

    def _changed(self, event: MapEvent) -> None:
        """Forward and redirect records are added to the table as they come (one per
        forwarded edit: re-reading them all each time would make every edit cost more
        than the last); a move, or anything else, has the table read again."""
        table = self._table
        changes: dict[str, dict[str, Any]] = event.keys  # type: ignore[assignment]
        if table is None:
            return
        if any(c.get("action") != "add" or k.startswith("m:") for k, c in changes.items()):
            self._table = None
            return
        for key, change in changes.items():
            if key not in table.keys:
                table.add(key, change.get("newValue"))
        table.reindex()

    @property
    def table(self) -> MoveTable:
        """Every move, forward and redirect record of the document."""
        if self._table is None:
            self._table = MoveTable.read(dict(self._moves.items()))
        return self._table

    def before(self, update: bytes, waiting: Sequence[bytes] = ()) -> Pending | None:
        """What `after` needs, or None when `update` cannot touch a moved element."""
        updates = [update, *waiting]
        carries_move = any(self._marker in u for u in updates)
        table = self.table
        if not table and not carries_move:
            return None
        state = decode_state(self.doc.get_state())
        full = self.doc.get_update() if carries_move else None
        return Pending(updates, state, table, full)

    def after(self, pending: Pending | None, passes: int = MAX_PASSES) -> None:
        """Forward what the update brought into moved-away elements (one transaction).

        What a forwarding transaction writes can itself land in an element that a move
        in the same update took away (an edit forwarded into an element that was moved
        with its parent): it goes through again, up to `passes` times."""
        if pending is None:
            return
        doc = self.doc
        post = decode_state(doc.get_state())
        table = self.table
        batch = Batch(table, doc.client_id, post.get(doc.client_id, 0))
        decoded = [read_update(update) for update in pending.updates]
        fresh: dict[ID, RawItem] = {}
        for items, _ in decoded:
            for item in items:
                part = _new_part(item, pending.state, post)
                if part is not None:
                    fresh.setdefault((part.client, part.clock), part)
        batch.forward(list(fresh.values()))  # first: a new copy may itself need forwarding
        new_moves = [k for k in table.sources if k not in pending.table.sources]
        new_moves.sort(key=_made_order)
        if new_moves and pending.full is not None:
            before = ItemTree(*read_update(pending.full))
            earlier = Batch(pending.table, doc.client_id, 0)
            for key in new_moves:
                source = table.sources[key]
                moved = earlier.container(source)  # where earlier moves had taken it
                batch.carry(before, moved[0] if moved else source, key, earlier)
        if pending.deletes:  # (a forwarding pass's own deletions are followed already)
            deletes = decoded[0][1]
            moved = {root for root in table.roots if _covers(deletes, root)}
            for client, spans in deletes.items():
                for clock, length in spans:
                    batch.delete_copies(client, clock, length, moved)
        update = batch.update()
        if update is None and not batch.records:
            return
        follow = self.before(update) if update is not None and passes > 1 else None
        with doc.transaction():
            if update is not None:
                doc.apply_update(update)
            batch.write_records(self._moves)
        if follow is not None:
            follow.deletes = False
            self.after(follow, passes - 1)


def _new_part(item: RawItem, before: dict[int, int], after: dict[int, int]) -> RawItem | None:
    """The part of `item` that went in with this update (None: nothing, or not cuttable)."""
    start, end = before.get(item.client, 0), after.get(item.client, 0)
    if item.clock + item.length <= start or item.clock >= end:
        return None
    return slice_item(item, start - item.clock) if item.clock < start else item


def _made_order(key: str) -> tuple[int, int]:
    """Records in the order they were made (one client's clocks grow)."""
    client, clock = key_id(key)
    return clock, client


def _covers(deletes: dict[int, list[tuple[int, int]]], ident: ID) -> bool:
    return any(k <= ident[1] < k + n for k, n in deletes.get(ident[0], ()))
