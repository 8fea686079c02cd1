"""Publishing this process's awareness: one bounded outbox, sent by one task.

Awareness is ephemeral, so unlike document updates it may be dropped when the
outbox is full (a client renews its state every 15 s anyway); at shutdown the
outbox is sent out first, so the removals of this process's clients reach the
other processes at once rather than after their timeout.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import anyio

from ._awareness import AwarenessRelay
from ._streams import encode_entry

if TYPE_CHECKING:
    from ..server._document import LiveDocument

__all__ = ["AwarenessOutbox"]

log = logging.getLogger("meshroom.cluster")


class AwarenessOutbox:
    """Follows documents' awareness streams and publishes local awareness to them."""

    def __init__(self, client: Any, *, maxlen: int, timeout: float) -> None:
        self._client = client
        self._maxlen = maxlen
        self._timeout = timeout
        self._send, self._receive = anyio.create_memory_object_stream[tuple[str, bytes, bytes]](
            10_000
        )
        self._drained = anyio.Event()

    async def follow(self, document: LiveDocument, key: str, token: bytes) -> AwarenessRelay:
        """Apply the other processes' recent awareness, then relay it both ways."""
        seconds, microseconds = await self._client.time()
        start = int(seconds * 1000 + microseconds // 1000 - self._timeout * 1000)
        recent = await self._client.xrange(key, min=str(start), max="+")
        last_id = recent[-1][0] if recent else f"{start}-0".encode()

        def publish(stream: str, update: bytes) -> None:
            try:
                self._send.send_nowait((stream, update, token))
            except anyio.WouldBlock:
                log.warning("cluster: awareness outbox full; dropping an update of %r", stream)
            except anyio.ClosedResourceError:
                pass  # stopping: the process's clients are gone

        relay = AwarenessRelay(document, key, last_id, publish, self._timeout)
        for _, fields in recent:
            if b"u" in fields:
                relay.apply_remote(fields[b"u"])
        return relay

    async def run(self) -> None:
        async with self._receive:
            async for key, update, token in self._receive:
                try:
                    await self._client.xadd(
                        key, encode_entry(update, token), maxlen=self._maxlen, approximate=True
                    )
                except Exception:
                    log.exception("cluster: publishing awareness to %r failed", key)
        self._drained.set()

    async def close(self) -> None:
        """Send what is queued, then take nothing more (bound it with a cancel scope)."""
        self._send.close()
        await self._drained.wait()
