"""Redis as the journal of a document this process does not write to storage.

A process that does not write a document (it has no storage, or another process
holds the document's writer lease) must still never relay an update that a crash
could take back. So it makes the document's stream its journal: the server holds
each update (`LiveDocument.journal`) until it is appended (``XADD``) to the stream,
where the document's writer reads it and stores it, and only then relays it. As
y-redis does: appended before it is distributed.

Group commit, across documents: every batch handed over while the previous
pipeline was in flight (at least everything of one loop turn) goes out in one
pipeline, so a burst costs one Redis round trip per round trip, not per keystroke.
Each pipeline also says "this document needs a writer" (``ZADD NX``, a no-op while
it has one), so a document whose writer died is announced by the next edit at no
extra round trip.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import anyio

from ._lease import Leases
from ._streams import encode_entry

__all__ = ["StreamJournal"]

log = logging.getLogger("meshroom.cluster")


@dataclass
class _Batch:
    key: str
    member: str
    updates: list[bytes]
    token: bytes
    done: anyio.Event = field(default_factory=anyio.Event)
    error: BaseException | None = None


class StreamJournal:
    """Appends documents' held updates to their streams, in pipelines, before relay."""

    def __init__(self, client: Any, leases: Leases) -> None:
        self._client = client
        self._leases = leases
        self._pending: list[_Batch] = []
        self._inflight: list[_Batch] = []
        self._wake = anyio.Event()
        self._stopped = False

    async def append(self, key: str, member: str, updates: list[bytes], token: bytes) -> None:
        """Return once `updates` are in `key`'s stream (in order).

        Raises:
            Exception: Redis did not take them (the document keeps them held, retries).
        """
        if self._stopped:
            raise RuntimeError("the cluster connection is closed")
        batch = _Batch(key, member, updates, token)
        self._pending.append(batch)
        self._wake.set()
        await batch.done.wait()
        if batch.error is not None:
            raise batch.error

    async def run(self) -> None:
        try:
            while True:
                if not self._pending:
                    await self._wake.wait()
                    self._wake = anyio.Event()
                    continue
                batches = self._inflight = self._pending
                self._pending = []
                try:
                    async with self._client.pipeline(transaction=False) as pipe:
                        for batch in batches:
                            for update in batch.updates:
                                pipe.xadd(batch.key, encode_entry(update, batch.token))
                        for member in dict.fromkeys(batch.member for batch in batches):
                            self._leases.announce_on(pipe, member)
                        await pipe.execute()
                except Exception as error:
                    for batch in batches:
                        batch.error = error
                for batch in batches:
                    batch.done.set()
                self._inflight = []
        finally:
            self._stopped = True
            for batch in self._inflight + self._pending:
                batch.error = RuntimeError("the cluster connection is closed")
                batch.done.set()
            self._pending = []
