"""Publishing accepted updates: in order, many per round trip.

`on_change` must not block the room's change pipeline on Redis, and one ``XADD``
round trip per keystroke caps a burst at the round-trip rate. Updates are queued
in order and sent by one task in pipelines of up to `batch` commands (no
transaction: order within the connection is what matters). A batch that fails
is not retried entry by entry: its documents are handed to `on_failure`, and
the extension republishes their full state, which covers every lost update.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ._batches import Batches
from ._streams import encode_entry

__all__ = ["UpdatePublisher"]

log = logging.getLogger("meshroom.cluster")


class UpdatePublisher:
    """An ordered queue of (stream key, update, sender token) sent by `run`."""

    def __init__(self, client: Any, on_failure: Callable[[str], None], batch: int = 512) -> None:
        self._client = client
        self._on_failure = on_failure
        self._queue: Batches[tuple[str, bytes, bytes]] = Batches(batch)
        self._sending = 0
        #: Updates whose batch failed (their documents' full state is republished).
        self.failed = 0

    def put(self, key: str, update: bytes, token: bytes) -> None:
        """Queue one update (never blocks)."""
        self._queue.put((key, update, token))

    @property
    def queued(self) -> int:
        """Updates waiting to be sent."""
        return len(self._queue) + self._sending

    async def drain(self) -> None:
        """Wait until every queued update was sent (or handed to `on_failure`)."""
        await self._queue.drain()

    async def run(self) -> None:
        while True:
            batch = await self._queue.take()
            self._sending = len(batch)
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    for key, update, token in batch:
                        pipe.xadd(key, encode_entry(update, token))
                    await pipe.execute()
            except Exception:
                log.exception("cluster: publishing %d updates failed", len(batch))
                self.failed += len(batch)
                for key in dict.fromkeys(key for key, _, _ in batch):
                    self._on_failure(key)
            finally:
                self._sending = 0
