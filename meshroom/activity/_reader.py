"""`ActivityLog`: read the activity a server logged, straight from its storage.

What `meshroom log` and ``GET /rooms/{room}/activity`` read. It needs no server:
point it at the same storage the server writes to (a folder, any fsspec URL).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio

from ._store import ActivityStore

__all__ = ["ActivityLog"]

logger = logging.getLogger("meshroom.activity")


class ActivityLog:
    """The activity logs kept in `store` (an `ActivityStore`, e.g. `FsspecStorage`).

    ```py
    log = ActivityLog(FsspecStorage("./rooms"))
    for event in await log.events("team"):  # the latest session
        print(event["type"], event.get("participant"))
    ```
    """

    def __init__(self, store: ActivityStore) -> None:
        if not isinstance(store, ActivityStore):
            raise TypeError(f"{type(store).__name__} keeps no activity logs (no append_activity)")
        self.store = store

    async def sessions(self, room: str) -> list[str]:
        """The room's logged sessions, oldest first."""
        return await self.store.list_activity(room)

    async def latest(self, room: str) -> str | None:
        """The room's most recent session, or None when nothing was logged."""
        sessions = await self.sessions(room)
        return sessions[-1] if sessions else None

    async def events(self, room: str, session: str | None = None) -> list[dict[str, Any]]:
        """The events of `session` (default: the latest), oldest first.

        A record that is not a JSON object (a log written by something else) is skipped.
        """
        if session is None:
            session = await self.latest(room)
            if session is None:
                return []
        events = []
        for record in await self.store.read_activity(room, session):
            try:
                event = json.loads(record)
            except ValueError:
                logger.warning(
                    "activity of %s/%s: skipped a record that is not JSON", room, session
                )
                continue
            if isinstance(event, dict):
                events.append(event)
        return events

    async def follow(
        self, room: str, session: str | None = None, *, interval: float = 0.5
    ) -> AsyncIterator[dict[str, Any]]:
        """Every event of `session` (default: the latest), then new ones as they are logged.

        Without a session, it moves on to the next one when the room reopens.
        """
        fixed = session is not None
        seen = 0
        while True:
            current = session if fixed else await self.latest(room)
            if current is not None:
                if current != session:
                    session, seen = current, 0
                events = await self.events(room, current)
                for event in events[seen:]:
                    yield event
                seen = max(seen, len(events))
            await anyio.sleep(interval)
