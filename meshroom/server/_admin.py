"""`admin_access`: who may read a room's activity and versions over HTTP.

The token comes as for a connection (``?token=`` or ``Authorization: Bearer``) and goes
through the server's own auth chain for the room document; only an access with the admin
flag (a grant's ``admin``) passes. The HTTP routes turn `AdminRefused` into their answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._exceptions import AuthenticationError
from ..protocol._close_codes import CloseCode
from ._handshake import bearer_token, decide
from ._hooks import Access, AuthenticatePayload

__all__ = ["AdminRefused", "admin_access"]


class AdminRefused(Exception):
    """Not an admin of the room: `status` is 401 (no or a bad token) or 403."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def admin_access(
    server: Any,
    room: str,
    *,
    query_token: str | None,
    headers: Mapping[str, str],
    client: str | None,
    what: str,
) -> Access:
    """The admin access a request holds to `room` (`what` names what it wants, for errors).

    Raises:
        AdminRefused: no token, a bad one (401), or no admin grant for the room (403).
    """
    token = query_token or bearer_token(dict(headers))
    payload = AuthenticatePayload(
        room=room, path="", token=token, headers=dict(headers), client=client
    )
    requires_token = any(extension.requires_token for extension in server.extensions)
    try:
        access = await decide(payload, server.extensions, requires_token=requires_token)
    except AuthenticationError as error:
        status = 401 if error.code == CloseCode.UNAUTHENTICATED else 403
        raise AdminRefused(status, error.reason) from None
    if access is None or not access.admin:
        raise AdminRefused(403, f"{what} of {room!r} needs an admin grant for it")
    return access
