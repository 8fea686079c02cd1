"""`CallDeadlines`: when each pending tool call of every room runs out of time."""

from __future__ import annotations

import heapq
import itertools
import math
import time
from typing import Protocol

import anyio

__all__ = ["CallDeadlines"]


class Expiring(Protocol):
    """What keeps calls (a room's `RoomCalls`): it ends a call when its time is up."""

    def expire(self, call_id: int) -> None: ...


class CallDeadlines:
    """The deadlines of pending calls in every room, watched by one task (`run`).

    Calls arrive in transport callbacks (`meshroom serve`'s protocol) outside any task,
    where neither anyio's clock nor a new task is available: adding a deadline is a heap
    push and an event, and times are `time.monotonic()`'s. One task for the server, not
    one per room: an idle room costs nothing for the calls it might get.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Expiring, int]] = []
        self._order = itertools.count()
        self._wake: anyio.Event | None = None

    def add(self, deadline: float, calls: Expiring, call_id: int) -> None:
        heapq.heappush(self._heap, (deadline, next(self._order), calls, call_id))
        if self._wake is not None:
            self._wake.set()

    async def run(self) -> None:
        """Until cancelled: expire each call whose deadline passed."""
        while True:
            self._wake = anyio.Event()
            now = time.monotonic()
            while self._heap and self._heap[0][0] <= now:
                _, _, calls, call_id = heapq.heappop(self._heap)
                calls.expire(call_id)
            wait = self._heap[0][0] - now if self._heap else math.inf
            with anyio.move_on_after(wait):
                await self._wake.wait()
