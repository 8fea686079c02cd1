"""``GET /rooms/{room}/activity``: a room's activity log, for holders of an admin grant.

The token comes as for a connection (``?token=`` or ``Authorization: Bearer``) and goes
through the server's own auth chain for the room document; the reply is 401 for a
missing or invalid token, 403 for a token (or an open server) without an admin grant
for the room, and otherwise::

    {"room": "team", "session": "20260105T101500123Z-3f9a1c", "sessions": [...],
     "events": [{"type": "participant.joined", ...}, ...], "next": 12}

``?session=ID`` picks a session (default: the latest); ``?after=N`` returns only the
events from index N on (poll with the last ``next``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .._exceptions import RoomNameError
from ..protocol._names import validate_room
from ..server._admin import AdminRefused, admin_access

if TYPE_CHECKING:
    from ._reader import ActivityLog

__all__ = ["activity_route"]


def activity_route(server: Any, log: ActivityLog) -> Route:
    """The route serving `log` (what the server's `ActivityExtension` writes) to admins."""

    async def activity(request: Request) -> JSONResponse:
        room = request.path_params["room"]
        try:
            validate_room(room)
        except RoomNameError as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        client = f"{request.client.host}:{request.client.port}" if request.client else None
        try:
            await admin_access(
                server,
                room,
                query_token=request.query_params.get("token"),
                headers=request.headers,
                client=client,
                what="reading the activity",
            )
        except AdminRefused as refused:
            return JSONResponse({"error": str(refused)}, status_code=refused.status)
        try:
            after = max(0, int(request.query_params.get("after", "0")))
        except ValueError:
            return JSONResponse({"error": "after must be a whole number"}, status_code=400)
        sessions = await log.sessions(room)
        session = request.query_params.get("session") or (sessions[-1] if sessions else None)
        if session is not None and session not in sessions:
            return JSONResponse({"error": f"no session {session!r} in {room!r}"}, status_code=404)
        events = await log.events(room, session) if session is not None else []
        return JSONResponse(
            {
                "room": room,
                "session": session,
                "sessions": sessions,
                "events": events[after:],
                "next": len(events),
            }
        )

    return Route("/rooms/{room}/activity", activity, methods=["GET"])
