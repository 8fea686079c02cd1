"""One document and its awareness on the y-websocket wire, whatever socket carries them.

Apart from the link because this is the part that follows the Yjs protocols, not the
network: what each sync or awareness message from the server does to the `Doc`, which
local edits and awareness changes go out, and keeping awareness alive. It never sees a
socket: it sends through the `send` it is given (the link's queue, which drops messages
while offline) and reports changes through `on_change`.

Remote updates are applied in a transaction whose origin is the link's, and are not
echoed back. Structs that follow a gap in their client's clocks wait (meshdoc's
`Unsettled`, shared with the `MeshDocument` over the same doc) until the gap fills, as
Yjs keeps them pending.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio
from pycrdt import (
    Awareness,
    Doc,
    TransactionEvent,
    YMessageType,
    YSyncMessageType,
    create_awareness_message,
    create_sync_message,
    create_update_message,
    read_message,
    write_message,
)

from meshdoc.updates import unsettled_of

__all__ = ["AWARENESS_OUTDATED", "DocumentSync"]

_MESSAGE_QUERY_AWARENESS = 3
_EMPTY_UPDATE = b"\x00\x00"

#: Seconds after which a silent peer's awareness is dropped; ours is re-announced at half
#: of it (default 30 s, y-protocols' `outdatedTimeout`, so JS peers agree).
AWARENESS_OUTDATED = 30.0


def _sync_step2(update: bytes) -> bytes:
    return bytes([YMessageType.SYNC, YSyncMessageType.SYNC_STEP2]) + write_message(update)


class DocumentSync:
    """Keeps `doc` and its awareness in step with the messages of a y-websocket server.

    Args:
        doc: The document; its local edits are sent, remote ones applied.
        user: Published as the awareness field `user` (name, kind, id).
        origin: Transaction origin of the updates that came from the server.
        send: Queues one message for the server (dropped while offline).
        on_change: Called (synchronously) after any remote update or awareness change.
    """

    def __init__(
        self,
        doc: Doc,
        *,
        user: dict[str, Any],
        origin: object,
        send: Callable[[bytes], None],
        on_change: Callable[[], None],
    ) -> None:
        self.doc = doc
        self.unsettled = unsettled_of(doc)
        self.origin = origin
        self.awareness = Awareness(doc, outdated_timeout=int(AWARENESS_OUTDATED * 1000))
        self.awareness.set_local_state({"user": user})
        self._send = send
        self._on_change = on_change
        self._applying_remote = False
        self._doc_subscription = doc.observe(self._on_doc_update)
        self._awareness_subscription = self.awareness.observe(self._on_awareness)

    def greeting(self) -> list[bytes]:
        """What a new connection sends first: sync step 1 (our state vector), our awareness."""
        messages = [create_sync_message(self.doc)]
        local = self.awareness.get_local_state()
        if local is not None:
            update = self.awareness.encode_awareness_update([self.awareness.client_id])
            messages.append(create_awareness_message(update))
        return messages

    def handle(self, message: bytes) -> bool:
        """Apply one sync or awareness message; return whether it was sync step 2.

        Other message types are not this module's, and are ignored.

        Raises:
            ValueError, IndexError, RuntimeError: the bytes are not y-websocket, or the
                update is corrupt.
        """
        kind = message[0]
        if kind == YMessageType.SYNC and len(message) > 1:
            step = message[1]
            payload = read_message(message[2:])
            if step == YSyncMessageType.SYNC_STEP1:
                # with what waits for a gap: the server keeps it until the gap fills
                self._send(_sync_step2(self.unsettled.encode(self.doc, payload)))
            elif step in (YSyncMessageType.SYNC_STEP2, YSyncMessageType.SYNC_UPDATE):
                self._apply_remote(payload)
                return step == YSyncMessageType.SYNC_STEP2
        elif kind == YMessageType.AWARENESS:
            self.awareness.apply_awareness_update(read_message(message[1:]), self.origin)
        elif kind == _MESSAGE_QUERY_AWARENESS:
            ids = list(self.awareness.states)
            update = self.awareness.encode_awareness_update(ids)
            self._send(create_awareness_message(update))
        return False

    def set_user(self, user: dict[str, Any]) -> None:
        """Publish `user` as our awareness field ``user`` (keeping the other fields)."""
        state = dict(self.awareness.get_local_state() or {})
        if state.get("user") != user:
            state["user"] = user
            self.awareness.set_local_state(state)

    async def renew_awareness(self) -> None:
        """Re-announce our state and forget silent peers, as pycrdt's `Awareness.start` does."""
        outdated = AWARENESS_OUTDATED
        while True:
            await anyio.sleep(outdated / 10)
            local = self.awareness.get_local_state()
            meta = self.awareness.meta.get(self.awareness.client_id)
            now = time.time()
            if local is not None and meta and now - meta["lastUpdated"] / 1000 >= outdated / 2:
                self.awareness.set_local_state(local)
            silent = [
                client
                for client, client_meta in self.awareness.meta.items()
                if client != self.awareness.client_id
                and client in self.awareness.states
                and now - client_meta["lastUpdated"] / 1000 >= outdated
            ]
            if silent:
                self.awareness.remove_awareness_states(silent, "timeout")

    def drop_remote_awareness(self) -> None:
        """Forget every peer's awareness (the connection that carried it is gone)."""
        others = [client for client in self.awareness.states if client != self.awareness.client_id]
        if others:
            self.awareness.remove_awareness_states(others, "disconnect")

    def replace_doc(self) -> None:
        """Start over from a new, empty `Doc` (the awareness stays)."""
        self.doc.unobserve(self._doc_subscription)
        self.doc = Doc()
        self.unsettled = unsettled_of(self.doc)
        self._doc_subscription = self.doc.observe(self._on_doc_update)

    def unobserve(self) -> None:
        """Stop sending local edits and awareness changes."""
        self.doc.unobserve(self._doc_subscription)
        self.awareness.unobserve(self._awareness_subscription)

    def _apply_remote(self, update: bytes) -> None:
        if update == _EMPTY_UPDATE:
            return
        doc = self.doc
        unsettled = self.unsettled
        self._applying_remote = True
        try:
            with doc.transaction(origin=self.origin):
                unsettled.integrate(doc, update)
        finally:
            self._applying_remote = False
        if unsettled:
            # What waited and now follows on is sent on to the server: it may have come
            # from elsewhere (an update applied to the document by its user).
            with doc.transaction(origin=self.origin):
                unsettled.settle(doc)
        self._on_change()

    def _on_doc_update(self, event: TransactionEvent) -> None:
        if self._applying_remote:
            return  # came from the server: never echo it back
        update = event.update
        if update != _EMPTY_UPDATE:
            self._send(create_update_message(update))

    def _on_awareness(self, topic: str, payload: tuple[dict[str, Any], Any]) -> None:
        changes, origin = payload
        if topic == "update" and origin == "local":
            ids = changes["added"] + changes["updated"] + changes["removed"]
            update = self.awareness.encode_awareness_update(ids)
            self._send(create_awareness_message(update))
        elif topic == "change":
            self._on_change()
