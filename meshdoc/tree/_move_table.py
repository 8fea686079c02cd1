"""Where a moved element's items went: the records a move leaves, read into one table.

A move re-creates an element's subtree under new item IDs and deletes the old one. So that
an edit made concurrently inside the old subtree can be made again at the new place (see
`_forward.py`), the move writes, in the same transaction, a record into the document's
``f"{fragment}:moves"`` map: key ``m:<client>:<clock>`` (the new element's ID: two peers
may move one element at once), value a JSON object ``{"from": [client, clock], "ranges":
[...]}``. Forwarding adds
``f:<client>:<clock>`` entries (``{"root": [client, clock], "ranges": [...]}``) for the
items it re-made, and ``r:<client>:<clock>`` entries (``{"to": [client, clock], "ranges":
[...]}``) when two moves of one element met: the later copy is deleted and redirected
to the first. A range is
``[client, clock, length, new_client, new_clock, step, container_client, container_clock]``
(and the attribute key, for attribute values):

- step 1, *paired*: old unit ``clock + i`` is new unit ``new_clock + i``;
- step 0, *anchored*: every old unit (deleted, or a format mark) is placed after the one
  new unit, the copy of the visible unit before it;
- step 2, *at the start*: nothing visible came before: the old units sit at the start of
  the new container (for an attribute value: the key of the new element).
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from ._items import ID, covering

__all__ = [
    "ANCHORED",
    "AT_START",
    "PAIRED",
    "MoveTable",
    "Range",
    "key_id",
    "parse_key",
    "record_key",
]

ANCHORED, PAIRED, AT_START = 0, 1, 2


class Range(NamedTuple):
    client: int
    clock: int
    length: int
    new: ID  #: the first new unit (step 1, 0), or the container (step 2)
    step: int
    container: ID  #: the new parent of the new units
    key: str | None  #: the attribute key, for attribute values
    root: ID  #: the old ID of the moved element this range belongs to
    record: str  #: the key of the record it comes from


class Target(NamedTuple):
    """Where an old unit went: a new unit, or (`unit` None) the start of `container`."""

    unit: ID | None
    paired: bool
    container: ID
    key: str | None
    root: ID


def record_key(kind: str, ident: ID) -> str:
    return f"{kind}:{ident[0]}:{ident[1]}"


def parse_key(key: str) -> tuple[str, ID] | None:
    parts = key.split(":")
    if len(parts) != 3 or parts[0] not in "mfr" or not all(p.isdigit() for p in parts[1:]):
        return None
    return parts[0], (int(parts[1]), int(parts[2]))


def key_id(key: str) -> ID:
    """The ID a record's key names."""
    _, client, clock = key.split(":")
    return int(client), int(clock)


def encode_ranges(ranges: list[list[Any]]) -> list[list[Any]]:
    """Ranges with consecutive runs merged (the same step, both sides one clock further)."""
    merged: list[list[Any]] = []
    for r in ranges:
        if merged:
            m = merged[-1]
            follows = m[0] == r[0] and m[1] + m[2] == r[1] and m[5] == r[5] and m[6:] == r[6:]
            same_new = (m[3], m[4]) == (r[3], r[4])
            if follows and (
                (r[5] == PAIRED and m[3] == r[3] and m[4] + m[2] == r[4])
                or (r[5] != PAIRED and same_new)
            ):
                m[2] += r[2]
                continue
        merged.append(list(r))
    return merged


