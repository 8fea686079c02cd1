"""`Peer`: a connection as the documents, rooms and the send budget see it; `CallPeer`:
a participant's end of room calls (tool calls and work queues).

A `LiveDocument` relays to its peers, a `Room` lists them, the `SendBudget` sheds the
slowest; none of them needs more of a `Session` than a queue to push into and a way to cut
it off. Naming that as a protocol keeps the session on top: it imports the document and the
room, and nothing imports it back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ._hooks import Access

__all__ = ["CallPeer", "Peer"]


class Peer(Protocol):
    """One connection's outgoing side (`Session` is the one shipped)."""

    def enqueue(self, message: bytes) -> None:
        """Queue `message` for the connection (never blocks; a full queue closes it)."""
        ...

    def kill(self, code: int, reason: str) -> None:
        """Close the connection with `code` and `reason` now, from any callback."""
        ...


class CallPeer(Protocol):
    """A participant's end of room calls: a room-document session or an in-process peer."""

    @property
    def access(self) -> Access: ...

    def send_room_call(self, call: dict[str, Any]) -> None:
        """Deliver one room call to the participant (never blocks)."""
        ...
