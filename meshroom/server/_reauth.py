"""Token refresh: a fresh token sent on a connection that is already admitted.

A client whose token is about to expire sends a new one in a y-websocket AUTH
message (type 2, var-string token: the same message that may carry the first
token) instead of reconnecting, so it keeps its socket, its awareness and its
place in the room. The token goes through the same `on_authenticate` chain as
at connect. It must name the same participant; then the connection's access
(read-only or not) and its expiry become the new token's, and the server
answers with the "authenticated" message again (see `encode_authenticated`).
A token that is refused closes the connection with the refusal's code (4401
invalid, expired or revoked; 4403 no grant for this room and path, or another
participant), since going on with the old credentials would hide the problem
until they expire.

Tokens are handled one at a time, in the order they came; a connection that
sends more than `MAX_PENDING` while one is being checked is closed (4429).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from .._exceptions import AuthenticationError
from ..protocol._close_codes import CloseCode
from ._handshake import decide
from ._hooks import AuthenticatePayload, Extension

if TYPE_CHECKING:
    from ._session import Session

__all__ = ["TokenRefresh"]

log = logging.getLogger("meshroom.server")

#: Tokens one connection may have waiting while another is checked (default 4).
MAX_PENDING = 4

#: Refresh tasks in flight: the event loop keeps only weak references to tasks.
_running: set[asyncio.Task[None]] = set()


class TokenRefresh:
    """Checks the tokens one session sends after it was admitted, and applies them.

    Only made for servers that require tokens: without auth, an AUTH message after
    admission is ignored, as before.
    """

    __slots__ = ("_extensions", "_headers", "_pending")

    def __init__(self, extensions: Sequence[Extension], headers: Mapping[str, str]) -> None:
        self._extensions = extensions
        #: The request's headers, for the payload (an extension may read cookies again).
        self._headers = headers
        #: Tokens waiting, oldest first; None while none is being checked (one per idle
        #: connection: kept small).
        self._pending: list[str] | None = None

    def __call__(self, session: Session, token: str) -> None:
        """A token arrived on `session` (called from its message handling: never waits)."""
        pending = self._pending
        if pending is not None:
            if len(pending) >= MAX_PENDING:
                session.kill(CloseCode.RATE_LIMITED, "too many token refreshes at once")
            else:
                pending.append(token)
            return
        self._pending = [token]
        # Called from the transport's callbacks too (no current task, so no anyio
        # task group can start it); connections run on asyncio, so an asyncio task does.
        task = asyncio.get_running_loop().create_task(self._drain(session))
        _running.add(task)
        task.add_done_callback(_running.discard)

    async def _drain(self, session: Session) -> None:
        try:
            while self._pending and session.close_reason is None:
                await self._refresh(session, self._pending.pop(0))
        except Exception as error:  # a hook failed: this connection only, like at connect
            log.exception("refreshing the token of %r failed", session)
            session.kill(1011, f"internal error: {type(error).__name__}")
        finally:
            self._pending = None

    async def _refresh(self, session: Session, token: str) -> None:
        current = session.access
        payload = AuthenticatePayload(
            room=session.room.name,
            path=session.document.path,
            token=token,
            headers=dict(self._headers),
            client=session.client,
        )
        try:
            access = await decide(payload, self._extensions, requires_token=True)
        except AuthenticationError as error:
            session.kill(error.code, f"token refresh refused: {error.reason}"[:120])
            return
        assert access is not None  # requires_token: a refusal raises
        if access.participant_id != current.participant_id:
            session.kill(
                CloseCode.FORBIDDEN,
                "token refresh refused: the token names another participant",
            )
            return
        session.reauthorize(access)
        log.info("token refreshed for %r%s", session, " (read-only)" if access.read_only else "")
