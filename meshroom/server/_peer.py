"""`Peer`: a connection as the documents, rooms and the send budget see it.

A `LiveDocument` relays to its peers, a `Room` lists them, the `SendBudget` sheds the
slowest; none of them needs more of a `Session` than a queue to push into and a way to cut
it off. Naming that as a protocol keeps the session on top: it imports the document and the
room, and nothing imports it back.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Peer"]


class Peer(Protocol):
    """One connection's outgoing side (`Session` is the one shipped)."""

    def enqueue(self, message: bytes) -> None:
        """Queue `message` for the connection (never blocks; a full queue closes it)."""
        ...

    def kill(self, code: int, reason: str) -> None:
        """Close the connection with `code` and `reason` now, from any callback."""
        ...
