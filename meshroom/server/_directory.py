"""`Directory`: the room document's `documents` map, kept up to date by the server.

One entry per document the room knows of, stored or open (docs/room-document.md)::

    documents: Map   path -> {"size", "modified", "stored", "open": [participant id, ...]}

Its sources are the room's: the extensions' lists of stored documents when the room
opens (`Extension.on_list_documents`), the documents it loads, the connections and
server-side handles that open and close them, the saves a storing extension reports
(`LoadDocumentPayload.saved`) and `Server.delete_document`. The entries go into the
room document through `Presence.set_entry`, so a client that writes the map is
repaired like any forgery of a server map. Nothing here reads storage: a directory
only hears what the room tells it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._hooks import DocumentInfo
    from ._presence import Presence

__all__ = ["Directory"]

#: The server map this module keeps.
DOCUMENTS = "documents"


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds * 1000)


@dataclass
class _Entry:
    size: int = 0
    modified: int | None = None
    stored: bool = False
    #: Participant id -> how many of their connections (or handles) have it open.
    open: Counter[str] = field(default_factory=Counter)
    #: Server-side handles without a participant (they keep it from being deleted).
    anonymous: int = 0

    def shape(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "modified": self.modified,
            "stored": self.stored,
            "open": sorted(self.open),
        }


class Directory:
    """The `documents` map of one room's room document (see the module docstring)."""

    def __init__(self, presence: Presence) -> None:
        self._presence = presence
        self._entries: dict[str, _Entry] = {}
        #: Paths deleted or saved since the listing began: the listing, older, loses.
        self._touched: set[str] = set()

    # -- what the room tells it ---------------------------------------------------------------

    def listing_started(self) -> None:
        """The extensions are being asked for the stored documents (see `stored`)."""
        self._touched.clear()

    def stored(self, infos: Iterable[DocumentInfo]) -> None:
        """Merge the extensions' lists of stored documents (what happened since wins)."""
        for info in infos:
            if info.path in self._touched:
                continue
            entry = self._entries.setdefault(info.path, _Entry())
            entry.stored = True
            entry.size = max(entry.size, int(info.size))
            modified = _ms(info.modified)
            if modified is not None and (entry.modified is None or modified > entry.modified):
                entry.modified = modified
            self._publish(info.path)
        self._touched.clear()

    def loaded(self, path: str) -> None:
        """The room holds a live document at `path` (opening a path creates it)."""
        if path not in self._entries:
            self._entries[path] = _Entry()
            self._publish(path)

    def saved(self, path: str, size: int, modified: float) -> None:
        """A storing extension wrote `path`: `size` bytes stored, at Unix time `modified`."""
        self._touched.add(path)
        entry = self._entries.setdefault(path, _Entry())
        entry.stored = True
        entry.size = int(size)
        entry.modified = _ms(modified)
        self._publish(path)

    def opened(self, path: str, participant_id: str | None) -> None:
        """One more connection or handle (of `participant_id`, or of nobody) holds `path`."""
        entry = self._entries.setdefault(path, _Entry())
        if participant_id is None:
            entry.anonymous += 1
            return
        entry.open[participant_id] += 1
        self._publish(path)

    def closed(self, path: str, participant_id: str | None) -> None:
        """One connection or handle let go of `path`."""
        entry = self._entries.get(path)
        if entry is None:
            return
        if participant_id is None:
            entry.anonymous = max(0, entry.anonymous - 1)
            return
        entry.open[participant_id] -= 1
        if entry.open[participant_id] <= 0:
            del entry.open[participant_id]
        self._publish(path)

    def deleted(self, path: str) -> None:
        """`path` was deleted: it leaves the map."""
        self._touched.add(path)
        self._entries.pop(path, None)
        self._presence.remove_entry(DOCUMENTS, path)

    # -- what it says -------------------------------------------------------------------------

    def holders(self, path: str) -> list[str]:
        """Who has `path` open: participant ids, and ``"(server)"`` for anonymous handles."""
        entry = self._entries.get(path)
        if entry is None:
            return []
        return sorted(entry.open) + ["(server)"] * (entry.anonymous > 0)

    def entries(self) -> dict[str, dict[str, Any]]:
        """Path -> the entry clients see, as plain data (in a cluster, every process's)."""
        return dict(sorted(self._presence.entries(DOCUMENTS).items()))

    def _publish(self, path: str) -> None:
        self._presence.set_entry(DOCUMENTS, path, self._entries[path].shape())
