"""`WorkQueues`: a participant's side of the room's work queues (send, consume, acknowledge).

Items are JSON values; `consume` yields them one at a time and the server sends the
next only after `QueueItem.ack`, so an item a worker has not finished goes to another
worker if this one disconnects (docs/room-document.md). After a reconnection the
client consumes again; items it held were put back by the server and come again.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from .._exceptions import ClientError

__all__ = ["QueueItem", "WorkQueues"]

#: Seconds to wait for the server to take an item.
SEND_WAIT = 10.0


@dataclass
class QueueItem:
    """One item delivered to this consumer; `ack` it when the work is done."""

    queue: str
    id: int
    item: Any
    _ack: Callable[[int], bool]
    #: The connection it came on (a reconnection makes the items still buffered stale).
    _connection: int = 0

    async def ack(self) -> None:
        """Tell the room the item is done: the next one comes (nothing if disconnected:
        the server already gave the item back to the queue)."""
        self._ack(self.id)
        await anyio.lowlevel.checkpoint()


class _Reply:
    __slots__ = ("done", "reply")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.reply: dict[str, Any] = {}


class WorkQueues:
    """Queues this participant sends to and consumes (see the module docstring)."""

    def __init__(self, send: Callable[[dict[str, Any]], bool]) -> None:
        self._send = send
        self._refs = itertools.count(1)
        self._replies: dict[str, _Reply] = {}
        self._consuming: dict[str, MemoryObjectSendStream[QueueItem]] = {}
        self._connection = 0

    async def send(self, queue: str, item: Any) -> int:
        """Add `item` to `queue`; return its id once the room took it.

        Raises:
            ClientError: not connected, or the room refused it (name, size, a full queue).
        """
        ref = f"q{next(self._refs)}"
        waiter = self._replies[ref] = _Reply()
        try:
            if not self._send({"type": "enqueue", "queue": queue, "item": item, "ref": ref}):
                raise ClientError("not connected to the room", reason="disconnected")
            with anyio.move_on_after(SEND_WAIT):
                await waiter.done.wait()
        finally:
            self._replies.pop(ref, None)
        if waiter.reply.get("type") != "enqueued":
            error = waiter.reply.get("error", "no answer from the room")
            raise ClientError(f"queue {queue!r} refused the item: {error}", reason="refused")
        return int(waiter.reply["id"])

    @asynccontextmanager
    async def consume(self, queue: str) -> AsyncIterator[AsyncIterator[QueueItem]]:
        """Consume `queue` while the block runs: ``async with queues.consume(q) as items:``."""
        if queue in self._consuming:
            raise RuntimeError(f"already consuming {queue!r}")
        send, receive = anyio.create_memory_object_stream[QueueItem](math.inf)
        self._consuming[queue] = send
        self._send({"type": "consume", "queue": queue})

        async def fresh() -> AsyncIterator[QueueItem]:
            async for item in receive:
                if item._connection == self._connection:
                    yield item  # others were given back to the queue when we disconnected

        try:
            async with receive:
                yield fresh()
        finally:
            self._consuming.pop(queue, None)
            send.close()
            self._send({"type": "stop", "queue": queue})

    def connected(self) -> None:
        self._connection += 1
        for queue in self._consuming:
            self._send({"type": "consume", "queue": queue})

    def _ack(self, item_id: int) -> bool:
        return self._send({"type": "ack", "id": item_id})

    def receive(self, call: dict[str, Any]) -> bool:
        """Take a queue reply or item; False if `call` is not about queues."""
        kind = call.get("type")
        if kind == "item":
            stream = self._consuming.get(str(call.get("queue")))
            if stream is None:
                return True  # stopped meanwhile: the server gives it to someone else
            item = QueueItem(
                str(call["queue"]), int(call["id"]), call.get("item"), self._ack, self._connection
            )
            stream.send_nowait(item)
            return True
        if kind in ("enqueued", "error"):
            waiter = self._replies.get(call.get("ref" if kind == "enqueued" else "request"))  # type: ignore[arg-type]
            if waiter is not None:
                waiter.reply = call
                waiter.done.set()
                return True
        return kind == "enqueued"
