"""One live document of a room: its `pycrdt.Doc`, its awareness, the sessions editing it.

Every accepted change, from a client or from the embedding process, goes
through one place: the document's update observer. It relays the update to
every other session (without waiting: each session has its own bounded queue)
and hands it to the room, which calls the `on_change` hooks in order.

A peer's update goes in through the doc's `meshdoc` `Unsettled`: structs that follow a
gap in their client's clocks wait there (yrs would link them at once, without moving the
state vector, behind the back of a server-side `MeshDocument`), so only what the doc
integrated is ever relayed, published or logged, in the order it integrated. What waits
is relayed once the gap fills, to every session; snapshots (storage, cluster compaction)
carry it meanwhile. Sync step 2 does not: a peer could not integrate it before the gap
fills either, and a peer that links early as yrs does would be exposed to the same split.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pycrdt import Doc, TransactionEvent

from ._awareness import AwarenessStore
from ._protocol import encode_update

if TYPE_CHECKING:
    from meshdoc._update_gaps import Unsettled

    from ._session import Session

__all__ = ["LiveDocument", "unsettled_of"]

log = logging.getLogger("meshroom.server")


def unsettled_of(doc: Doc) -> Unsettled:
    """The updates waiting for a gap in `doc` (meshdoc's, shared by every path applying
    peers' updates to it: sessions, storage, cluster, client links, a `MeshDocument`).

    Imported on use: importing meshroom does not import meshdoc.
    """
    from meshdoc._update_gaps import unsettled_of as of_doc

    return of_doc(doc)


def _transaction_origin(doc: Doc) -> Any:
    """The origin of the transaction being committed (pycrdt does not pass it to observers)."""
    txn = getattr(doc, "_txn", None)
    origin_hash = getattr(txn, "_origin_hash", None)
    if origin_hash is None:
        return None
    return getattr(doc, "_origins", {}).get(origin_hash)


class LiveDocument:
    """A document held in memory while its room is open."""

    def __init__(
        self, room: str, path: str, on_change: Callable[[LiveDocument, bytes, Any], None]
    ) -> None:
        self.room = room
        self.path = path
        self.doc = Doc()
        self.awareness = AwarenessStore()
        #: Awareness client id -> the session that published it: only that session (or a
        #: later connection of the same participant) may change or remove that state.
        self.awareness_owners: dict[int, Session] = {}
        self.sessions: set[Session] = set()
        #: Called with every message `broadcast` queues (awareness from this process's
        #: connections), so that an extension can share it with other processes.
        self.broadcast_listeners: list[Callable[[bytes], None]] = []
        self._on_change = on_change
        #: Peers' updates (or their parts) waiting for a gap in their clocks to fill.
        self.unsettled = unsettled_of(self.doc)
        self._applying: Any = None
        self._subscription: Any = None

    def start_relaying(self) -> None:
        """Observe updates from now on (after loading, so loaded state is not a change)."""
        if self._subscription is None:
            self._subscription = self.doc.observe(self._observe)

    def stop_relaying(self) -> None:
        if self._subscription is not None:
            self.doc.unobserve(self._subscription)
            self._subscription = None

    def _observe(self, event: TransactionEvent) -> None:
        # Runs inside the transaction commit: must never raise (pycrdt would re-raise
        # an ExceptionGroup in whoever committed).
        try:
            update = event.update
            if update == b"\x00\x00":
                return
            origin = self._applying if self._applying is not None else _transaction_origin(self.doc)
            message = encode_update(update)
            for session in list(self.sessions):
                if session is not origin:
                    session.enqueue(message)
            self._on_change(self, update, origin)
        except Exception:  # pragma: no cover - defensive: a bug here must not break writers
            log.exception("relaying an update of %r/%r failed", self.room, self.path)

    def apply(self, update: bytes, origin: Any) -> None:
        """Apply a peer's update; `origin` (its session) is excluded from the relay.

        Raises:
            ValueError: the bytes are not a Yjs update (the document is unchanged).
        """
        unsettled = self.unsettled
        self._applying = origin
        try:
            unsettled.integrate(self.doc, update)
        finally:
            self._applying = None
        # What waited and now follows on goes to every session, `origin` included: the
        # structs that waited may have come from any peer, not this one.
        unsettled.settle(self.doc)

    def broadcast(self, message: bytes) -> None:
        """Queue `message` to every session of this document (the sender included)."""
        for session in list(self.sessions):
            session.enqueue(message)
        for listener in self.broadcast_listeners:
            listener(message)