class MoveTable:
    """Every record of a document's moves map, looked up by old ID."""

    def __init__(self) -> None:
        self.roots: dict[ID, ID] = {}  #: old element -> its copy
        self.sources: dict[str, ID] = {}  #: move record key -> the old element
        self._starts: dict[int, list[int]] = {}
        self._ranges: dict[int, list[Range]] = {}
        self.keys: set[str] = set()

    def __bool__(self) -> bool:
        return bool(self.keys)

    @classmethod
    def read(cls, entries: dict[str, Any]) -> MoveTable:
        """The table of a moves map's entries (unreadable ones are left out)."""
        table = cls()
        for key in sorted(entries, key=lambda k: not k.startswith("m:")):
            table.add(key, entries[key])
        table.reindex()
        return table

    def add(self, key: str, value: Any) -> None:
        parsed = parse_key(key)
        try:
            data = json.loads(value) if isinstance(value, str) else None
            ranges = data["ranges"] if isinstance(data, dict) else None
        except (ValueError, KeyError, TypeError):
            return
        if parsed is None or not isinstance(ranges, list):
            return
        kind, ident = parsed
        if kind == "m":
            source = data.get("from")
            if not (isinstance(source, list) and len(source) == 2):
                return
            root = (int(source[0]), int(source[1]))
            self.roots.setdefault(root, ident)
            self.sources[key] = root
        elif kind == "r":
            to = data.get("to")
            if not (isinstance(to, list) and len(to) == 2):
                return
            self.roots[ident] = (int(to[0]), int(to[1]))
            root = ident
        else:
            found = data.get("root")
            if not (isinstance(found, list) and len(found) == 2):
                return
            root = (int(found[0]), int(found[1]))
        self.keys.add(key)
        for r in ranges:
            if not isinstance(r, list) or len(r) < 8:
                continue
            self._ranges.setdefault(int(r[0]), []).append(
                Range(
                    int(r[0]), int(r[1]), int(r[2]), (int(r[3]), int(r[4])), int(r[5]),
                    (int(r[6]), int(r[7])), r[8] if len(r) > 8 else None, root, key,
                )
            )  # fmt: skip

    def reindex(self) -> None:
        """Sort the ranges for lookups (after `add`)."""
        for client, ranges in self._ranges.items():
            ranges.sort(key=lambda r: r.clock)
            self._starts[client] = [r.clock for r in ranges]

    def range_of(self, ident: ID) -> Range | None:
        return covering(self._starts.get(ident[0], []), self._ranges.get(ident[0], []), ident[1])

    def target(self, ident: ID) -> Target | None:
        """Where old unit `ident` went, if it was inside a moved element."""
        r = self.range_of(ident)
        return None if r is None else self._target(r, ident)

    def _target(self, r: Range, ident: ID) -> Target:
        if r.step == PAIRED:
            return Target(
                (r.new[0], r.new[1] + ident[1] - r.clock), True, r.container, r.key, r.root
            )
        if r.step == ANCHORED:
            return Target(r.new, False, r.container, r.key, r.root)
        return Target(None, False, r.container, r.key, r.root)

    def ranges_of(self, record: str) -> list[Range]:
        return [r for ranges in self._ranges.values() for r in ranges if r.record == record]

    def units(self, record: str) -> dict[ID, ID]:
        """Old unit -> new unit, over `record`'s paired ranges."""
        found: dict[ID, ID] = {}
        for r in self.ranges_of(record):
            if r.step == PAIRED:
                for i in range(r.length):
                    found[(r.client, r.clock + i)] = (r.new[0], r.new[1] + i)
        return found

    def inverse(self) -> dict[ID, ID]:
        """New unit -> the old unit it is the copy of, over every paired range."""
        found: dict[ID, ID] = {}
        for ranges in self._ranges.values():
            for r in ranges:
                if r.step == PAIRED:
                    for i in range(r.length):
                        found[(r.new[0], r.new[1] + i)] = (r.client, r.clock + i)
        for key, source in self.sources.items():  # a moved element is its copy's original
            found[key_id(key)] = source
        for key in self.keys:
            if key.startswith("r:"):
                found[self.roots[key_id(key)]] = key_id(key)
        return found

    def target_in(self, record: str, ident: ID) -> Target | None:
        """Where old unit `ident` went by the ranges of `record` alone."""
        for r in self._ranges.get(ident[0], ()):
            if r.record == record and r.clock <= ident[1] < r.clock + r.length:
                return self._target(r, ident)
        return None

    def spans(self, client: int, clock: int, length: int) -> list[Range]:
        """Every range (of any step) overlapping old units ``clock..clock+length``."""
        end = clock + length
        return [
            r for r in self._ranges.get(client, ()) if r.clock < end and clock < r.clock + r.length
        ]

    def paired_spans(self, client: int, clock: int, length: int) -> list[tuple[Range, int, int]]:
        """The paired ranges overlapping old units ``clock..clock+length``: each with the
        first overlapping clock and the overlap's length."""
        found = []
        end = clock + length
        for r in self._ranges.get(client, ()):
            if r.step != PAIRED or r.clock >= end or r.clock + r.length <= clock:
                continue
            start = max(clock, r.clock)
            found.append((r, start, min(end, r.clock + r.length) - start))
        return found
