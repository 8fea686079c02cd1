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

import anyio

from ._streams import encode_entry

__all__ = ["UpdatePublisher"]

log = logging.getLogger("meshroom.cluster")


class UpdatePublisher:
    """An ordered queue of (stream key, update, sender token) sent by `run`."""

    def __init__(self, client: Any, on_failure: Callable[[str], None], batch: int = 512) -> None:
        self._client = client
        self._on_failure = on_failure
        self._batch = batch
        self._pending: list[tuple[str, bytes, bytes]] = []
        self._wake = anyio.Event()
        self._idle = anyio.Event()
        self._idle.set()
        self._sending = 0
        #: Updates whose batch failed (their documents' full state is republished).
        self.failed = 0

    def put(self, key: str, update: bytes, token: bytes) -> None:
        """Queue one update (never blocks)."""
        self._pending.append((key, update, token))
        if self._idle.is_set():
            self._idle = anyio.Event()
        self._wake.set()

    @property
    def queued(self) -> int:
        """Updates waiting to be sent."""
        return len(self._pending) + self._sending

    async def drain(self) -> None:
        """Wait until every queued update was sent (or handed to `on_failure`)."""
        await self._idle.wait()

    async def run(self) -> None:
        while True:
            if not self._pending:
                self._idle.set()
                await self._wake.wait()
                self._wake = anyio.Event()
                continue
            batch = self._pending[: self._batch]
            del self._pending[: self._batch]
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
