"""`MapUnion`: one room's server maps as the union of this process's entries and others'.

In a cluster (`meshroom.cluster`), every process serving a room keeps its own room
document, and each lists what it knows itself (its connections' participants, the
toolkits offered on them, the documents open here). The other processes publish
theirs; the room document shows the union, so every process shows the same room.
Kept apart from `Presence`, which writes the union into the room document and repairs
forgeries against it, because how entries of the same key combine is a rule of its
own, one per map:

- ``participants``: a participant connected to several processes is listed once,
  with the entry of the connection that joined first (ties: the smaller process id),
  and is gone only when no process lists them;
- ``documents``: who has it open is the union of the lists, it is stored if any
  process says so, and the size and time come from the newest write known;
- any other map (``toolkits``, ``queues``): this process's entry first, else the
  entry of the smallest process id that has one.

Without a cluster there is no remote entry and the union is the local map itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["MISSING", "MapUnion"]

#: What `MapUnion.value` returns for a key no process lists.
MISSING: Any = object()


class MapUnion:
    """Local and remote entries of the server maps `roots` (see the module docstring)."""

    def __init__(self, roots: Iterable[str]) -> None:
        self.roots = tuple(roots)
        #: This process's own entries, by map.
        self.local: dict[str, dict[str, Any]] = {root: {} for root in self.roots}
        #: Other processes' entries: process id -> map -> key -> entry.
        self.remote: dict[str, dict[str, dict[str, Any]]] = {}
        #: This process's id in the cluster (None: not in one), for the participants rule.
        self.process: str | None = None

    def set_remote(self, process: str, root: str, entries: dict[str, Any]) -> set[str]:
        """Replace `process`'s entries of `root`; return the keys whose union may change."""
        maps = self.remote.setdefault(process, {})
        before = maps.get(root, {})
        maps[root] = dict(entries)
        return set(before) | set(entries)

    def drop_remote(self, process: str) -> dict[str, set[str]]:
        """Forget `process`; return, per map, the keys whose union may change."""
        maps = self.remote.pop(process, {})
        return {root: set(entries) for root, entries in maps.items() if entries}

    def processes(self) -> list[str]:
        """The other processes whose entries are held."""
        return sorted(self.remote)

    def value(self, root: str, key: str) -> Any:
        """The entry the room document shows for `key` of `root` (or `MISSING`)."""
        local = self.local[root].get(key, MISSING)
        remote = [
            (process, maps[root][key])
            for process, maps in sorted(self.remote.items())
            if key in maps.get(root, {})
        ]
        if not remote:
            return local
        candidates = ([(self.process or "", local)] if local is not MISSING else []) + remote
        if root == "participants":
            return _first_joined(candidates)
        if root == "documents":
            return _document_union([entry for _, entry in candidates])
        return candidates[0][1]


def _first_joined(candidates: list[tuple[str, Any]]) -> Any:
    def order(candidate: tuple[str, Any]) -> tuple[float, str]:
        process, entry = candidate
        joined = entry.get("joinedAt") if isinstance(entry, dict) else None
        return (joined if isinstance(joined, (int, float)) else float("inf"), process)

    return min(candidates, key=order)[1]


def _document_union(entries: list[Any]) -> Any:
    shaped = [entry for entry in entries if isinstance(entry, dict)]
    if not shaped:
        return entries[0]

    def newest(entry: dict[str, Any]) -> tuple[int, int]:
        modified = entry.get("modified")
        size = entry.get("size")
        return (
            modified if isinstance(modified, int) else -1,
            size if isinstance(size, int) else 0,
        )

    best = max(shaped, key=newest)
    holders: set[str] = set()
    for entry in shaped:
        holders.update(holder for holder in entry.get("open", ()) if isinstance(holder, str))
    return {
        "size": best.get("size", 0),
        "modified": best.get("modified"),
        "stored": any(bool(entry.get("stored")) for entry in shaped),
        "open": sorted(holders),
    }
