"""What a room tells the other processes, sent in order by one task.

Room messages, forwarded tool calls and their results are produced in transport
callbacks and room-document observers, where nothing may wait for Redis. They are
queued here and one task sends them, many per pipeline. The queue is bounded: past
`limit` commands waiting (Redis away), new ones are dropped and counted; a dropped
call ends by its deadline, a dropped message is missing on the other processes.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio

from ._batches import Batches

__all__ = ["RoomOutbox"]

log = logging.getLogger("meshroom.cluster")


class RoomOutbox:
    """An ordered queue of ``PUBLISH`` and capped ``XADD`` commands (see the module docstring)."""

    def __init__(self, client: Any, *, limit: int = 10_000, batch: int = 256) -> None:
        self._client = client
        self._limit = limit
        self._queue: Batches[tuple[str, str, Any, int]] = Batches(batch)
        #: Commands dropped because the queue was full.
        self.dropped = 0

    def publish(self, channel: str, data: str) -> None:
        """Queue ``PUBLISH channel data`` (never blocks)."""
        self._put(("publish", channel, data, 0))

    def xadd(self, key: str, fields: dict[bytes, bytes], maxlen: int) -> None:
        """Queue ``XADD key MAXLEN ~ maxlen * fields`` (never blocks)."""
        self._put(("xadd", key, fields, maxlen))

    def _put(self, command: tuple[str, str, Any, int]) -> None:
        if len(self._queue) >= self._limit:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("cluster: room outbox full; %d commands dropped", self.dropped)
            return
        self._queue.put(command)

    async def drain(self) -> None:
        """Wait until everything queued was sent (bound it with a cancel scope)."""
        await self._queue.drain()

    async def run(self) -> None:
        """Until cancelled: send what is queued; a failed batch is logged and dropped."""
        while True:
            batch = await self._queue.take()
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    for kind, key, data, maxlen in batch:
                        if kind == "publish":
                            pipe.publish(key, data)
                        else:
                            pipe.xadd(key, data, maxlen=maxlen, approximate=True)
                    await pipe.execute()
            except Exception:
                log.exception("cluster: sending %d room commands failed", len(batch))
                await anyio.sleep(0.5)
