"""The activity log of room sessions: who joined, what was opened and saved, what agents did.

The server produces activity events (`Server.activity`, the `on_activity` hook);
`ActivityExtension` writes each room session's events through an `ActivityStore`
(`FsspecStorage` keeps them beside the room's documents); `ActivityLog` reads them back,
for ``meshroom log`` and ``GET /rooms/{room}/activity`` (`activity_route`, for holders of
an admin grant). docs/activity.md lists the event types.
"""

from __future__ import annotations

from ._extension import ActivityExtension as ActivityExtension
from ._http import activity_route as activity_route
from ._reader import ActivityLog as ActivityLog
from ._store import ActivityStore as ActivityStore

__all__ = ["ActivityExtension", "ActivityLog", "ActivityStore", "activity_route"]
