"""`Outbox`: what a session sends, queued without waiting, merged, bounded.

Everything the server sends to a client goes through `enqueue`, which never waits: a full
queue means the client does not keep up, and it is closed with `SLOW_READER` instead of
slowing the room down or growing memory. A connection of its own drains the queue with the
writer task (`_writer`); a `PushConnection` is written when the transport has handled what
it read (`_flush`). Both merge queued updates into one frame.

`Session` builds on it; the outbox knows nothing of rooms, documents or access.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio

from ..protocol._close_codes import CloseCode
from ..protocol._merge import coalesce_updates

if TYPE_CHECKING:
    from ._budget import SendBudget
    from ._connection import Connection, PushConnection
    from ._limits import Limits

__all__ = ["Outbox"]

log = logging.getLogger("meshroom.server")

#: Most queued messages merged into one send; bounds the work of one merge.
_MAX_BATCH = 256


class Outbox:
    """The sending half of a session: a bounded queue and the two ways to drain it."""

    __slots__ = (
        "_budget",
        "_flush_scheduled",
        "_limits",
        "_outbox",
        "_outbox_bytes",
        "_pushed",
        "_reply_bytes",
        "_wakeup",
        "close_reason",
        "connection",
    )

    def __init__(self, connection: Connection, limits: Limits, budget: SendBudget | None) -> None:
        self.connection = connection
        self._limits = limits
        #: Messages waiting for the writer (at most `limits.send_queue_size`). A list
        #: the writer swaps for a new one: smaller than a deque, and no per-item pop.
        self._outbox: list[bytes] = []
        self._outbox_bytes = 0
        #: Bytes of queued replies (see `enqueue_reply`): not counted against the bound.
        self._reply_bytes = 0
        #: The server-wide bound on queued bytes, told of every change of `_outbox_bytes`.
        self._budget = budget
        #: Set by `enqueue` to wake the writer; only exists while the writer waits.
        self._wakeup: anyio.Event | None = None
        #: The connection while it pushes (see `PushConnection`), else None.
        self._pushed: PushConnection | None = None
        self._flush_scheduled = False
        #: (code, reason) once the server decided to close this session.
        self.close_reason: tuple[int, str] | None = None

    def kill(self, code: int, reason: str) -> None:
        """Decide to close with `code` and `reason` (the first decision stands): nothing more
        is queued. `Session.kill` then stops the connection itself."""
        if self.close_reason is None:
            self.close_reason = (int(code), reason)
            if code not in (CloseCode.NORMAL, CloseCode.GOING_AWAY):
                log.info("closing %r: %s (%s)", self, reason, int(code))

    def enqueue(self, message: bytes) -> None:
        """Queue a message for this client without waiting; overflow closes the session."""
        if self.close_reason is not None:
            return
        limits = self._limits
        if self._outbox and (
            len(self._outbox) >= limits.send_queue_size
            or self._outbox_bytes - self._reply_bytes + len(message) > limits.send_queue_bytes
        ):
            self._compact_or_kill(len(message))
            if self.close_reason is not None:
                return
        self._outbox.append(message)
        self._outbox_bytes += len(message)
        if self._budget is not None:
            self._budget.set(self, self._budgeted_bytes())
            if self.close_reason is not None:
                return
        pushed = self._pushed
        if pushed is not None:
            if not self._flush_scheduled:
                self._flush_scheduled = True
                pushed.defer(self._flush)
            elif len(self._outbox) >= _MAX_BATCH:
                self._flush()  # a long burst in one turn: write as it comes, in batches
            return
        wakeup = self._wakeup
        if wakeup is not None:
            self._wakeup = None
            wakeup.set()

    def enqueue_reply(self, message: bytes) -> None:
        """Queue an answer the client asked for (sync step 2), whatever its size.

        The byte bound is for what piles up behind a client that stopped reading;
        the first sync of a large document is one message the size of the document,
        which the server holds anyway, and refusing it would leave a client that
        does not retry never synced.
        """
        self._reply_bytes += len(message)
        self.enqueue(message)

    def _budgeted_bytes(self) -> int:
        """Queued bytes the server-wide `SendBudget` counts: replies are exempt there too,
        or a document larger than `Limits.max_queued_bytes` could never be synced."""
        return max(0, self._outbox_bytes - self._reply_bytes)

    def _compact_or_kill(self, incoming: int) -> None:
        """The queue is full: merge its updates; still (nearly) full means a slow reader.

        A client that is merely busy for a moment (a burst of keystrokes while its
        socket drains a large paste) queues updates that merge into one; one that
        stopped reading keeps the queue full of what does not merge, or of bytes.
        """
        limits = self._limits
        self._outbox[:] = coalesce_updates(self._outbox)
        self._outbox_bytes = sum(map(len, self._outbox))
        if self._budget is not None:
            self._budget.set(self, self._budgeted_bytes())
        # Three quarters: room to grow before the next merge, so merges stay rare.
        if len(self._outbox) * 4 >= limits.send_queue_size * 3:
            self.kill(
                CloseCode.SLOW_READER,
                f"more than {limits.send_queue_size} messages waiting: client too slow",
            )
        elif (self._outbox_bytes - self._reply_bytes + incoming) * 4 > limits.send_queue_bytes * 3:
            self.kill(
                CloseCode.SLOW_READER,
                f"more than {limits.send_queue_bytes} bytes waiting: client too slow",
            )

    def _drop_queue(self) -> None:
        """The session is over: nothing more will be written."""
        if self._expiry is not None:
            self._expiry.cancel()  # a timer would keep the ended session alive until it fires
            self._expiry = None
        self._outbox.clear()
        self._outbox_bytes = self._reply_bytes = 0
        if self._budget is not None:
            self._budget.set(self, 0)
        self._wakeup = None
        self._pushed = None

    def _flush(self) -> None:
        """Write the queue now (push mode), while the socket takes it; merged like `_writer`."""
        self._flush_scheduled = False
        connection = self._pushed
        if connection is None or self.close_reason is not None:
            return
        while self._outbox and connection.writable:
            for frame in coalesce_updates(self._take_batch()):
                connection.write(frame)

    def _take_batch(self) -> list[bytes]:
        """Up to `_MAX_BATCH` queued messages, oldest first, out of the queue."""
        outbox = self._outbox
        if len(outbox) <= _MAX_BATCH:
            self._outbox, self._outbox_bytes, self._reply_bytes = [], 0, 0
            if self._budget is not None:
                self._budget.set(self, 0)
            return outbox
        batch = outbox[:_MAX_BATCH]
        del outbox[:_MAX_BATCH]
        self._outbox_bytes -= sum(map(len, batch))
        self._reply_bytes = min(self._reply_bytes, self._outbox_bytes)
        if self._budget is not None:
            self._budget.set(self, self._budgeted_bytes())
        return batch

    async def _writer(self) -> None:
        # A plain list and one Event per wait (not a memory object stream): the
        # writer only yields to the loop when it has nothing to send, so a busy
        # connection costs one wake-up per batch, not a checkpoint per message.
        send = self.connection.send
        while True:
            if not self._outbox:
                self._wakeup = wakeup = anyio.Event()
                await wakeup.wait()
                continue
            for frame in coalesce_updates(self._take_batch()):
                await send(frame)
