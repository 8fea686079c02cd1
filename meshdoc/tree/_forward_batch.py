"""One forwarding transaction: the items and deletions re-made at moved elements' new places.

Every old ID is resolved through the move table (`_move_table.py`) and through what this
batch has re-made already, and then again, for as long as the place it resolves to has
itself moved on (an element moved twice, or moved by two peers at once and redirected).
"""

from __future__ import annotations

import json
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from pycrdt import Map

from ._items import DELETED, ID, ItemTree, RawItem, cut_item, encode_update
from ._move_table import PAIRED, MoveTable, encode_ranges, key_id, record_key

__all__ = ["Batch"]

#: How many moves one ID is followed through (a cycle cannot happen; this is a bound).
MAX_HOPS = 64


class Place(NamedTuple):
    """Where an old unit is now: a unit (None: the start of `container`), and whether it is
    that unit's copy (not only placed after it)."""

    unit: ID | None
    paired: bool
    container: ID
    key: str | None
    root: ID


@dataclass
class _Made:
    new: ID
    container: ID
    key: str | None
    root: ID


@dataclass
class Batch:
    """What one forwarding transaction writes, as this document's client from `clock` on."""

    table: MoveTable
    client: int
    clock: int
    items: list[RawItem] = field(default_factory=list)
    deletes: list[tuple[ID, int]] = field(default_factory=list)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    _made: dict[int, list[tuple[int, int, _Made]]] = field(default_factory=dict)
    _forward_keys: dict[ID, str] = field(default_factory=dict)  # move root -> its f: record

    # -- where an old ID is now -------------------------------------------------------------

    def _made_unit(self, ident: ID) -> Place | None:
        runs = self._made.get(ident[0])
        if not runs:
            return None
        i = bisect_right(runs, (ident[1], float("inf"))) - 1
        if i < 0 or ident[1] >= runs[i][0] + runs[i][1]:
            return None
        start, _, made = runs[i]
        unit = (made.new[0], made.new[1] + ident[1] - start)
        return Place(unit, True, made.container, made.key, made.root)

    def _step(self, ident: ID) -> Place | None:
        target = self.table.target(ident)
        if target is not None:
            return Place(target.unit, target.paired, target.container, target.key, target.root)
        return self._made_unit(ident)

    def _moved_container(self, container: ID) -> tuple[ID, ID] | None:
        if container in self.table.roots:
            return self.table.roots[container], container
        place = self._step(container)
        if place is not None and place.paired and place.unit is not None:
            return place.unit, place.root
        return None

    def resolve(self, ident: ID) -> Place | None:
        """Where old unit `ident` is now, if it was inside a moved-away element."""
        place = self._step(ident)
        for _ in range(MAX_HOPS):
            if place is None:
                return None
            if place.unit is not None:
                further = self._step(place.unit)
                if further is None:
                    return place
                key = further.key if further.key is not None else place.key
                place = further._replace(paired=place.paired and further.paired, key=key)
            else:
                moved = self._moved_container(place.container)
                if moved is None:
                    return place
                place = place._replace(container=moved[0], root=moved[1])
        return place

    def container(self, parent: ID | str | None) -> tuple[ID, ID] | None:
        """The parent now of an item written under old `parent`, and the move's root."""
        if parent is None or isinstance(parent, str):
            return None
        found = self._moved_container(parent)
        for _ in range(MAX_HOPS):
            if found is None:
                return None
            further = self._moved_container(found[0])
            if further is None:
                return found
            found = further
        return found

    def _inside(self, item: RawItem) -> bool:
        if item.origin is not None:
            return self.resolve(item.origin) is not None
        if item.right_origin is not None:
            return self.resolve(item.right_origin) is not None
        return self.container(item.parent) is not None

    # -- re-making items --------------------------------------------------------------------

    def forward(self, candidates: list[RawItem]) -> None:
        """Re-make every candidate that lies inside a moved-away element, in causal order
        (an item after the neighbours it names). What the table maps already is left."""
        roots = self.table.roots  # an element that moved on is not carried along
        waiting = [
            part
            for item in candidates
            if (item.client, item.clock) not in roots
            for part in self._unmapped(item)
        ]
        waiting.sort(key=lambda it: (it.client, it.clock))
        pending = {(it.client, it.clock): it for it in waiting}
        progress = True
        while waiting and progress:
            progress = False
            rest = []
            for item in waiting:
                if self._ready(item, pending) and self._inside(item):
                    self._make(item)
                    del pending[(item.client, item.clock)]
                    progress = True
                else:
                    rest.append(item)
            waiting = rest

    def _unmapped(self, item: RawItem) -> list[RawItem]:
        """The parts of `item` that no record maps yet."""
        if not self.table.spans(item.client, item.clock, item.length):
            return [item]
        mapped = [
            self.table.range_of((item.client, item.clock + i)) is not None
            for i in range(item.length)
        ]
        parts: list[RawItem] = []
        i = 0
        while i < item.length:
            if mapped[i]:
                i += 1
                continue
            j = i
            while j < item.length and not mapped[j]:
                j += 1
            part = cut_item(item, i, j)
            if part is not None:
                parts.append(part)
            i = j
        return parts

    def _ready(self, item: RawItem, pending: dict[ID, RawItem]) -> bool:
        """Whether no neighbour `item` names is still waiting to be re-made."""
        for ident in (item.origin, item.right_origin, item.parent):
            if not isinstance(ident, tuple) or self._step(ident) is not None:
                continue
            for other in pending.values():
                span = other.clock <= ident[1] < other.clock + other.length
                if other is not item and other.client == ident[0] and span:
                    return False
        return True

    def _make(self, item: RawItem) -> Place:
        origin = right = None
        place = self.resolve(item.origin) if item.origin is not None else None
        if place is not None:
            origin = place.unit
        if item.right_origin is not None:
            right_place = self.resolve(item.right_origin)
            if right_place is not None:
                right = right_place.unit if right_place.paired else None
                place = place or right_place
        if place is None:
            found = self.container(item.parent)
            assert found is not None
            place = Place(None, False, found[0], None, found[1])
        key = item.parent_sub if item.parent_sub is not None else place.key
        new = (self.client, self.clock)
        self.items.append(
            item._replace(
                client=self.client, clock=self.clock, origin=origin, right_origin=right,
                parent=place.container, parent_sub=key if item.is_map_entry else None,
            )
        )  # fmt: skip
        if item.ref == DELETED:
            self.deletes.append((new, item.length))
        made = _Made(new, place.container, key, place.root)
        self._made.setdefault(item.client, []).append((item.clock, item.length, made))
        self._made[item.client].sort(key=lambda run: run[0])
        tail = [key] if key is not None else []
        name = self._forward_keys.setdefault(place.root, record_key("f", new))
        ranges = self.records.setdefault(name, {"root": list(place.root)})
        ranges.setdefault("ranges", []).append(
            [item.client, item.clock, item.length, *new, PAIRED, *place.container, *tail]
        )
        self.clock += item.length
        return place

    # -- deletions --------------------------------------------------------------------------

    def delete_copies(self, client: int, clock: int, length: int, skip_roots: set[ID]) -> None:
        """Delete what old units ``clock..clock+length`` became (the copies of visible
        ones). Units inside an element of `skip_roots` (the update deletes the element
        itself: those are a move's own deletions) are left, whatever moved them before."""
        excluded = [
            (r.clock, r.clock + r.length)
            for r in self.table.spans(client, clock, length)
            if r.root in skip_roots
        ]
        spans = [((client, clock), length)]
        for hop in range(MAX_HOPS):
            further = []
            for (c, k), n in spans:
                for r, start, size in self.table.paired_spans(c, k, n):
                    if r.root in skip_roots:
                        continue
                    for lo, hi in _minus(start, start + size, excluded if hop == 0 else []):
                        further.append(((r.new[0], r.new[1] + lo - r.clock), hi - lo))
                runs = self._made.get(c, ())
                for run_start, run_length, made in runs:
                    lo, hi = max(k, run_start), min(k + n, run_start + run_length)
                    if lo < hi and made.root not in skip_roots:
                        further.append(((made.new[0], made.new[1] + lo - run_start), hi - lo))
            if not further:
                return
            self.deletes += further
            spans = further

    def carry(self, before: ItemTree, current: ID, record: str, earlier: Batch) -> None:
        """A move (`record`) came: carry over what this document has in the moved element
        (`current`: the element itself, or where earlier moves took it) that the mover had
        not seen, and its deletions of what the mover had seen.

        When an earlier move had taken the element elsewhere (another peer moved it, or an
        element around it, at the same time), the latest move wins: the earlier copy is
        redirected to the new one (an ``r:`` record, each unit to the copy of the unit it
        was made from) and deleted.
        """
        source = self.table.sources[record]
        inside: dict[ID | str, bool] = {current: True}
        items = [it for it in before.items() if _within(before, before.parent_of(it)[0], inside)]
        if current != source:
            ranges = self._identities(items, record)
            key = record_key("r", current)
            self.records[key] = {"to": list(key_id(record)), "ranges": ranges}
            self.table.add(key, json.dumps(self.records[key]))
            self.table.reindex()
            self.deletes.append((current, 1))
        self.forward(items)
        for item in items:  # what was deleted here before the move came stays deleted
            if not before.is_deleted((item.client, item.clock)) or before.is_deleted(current):
                continue  # (a deleted element's deletions are no one's edits)
            if (item.client, item.clock) in earlier.table.roots:
                continue  # deleted by a move: it lives on where it went
            for i in range(item.length):  # unit by unit: they may have gone apart
                place = self.resolve((item.client, item.clock + i))
                if place is not None and place.paired and place.unit is not None:
                    self.deletes.append((place.unit, 1))
        if current != source:  # the mover saw visible what was deleted here, uncopied
            for old, new in self.table.units(record).items():
                if before.is_deleted(old) and earlier.container(old) is None:
                    place = earlier.resolve(old)
                    if place is None or not place.paired:
                        self.deletes.append((new, 1))
        self._keep_inner_moves(record, current, earlier)

    def _keep_inner_moves(self, record: str, current: ID, earlier: Batch) -> None:
        """An element inside the moved one had been moved here meanwhile (the mover copied
        it from where it was): the copy is redirected to where that move took it.

        The old element is collected here (deleted content), so what was inside it is
        read from the record: the ranges whose new container lies in the copy."""
        redirect = record_key("r", current)
        for element, copy in self.table.units(record).items():
            now = earlier.container(element)
            if now is None or self.table.target_in(redirect, now[0]) is not None:
                continue  # not moved; or moved within what is redirected to the copy
            final = self.container(now[0]) or now
            ranges: list[list[Any]] = []
            for old, new in self._inside_copy(record, copy):
                place = earlier.resolve(old)
                if place is not None and place.unit is not None:
                    place = self.resolve(place.unit) or place
                if place is not None and place.paired and place.unit is not None:
                    tail = [place.key] if place.key is not None else []
                    ranges.append([*new, 1, *place.unit, PAIRED, *place.container, *tail])
            key = record_key("r", copy)
            self.records[key] = {"to": list(final[0]), "ranges": encode_ranges(ranges)}
            self.table.add(key, json.dumps(self.records[key]))
            self.table.reindex()
            self.deletes.append((copy, 1))

    def _inside_copy(self, record: str, copy: ID) -> list[tuple[ID, ID]]:
        """(old unit, new unit) of `record`'s paired units inside its new element `copy`."""
        by_container: dict[ID, list[tuple[ID, ID]]] = {}
        for r in self.table.ranges_of(record):
            if r.step == PAIRED:
                for i in range(r.length):
                    pair = ((r.client, r.clock + i), (r.new[0], r.new[1] + i))
                    by_container.setdefault(r.container, []).append(pair)
        found: list[tuple[ID, ID]] = []
        containers = [copy]
        while containers:
            for pair in by_container.pop(containers.pop(), []):
                found.append(pair)
                if pair[1] in by_container:
                    containers.append(pair[1])
        return found

    def _identities(self, items: list[RawItem], record: str) -> list[list[Any]]:
        """Ranges from each unit of `items` that was made (through any number of moves and
        forwards) from a unit `record` pairs, to that unit's copy in `record`'s element."""
        back = self.table.inverse()
        ranges: list[list[Any]] = []
        for item in items:
            for i in range(item.length):
                unit = (item.client, item.clock + i)
                old: ID | None = unit
                for _ in range(MAX_HOPS):
                    if old is None or self.table.target_in(record, old) is not None:
                        break
                    old = back.get(old)
                target = self.table.target_in(record, old) if old is not None else None
                if target is not None and target.paired and target.unit is not None:
                    tail = [target.key] if target.key is not None else []
                    ranges.append([*unit, 1, *target.unit, PAIRED, *target.container, *tail])
        return encode_ranges(ranges)

    # -- writing ----------------------------------------------------------------------------

    def update(self) -> bytes | None:
        """The forwarded items and deletions as one update (None: nothing to write)."""
        if not self.items and not self.deletes:
            return None
        start = self.items[0].clock if self.items else 0
        return encode_update(self.client, start, self.items, self.deletes)

    def write_records(self, moves: Map) -> None:
        """Write the batch's forward and redirect records (in the caller's transaction)."""
        for key, value in self.records.items():
            value["ranges"] = encode_ranges(value.get("ranges", []))
            moves[key] = json.dumps(value, separators=(",", ":"))


def _minus(lo: int, hi: int, holes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of ``lo..hi`` outside every hole."""
    parts = [(lo, hi)]
    for a, b in holes:
        parts = [
            piece
            for p, q in parts
            for piece in ((p, min(q, a)), (max(p, b), q))
            if piece[0] < piece[1]
        ]
    return parts


def _within(tree: ItemTree, parent: ID | str | None, inside: dict[ID | str, bool]) -> bool:
    """Whether `parent` is `inside`'s root or below it (answers remembered along the way)."""
    chain: list[ID | str] = []
    while parent is not None and parent not in inside and not isinstance(parent, str):
        chain.append(parent)
        holder = tree.find(parent)
        parent = tree.parent_of(holder)[0] if holder is not None else None
    answer = inside.get(parent, False) if parent is not None else False
    for link in chain:
        inside[link] = answer
    return answer
