"""An ordered queue that one task sends in batches, so whoever queues never waits.

`put` never blocks; the sending task `take`s up to `size` items at a time, oldest
first, and sends them in one round trip. `drain` waits until the queue is empty and
the sender came back for more, that is until everything queued was sent.
"""

from __future__ import annotations

from typing import Generic, TypeVar

import anyio

__all__ = ["Batches"]

T = TypeVar("T")


class Batches(Generic[T]):
    """Items in order, handed to one sending task in batches (see the module docstring)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._pending: list[T] = []
        self._wake = anyio.Event()
        self._idle = anyio.Event()
        self._idle.set()

    def __len__(self) -> int:
        """Items queued and not taken yet."""
        return len(self._pending)

    def put(self, item: T) -> None:
        """Queue `item` (never blocks)."""
        self._pending.append(item)
        if self._idle.is_set():
            self._idle = anyio.Event()
        self._wake.set()

    async def drain(self) -> None:
        """Wait until everything queued was taken and sent."""
        await self._idle.wait()

    async def take(self) -> list[T]:
        """The next batch, oldest first; waits for one (the queue is idle meanwhile)."""
        while not self._pending:
            self._idle.set()
            await self._wake.wait()
            self._wake = anyio.Event()
        batch = self._pending[: self._size]
        del self._pending[: self._size]
        return batch
