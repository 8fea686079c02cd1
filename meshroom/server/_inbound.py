"""`Inbound`: what a client's writes may change, and how they are applied.

Updates go to the live document (refused for read-only access, or while storage holds too
much unwritten); the room document only takes a participant's own messages (read-only or
not, unless its access says it may not post: `Access.may_message`); awareness
states are owned by the connection that first published their client id. Each refusal
counts as a violation, and too many close the connection.

`Session` builds on it and dispatches the client's messages here.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from meshdoc.updates import check_update

from .._exceptions import ProtocolError
from ..protocol._close_codes import CloseCode
from ..protocol._messages import (
    EMPTY_UPDATE,
    decode_awareness_update,
    encode_awareness,
    encode_awareness_update,
)
from ._outbox import Outbox

if TYPE_CHECKING:
    from ._budget import SendBudget
    from ._connection import Connection
    from ._document import LiveDocument
    from ._hooks import Access
    from ._limits import Limits
    from ._room import Room

__all__ = ["MAX_AWARENESS_IDS", "MAX_AWARENESS_UPDATE", "Inbound"]

log = logging.getLogger("meshroom.server")

#: Awareness client ids one connection may publish. A Yjs client uses one per document;
#: the cap keeps a hostile connection from filling the awareness store with random ids.
MAX_AWARENESS_IDS = 8
#: Largest awareness update a client may send, in bytes. A cursor and a name take a few
#: hundred; the states are kept until the client leaves and decoded JSON takes up to 25
#: times its text (a 16 MiB update of empty objects: 416 MiB), so a connection's states
#: (at most `MAX_AWARENESS_IDS` of them) stay within tens of MiB.
MAX_AWARENESS_UPDATE = 256 * 1024


class Inbound(Outbox):
    """The receiving half of a session: a client's updates, room messages and awareness."""

    __slots__ = ("_owned_ids", "access", "client_ids", "document", "room", "violations")

    def __init__(
        self,
        connection: Connection,
        room: Room,
        document: LiveDocument,
        access: Access,
        limits: Limits,
        budget: SendBudget | None,
    ) -> None:
        super().__init__(connection, limits, budget)
        self.room = room
        self.document = document
        self.access = access
        self.violations = 0
        #: Awareness client ids this connection published (removed when it leaves).
        self.client_ids: set[int] = set()
        #: Awareness client ids this connection owns in `document.awareness_owners`.
        self._owned_ids: set[int] = set()

    def _violation(self, reason: str) -> None:
        self.violations += 1
        log.info("dropped a write from %r: %s (%d)", self, reason, self.violations)
        if self.violations > self._limits.read_only_violations:
            code = CloseCode.READ_ONLY_VIOLATION if self.access.read_only else CloseCode.FORBIDDEN
            self.kill(code, f"{reason} ({self.violations} writes refused)")

    def _apply(self, update: bytes) -> None:
        if update == EMPTY_UPDATE:
            return
        if self.document.path == "":
            # what a client may write there is its own messages, read-only or not: posting
            # is its own permission (`Access.may_message`), checked with the messages
            self._apply_to_room_document(update)
            return
        if self.access.read_only:
            self._violation("read-only access: writes are not applied")
            return
        if self.document.unwritten_bytes > self._limits.unwritten_bytes:
            self.kill(
                CloseCode.STORAGE_UNAVAILABLE,
                f"storage is not writing this document ({self.document.unwritten_bytes} "
                "bytes wait): reconnect later, your edits are kept",
            )
            return
        try:
            self.document.apply(update, self)
        except (ValueError, RuntimeError) as error:
            # RuntimeError: yrs refused an update that passed the checks (a struct whose
            # parent cannot hold it); this connection is closed as sending bad bytes.
            raise ProtocolError(f"not a Yjs update: {error}") from None

    def _apply_to_room_document(self, update: bytes) -> None:
        """Only appending own messages is allowed (if `Access.may_message`); forgeries are
        refused or repaired.

        The update is checked before it reaches the room document's scratch copy: that
        copy is applied to directly, not through the document's `Unsettled`.
        """
        try:
            check_update(update)
        except ValueError as error:
            raise ProtocolError(f"not a Yjs update: {error}") from None
        presence = self.room.presence

        def apply(repaired: bool) -> None:
            # A repaired update is relayed to everyone, the sender included: it must
            # see the repair too.
            self.document.apply(update, None if repaired else self)

        try:
            problem = presence.apply_client_update(
                update, self.access.participant_id, apply, may_post=self.access.may_message
            )
        except ValueError as error:
            message = str(error)
            if not message.startswith("not a Yjs update"):
                message = f"not a Yjs update: {message}"
            raise ProtocolError(message) from None
        presence.trim()
        if problem is not None:
            self._violation(f"room document: {problem}")

    def _owns(self, client_id: int) -> bool:
        """Claim `client_id` for this connection if free; True if this connection owns it."""
        owners = self.document.awareness_owners
        owner = owners.get(client_id)
        if owner is self:
            return True
        if owner is not None and owner.access.participant_id != self.access.participant_id:
            return False  # another participant's state: never changed from here
        if owner is None and len(self._owned_ids) >= MAX_AWARENESS_IDS:
            return False
        if owner is not None:  # the same participant reconnected: the new socket takes over
            owner._owned_ids.discard(client_id)
            owner.client_ids.discard(client_id)
        owners[client_id] = self
        self._owned_ids.add(client_id)
        return True

    def _awareness(self, update: bytes) -> None:
        if len(update) > MAX_AWARENESS_UPDATE:
            raise ProtocolError(
                f"awareness update of {len(update)} bytes exceeds {MAX_AWARENESS_UPDATE}"
            )
        entries = decode_awareness_update(update)
        allowed = [entry for entry in entries if self._owns(entry.client_id)]
        if len(allowed) < len(entries):
            log.info("dropped awareness from %r for client ids it does not own", self)
        accepted = self.document.awareness.apply(allowed)
        if not accepted:
            return
        for entry in accepted:
            if entry.state is None:
                self.client_ids.discard(entry.client_id)
            else:
                self.client_ids.add(entry.client_id)
        self.document.broadcast(encode_awareness(encode_awareness_update(accepted)))

    def remove_awareness(self) -> None:
        """Tell everyone this connection's awareness states are gone (on disconnect)."""
        removal = self.document.awareness.remove(self.client_ids)
        self.client_ids.clear()
        owners = self.document.awareness_owners
        for client_id in self._owned_ids:
            if owners.get(client_id) is self:
                del owners[client_id]
        self._owned_ids.clear()
        if removal is not None:
            self.document.broadcast(encode_awareness(removal))
