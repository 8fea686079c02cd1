"""`SendBudget`: one bound on the bytes queued for every client of a server together.

Each session bounds its own queue (`Limits.send_queue_bytes`), but many sessions
that stop reading at once — 256 from one address is allowed — could still hold
gigabytes between them. The budget adds up what every session has queued; past
`Limits.max_queued_bytes`, the session holding the most is closed as a slow reader
(the slowest one first: it is the one that stopped reading longest or fastest),
until the total fits again. Honest clients, whose queues empty every loop turn,
never hold enough of it to be chosen. Replies a client asked for (the sync step 2 of
its first sync) are not counted, as the per-session bound does not count them: the
first sync of a document larger than the budget must still be sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..protocol._close_codes import CloseCode

if TYPE_CHECKING:
    from ._peer import Peer

__all__ = ["SendBudget"]


class SendBudget:
    """Bytes queued for all sessions of one server, against `limit`."""

    __slots__ = ("_holders", "_shedding", "limit", "queued")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.queued = 0
        self._holders: dict[Peer, int] = {}
        self._shedding = False

    def set(self, session: Peer, queued: int) -> None:
        """`session` now has `queued` bytes waiting; shed the slowest if over the limit."""
        holders = self._holders
        self.queued += queued - holders.get(session, 0)
        if queued:
            holders[session] = queued
        else:
            holders.pop(session, None)
        if self.queued > self.limit and not self._shedding:
            self._shed()

    def _shed(self) -> None:
        self._shedding = True
        try:
            while self.queued > self.limit and self._holders:
                slowest = max(self._holders, key=self._holders.__getitem__)
                waiting = self._holders.pop(slowest)
                self.queued -= waiting
                slowest.kill(
                    CloseCode.SLOW_READER,
                    f"the server's {self.limit} bytes for queued messages are used up: "
                    f"the slowest reader ({waiting} bytes waiting) is closed",
                )
        finally:
            self._shedding = False
