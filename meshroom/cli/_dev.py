"""`meshroom serve --dev`: a login-free token endpoint for trying the web example locally.

Never on by default: it hands a read-write token for any room to anyone who asks,
which is exactly what a developer on their own machine wants and nothing a
deployment should expose. The server logs a warning when it is on.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .._exceptions import RoomNameError
from ..protocol._names import validate_room

__all__ = ["dev_token_route"]

#: Lifetime of a dev token: a working day, so a page left open keeps reconnecting.
DEV_TOKEN_SECONDS = 8 * 3600


def dev_token_route(secret: str) -> Route:
    """`GET /dev/token?room=R&name=N[&id=I][&kind=agent][&read_only=1][&admin=1]` → a token.

    The answer is ``{"token": ...}``; ``admin=1`` lets it read the room's activity log.

    `id` names the participant (the token's ``sub``); without it the token gets a new
    UUID, which the client learns when it joins (`RoomClient.participant_id`).
    """
    from ..auth import Grant, mint_token

    async def dev_token(request: Request) -> Any:
        room = request.query_params.get("room", "demo")
        try:
            validate_room(room)
        except RoomNameError as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        name = request.query_params.get("name", "Guest")[:80]
        kind = request.query_params.get("kind", "person")
        if kind not in ("person", "agent"):
            return JSONResponse({"error": "kind must be 'person' or 'agent'"}, status_code=400)
        participant_id = request.query_params.get("id") or None
        if participant_id is not None and len(participant_id) > 200:
            return JSONResponse({"error": "id is longer than 200 characters"}, status_code=400)
        read_only = request.query_params.get("read_only", "") in ("1", "true", "yes")
        admin = request.query_params.get("admin", "") in ("1", "true", "yes")
        token = mint_token(
            secret=secret,
            name=name,
            kind=kind,
            participant_id=participant_id,
            grants=[Grant(room, ["*"], read_only=read_only, admin=admin)],
            expires_in=DEV_TOKEN_SECONDS,
        )
        return JSONResponse({"token": token})

    return Route("/dev/token", dev_token, methods=["GET"])
