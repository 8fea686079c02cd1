"""`RoomQueues`: named work queues of a room, each item delivered to one consumer.

Any participant may send JSON items to a queue; participants that consume a queue
get its items one at a time (the next after they acknowledge the last), so a slow
worker is never buried and several workers share the load. An item delivered to a
consumer whose connection closes before it acknowledged goes back to the front of
its queue and to the next consumer: nothing sent is lost while the room is open.
The room document's `queues` map lists each queue's length, consumers and items in
flight. Queues live with the room (like its messages): a room that closes drops them.

Room calls (docs/room-document.md)::

    -> {"type": "enqueue", "queue": NAME, "item": VALUE, "ref": R?}
    <- {"type": "enqueued", "queue": NAME, "id": ID, "ref": R}      (errors carry request R)
    -> {"type": "consume", "queue": NAME}                          (become a consumer)
    <- {"type": "item", "queue": NAME, "id": ID, "item": VALUE}   (one at a time)
    -> {"type": "ack", "id": ID}                                    (done; the next comes)
    -> {"type": "stop", "queue": NAME}                              (no longer a consumer)
"""

from __future__ import annotations

import itertools
import re
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._peer import CallPeer
    from ._presence import Presence

__all__ = ["QueueLimits", "RoomQueues"]

_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.:/-]{1,128}$")


@dataclass(frozen=True)
class QueueLimits:
    """Bounds on a room's queues."""

    #: Largest item, in bytes of its room call.
    max_item_bytes: int = 256 * 1024
    #: Items one queue may hold waiting.
    max_length: int = 10_000
    #: Queues one room may have.
    max_queues: int = 64


@dataclass
class _Queue:
    name: str
    waiting: deque[tuple[int, Any]] = field(default_factory=deque)
    #: Consumers in the order they take turns (round robin over the idle ones).
    consumers: list[CallPeer] = field(default_factory=list)
    #: Item id -> (consumer, item) for items delivered and not yet acknowledged.
    in_flight: dict[int, tuple[CallPeer, Any]] = field(default_factory=dict)


class QueueError(Exception):
    """A queue request that cannot be done; the message goes back to the sender."""


class RoomQueues:
    """The work queues of one room (see the module docstring)."""

    def __init__(self, presence: Presence, limits: QueueLimits | None = None) -> None:
        self._presence = presence
        self.limits = limits or QueueLimits()
        self._queues: dict[str, _Queue] = {}
        self._ids = itertools.count(1)

    def handle(self, peer: CallPeer, call: dict[str, Any], size: int) -> None:
        """Act on one queue call; a bad one gets an error reply and changes nothing."""
        try:
            match call["type"]:
                case "enqueue":
                    self._enqueue(peer, call, size)
                case "consume":
                    self._consume(peer, self._queue(call.get("queue"), create=True))
                case "ack":
                    self._ack(peer, call.get("id"))
                case "stop":
                    self._stop(peer, self._queue(call.get("queue"), create=False))
        except QueueError as error:
            request = call.get("ref", call.get("queue"))
            if not isinstance(request, (str, int)) or isinstance(request, bool):
                request = None
            peer.send_room_call({"type": "error", "error": str(error), "request": request})

    def _queue(self, name: Any, *, create: bool) -> _Queue:
        if not isinstance(name, str) or not _QUEUE_NAME.match(name):
            raise QueueError(f"a queue name must match {_QUEUE_NAME.pattern}")
        queue = self._queues.get(name)
        if queue is None:
            if not create:
                raise QueueError(f"there is no queue {name!r}")
            if len(self._queues) >= self.limits.max_queues:
                raise QueueError(f"a room has at most {self.limits.max_queues} queues")
            queue = self._queues[name] = _Queue(name)
        return queue

    def _enqueue(self, peer: CallPeer, call: dict[str, Any], size: int) -> None:
        if not peer.access.may_message:
            raise QueueError("your grants do not allow sending to queues")
        if "item" not in call:
            raise QueueError("an enqueue needs an 'item'")
        if size > self.limits.max_item_bytes:
            raise QueueError(f"an item of {size} bytes exceeds {self.limits.max_item_bytes}")
        queue = self._queue(call.get("queue"), create=True)
        if len(queue.waiting) >= self.limits.max_length:
            raise QueueError(f"queue {queue.name!r} is full ({self.limits.max_length} items)")
        item_id = next(self._ids)
        queue.waiting.append((item_id, call["item"]))
        peer.send_room_call(
            {"type": "enqueued", "queue": queue.name, "id": item_id, "ref": call.get("ref")}
        )
        self._deliver(queue)

    def _consume(self, peer: CallPeer, queue: _Queue) -> None:
        if peer not in queue.consumers:
            queue.consumers.append(peer)
        self._deliver(queue)

    def _stop(self, peer: CallPeer, queue: _Queue) -> None:
        if peer in queue.consumers:
            queue.consumers.remove(peer)
        self._requeue(queue, peer)
        self._deliver(queue)

    def _ack(self, peer: CallPeer, item_id: Any) -> None:
        for queue in self._queues.values():
            delivered = queue.in_flight.get(item_id)
            if delivered is not None and delivered[0] is peer:
                del queue.in_flight[item_id]
                self._deliver(queue)
                return
        raise QueueError(f"no item {item_id!r} waits for your acknowledgement")

    def _busy(self, queue: _Queue, peer: CallPeer) -> bool:
        return any(consumer is peer for consumer, _ in queue.in_flight.values())

    def _deliver(self, queue: _Queue) -> None:
        """Hand waiting items to idle consumers, taking turns; then publish the counts."""
        while queue.waiting:
            idle = next((c for c in queue.consumers if not self._busy(queue, c)), None)
            if idle is None:
                break
            item_id, item = queue.waiting.popleft()
            queue.in_flight[item_id] = (idle, item)
            queue.consumers.remove(idle)  # to the back of the line
            queue.consumers.append(idle)
            idle.send_room_call({"type": "item", "queue": queue.name, "id": item_id, "item": item})
        self._publish(queue)

    def _requeue(self, queue: _Queue, peer: CallPeer) -> None:
        """Put the items `peer` holds back at the front, oldest first."""
        held = sorted(
            (item_id, item) for item_id, (consumer, item) in queue.in_flight.items()
            if consumer is peer
        )  # fmt: skip
        for item_id, _ in held:
            del queue.in_flight[item_id]
        queue.waiting.extendleft(reversed(held))

    def _publish(self, queue: _Queue) -> None:
        entry = {
            "length": len(queue.waiting),
            "consumers": len(queue.consumers),
            "inFlight": len(queue.in_flight),
        }
        self._presence.set_entry("queues", queue.name, entry)

    def peer_left(self, peer: CallPeer) -> None:
        """`peer`'s connection closed: it consumes nothing more, and what it held goes back."""
        for queue in self._queues.values():
            if peer in queue.consumers:
                queue.consumers.remove(peer)
            self._requeue(queue, peer)
            self._deliver(queue)

    def lengths(self) -> dict[str, int]:
        """Items waiting in each queue."""
        return {name: len(queue.waiting) for name, queue in self._queues.items()}
