"""`ActivityStore`: what the activity log needs of a storage provider.

`FsspecStorage` has it (``{root}/{room}/activity/{session}/``, beside the room's
documents); a custom provider (a database) adds these four methods to log activity too.
Events are UTF-8 JSON, one per record; a batch is appended in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

__all__ = ["ActivityStore"]


@runtime_checkable
class ActivityStore(Protocol):
    """Append-only activity logs, one per room session."""

    async def append_activity(self, room: str, session: str, events: Sequence[bytes]) -> None:
        """Append events to the session's log, durably, in order, as one batch.

        If this raises, none, some or all of the batch may be stored; the caller
        appends it again later, so records written before a failure must stay readable.
        """
        ...

    async def read_activity(self, room: str, session: str) -> list[bytes]:
        """The session's intact events in append order; skip (never raise on) a torn tail."""
        ...

    async def list_activity(self, room: str) -> list[str]:
        """The room's session ids, oldest first."""
        ...

    async def delete_activity(self, room: str, session: str) -> None:
        """Remove the session's log (no error if there is none)."""
        ...
