"""`DocumentList`: the room's documents as the client reads them from the room document.

The server keeps the room document's `documents` map (path -> size, modified,
stored, open); this module reads it as plain data and tells subscribers when it
changes. The room document is a new `Doc` after every reconnection (it is
ephemeral, see `DocumentLink`), so the map is observed again after each sync
(`rebind`), and subscribers hear of what changed across the reconnection too.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from pycrdt import Doc, Map

__all__ = ["DocumentList", "DocumentsCallback", "document_entries"]

log = logging.getLogger("meshroom.client")

#: Called with the room's documents (path -> entry) after each change.
DocumentsCallback = Callable[[dict[str, dict[str, Any]]], None]


def document_entries(shared: Map) -> dict[str, dict[str, Any]]:
    """The `documents` map of a room document as plain data, numbers as ints (Yjs has
    floats). Takes the map, not the document: inside an observer (a read-only
    transaction) pycrdt refuses `Doc.get`."""
    raw = shared.to_py() or {}
    entries: dict[str, dict[str, Any]] = {}
    for path, value in raw.items():
        if not isinstance(value, dict):
            continue
        modified = value.get("modified")
        entries[path] = {
            "size": int(value.get("size") or 0),
            "modified": int(modified) if isinstance(modified, (int, float)) else None,
            "stored": bool(value.get("stored")),
            "open": sorted(str(item) for item in value.get("open") or []),
        }
    return dict(sorted(entries.items()))


class DocumentList:
    """Reads and watches the `documents` map of the room document `room_doc()` returns."""

    def __init__(self, room_doc: Callable[[], Doc]) -> None:
        self._room_doc = room_doc
        self._callbacks: list[DocumentsCallback] = []
        self._bound: tuple[Map, Any] | None = None
        self._last: dict[str, dict[str, Any]] = {}

    def current(self) -> dict[str, dict[str, Any]]:
        """Path -> {size, modified, stored, open}, now."""
        return document_entries(self._room_doc().get("documents", type=Map))

    def subscribe(self, callback: DocumentsCallback) -> Callable[[], None]:
        """Call `callback(documents)` after each change; return what unsubscribes it."""
        self._callbacks.append(callback)
        if self._bound is None:
            self._last = self.current()  # what it knows now; only changes are told
            self.rebind()

        def unsubscribe() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return unsubscribe

    def rebind(self) -> None:
        """Observe the current room document's map (after a sync: it may be a new `Doc`)."""
        if not self._callbacks and self._bound is None:
            return  # nobody listens: nothing to observe
        shared = self._room_doc().get("documents", type=Map)
        if self._bound is not None and self._bound[0] is not shared:
            old, subscription = self._bound
            with contextlib.suppress(Exception):  # the old document is gone already
                old.unobserve(subscription)
            self._bound = None
        if self._bound is None:
            self._bound = (shared, shared.observe_deep(lambda _events: self._changed(shared)))
        self._changed(shared)

    def _changed(self, shared: Map) -> None:
        try:
            entries = document_entries(shared)
        except Exception:  # pragma: no cover - defensive: never raise inside a commit
            log.exception("reading the room's documents failed")
            return
        if entries == self._last:
            return
        self._last = entries
        for callback in list(self._callbacks):
            try:
                callback(dict(entries))
            except Exception:  # a subscriber's bug must not break the room's sync
                log.exception("a documents callback failed")
