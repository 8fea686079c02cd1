"""Awareness across processes: what one document's local connections publish, others show.

Awareness is ephemeral, so it travels in a capped stream per document (old
entries may be trimmed: only the latest state of each client matters, and
clients renew theirs every 15 s). Entries from other processes are applied to
the document's `AwarenessStore` with the y-protocols clock rules and queued to
the local connections directly (never through `broadcast`, which would publish
them again). A client whose process died stops renewing: its state is dropped
`timeout` seconds after its last renewal, and the removal reaches local clients.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio

from ..protocol._messages import (
    AwarenessMessage,
    decode_awareness_update,
    decode_message,
    encode_awareness,
    encode_awareness_update,
)

if TYPE_CHECKING:
    from ..server._document import LiveDocument

__all__ = ["AwarenessRelay"]

log = logging.getLogger("meshroom.cluster")


class AwarenessRelay:
    """The cross-process awareness of one live document."""

    def __init__(
        self,
        document: LiveDocument,
        key: str,
        last_id: bytes,
        publish: Callable[[str, bytes], None],
        timeout: float,
    ) -> None:
        self.key = key
        self.last_id = last_id
        self._document = weakref.ref(document)
        self._publish = publish
        self._timeout = timeout
        #: Client ids whose state came from another process -> when it was last renewed.
        self._remote: dict[int, float] = {}
        document.broadcast_listeners.append(self._local)

    @property
    def alive(self) -> bool:
        return self._document() is not None

    def _local(self, message: bytes) -> None:
        """A `broadcast` listener: share awareness this process accepted."""
        try:
            decoded = decode_message(message)
        except Exception:  # pragma: no cover - broadcast only carries encoded messages
            return
        if isinstance(decoded, AwarenessMessage):
            for entry in decode_awareness_update(decoded.update):
                self._remote.pop(entry.client_id, None)  # a local connection owns it now
            self._publish(self.key, decoded.update)

    def apply_remote(self, update: bytes) -> None:
        """Apply another process's awareness update; relay what was accepted locally."""
        document = self._document()
        if document is None:
            return
        try:
            entries = decode_awareness_update(update)
        except Exception:
            log.error("cluster: skipping an undecodable awareness entry of %r", self.key)
            return
        accepted = document.awareness.apply(entries)
        now = anyio.current_time()
        for entry in accepted:
            if entry.state is None:
                self._remote.pop(entry.client_id, None)
            else:
                self._remote[entry.client_id] = now
        if accepted:
            self._send(document, encode_awareness_update(accepted))

    def expire(self) -> None:
        """Drop remote states not renewed within `timeout` (their process is gone)."""
        document = self._document()
        if document is None or not self._remote:
            return
        deadline = anyio.current_time() - self._timeout
        stale = [client_id for client_id, seen in self._remote.items() if seen < deadline]
        for client_id in stale:
            del self._remote[client_id]
        removal = document.awareness.remove(stale) if stale else None
        if removal is not None:
            self._send(document, removal)

    @staticmethod
    def _send(document: LiveDocument, update: bytes) -> None:
        message = encode_awareness(update)
        for session in list(document.sessions):
            session.enqueue(message)
