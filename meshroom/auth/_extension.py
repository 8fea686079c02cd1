"""`JwtAuth`: the server extension that admits connections carrying a valid token.

The server extracts the token (query parameter ``token``, ``Authorization:
Bearer``, or a first y-websocket auth message) and calls `on_authenticate`
before it sends any document content. This extension verifies the token and
turns its grants into an `Access`; refusals carry a distinct close code:

- 4401 (unauthenticated): no token, malformed, badly signed, expired;
- 4403 (forbidden): a valid token whose grants do not cover this room and path.

It also ends connections whose credentials stop being valid: at the token's
``exp`` (plus the leeway) unless the client refreshed its token first, and
within `revocation_poll` seconds of a revocation (`revoke`, or the revocation
file `meshroom token revoke` writes), both with 4401.

An embedding application that decides by itself (a session table, an ACL
service) passes ``authenticate=``: it receives the payload and the verified
claims, and returns the `Access` to grant, or None to refuse (4403).
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

import anyio
from anyio.abc import TaskGroup

from .._exceptions import AuthenticationError
from ..protocol._close_codes import CloseCode
from ..server._hooks import Access, AuthenticatePayload, ConnectionPayload, Extension
from ._redact import install_redaction
from ._revocations import RevocationList
from ._tokens import DEFAULT_LEEWAY, TokenClaims, TokenVerifier

__all__ = ["AuthenticateCallback", "JwtAuth"]

logger = logging.getLogger("meshroom.auth")

#: ``authenticate(payload, claims) -> Access | None`` (sync or async).
AuthenticateCallback = Callable[
    [AuthenticatePayload, TokenClaims], "Access | Awaitable[Access | None] | None"
]


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class JwtAuth(Extension):
    """Admit connections whose JWT grants the requested room and document path.

    ```py
    server = Server(extensions=[JwtAuth(secret=os.environ["MESHROOM_SECRET"])])
    ```

    Args:
        secret: HMAC secret(s); a list or ``{kid: secret}`` accepts several (key rotation).
        public_key: public key(s) for RS256/ES256 tokens, same shapes.
        algorithms: accepted algorithms (default from the key kinds given).
        leeway: clock-skew tolerance in seconds (default 30).
        issuer: required ``iss`` when set.
        audience: required ``aud`` when set.
        authenticate: decide from the verified claims instead of the grants; return the
            `Access` to admit, None to refuse (4403), or raise `AuthenticationError`.
        close_at_expiry: close open connections with 4401 "token expired" when their token
            expires (plus the leeway), unless the client sent a fresh token before (a
            token refresh, see `RoomClient.refresh_token`). On by default: otherwise a
            connection outlives its token and ``exp`` limits nothing. y-websocket does not
            retry a 4401, so a browser app refreshes or reconnects with a fresh token.
        revocations: a revocation file (JSON, written by ``meshroom token revoke``) to
            enforce and poll, or a `RevocationList`; None keeps an in-memory list that
            only `revoke` fills.
        revocation_poll: seconds between checks of the revocation file for changes
            (default 1 s): a revoked token's connections close within about that long.

    Raises:
        RevocationListError: the revocation file exists but cannot be read or parsed.
    """

    requires_token = True
    #: Auth runs before every other extension's opinion.
    priority = 1000

    def __init__(
        self,
        secret: str | bytes | Sequence[str | bytes] | Mapping[str, str | bytes] | None = None,
        *,
        public_key: Any = None,
        algorithms: Sequence[str] | None = None,
        leeway: float | timedelta = DEFAULT_LEEWAY,
        issuer: str | None = None,
        audience: str | None = None,
        authenticate: AuthenticateCallback | None = None,
        close_at_expiry: bool = True,
        revocations: str | os.PathLike[str] | RevocationList | None = None,
        revocation_poll: float = 1.0,
    ) -> None:
        self.verifier = TokenVerifier(
            secret,
            public_key=public_key,
            algorithms=algorithms,
            leeway=leeway,
            issuer=issuer,
            audience=audience,
        )
        self._authenticate = authenticate
        self.close_at_expiry = close_at_expiry
        if not revocation_poll > 0:
            raise ValueError("revocation_poll must be a positive number of seconds")
        self.revocation_poll = float(revocation_poll)
        self.revocations = (
            revocations if isinstance(revocations, RevocationList) else RevocationList(revocations)
        )
        #: Sessions this extension admitted that are still open (see `on_connect`).
        self._sessions: set[Any] = set()
        self._group: TaskGroup | None = None
        self._exit_stack: contextlib.AsyncExitStack | None = None

    async def on_startup(self) -> None:
        """Keep ``?token=`` out of the request logs; start polling the revocation file."""
        install_redaction()
        if self.revocations.path is not None:
            async with contextlib.AsyncExitStack() as stack:
                self._group = await stack.enter_async_context(anyio.create_task_group())
                self._exit_stack = stack.pop_all()
            self._group.start_soon(self._poll_revocations)

    async def on_shutdown(self) -> None:
        """Stop polling the revocation file."""
        if self._group is not None and self._exit_stack is not None:
            self._group.cancel_scope.cancel()
            await self._exit_stack.aclose()
            self._group = self._exit_stack = None

    async def on_connect(self, payload: ConnectionPayload) -> None:
        """Remember the session, so that a revocation can close it."""
        if payload.session is not None:
            self._sessions.add(payload.session)

    async def on_disconnect(self, payload: ConnectionPayload) -> None:
        self._sessions.discard(payload.session)

    def revoke(self, *, jti: str | None = None, participant: str | None = None) -> int:
        """Revoke a token (by its ``jti``) and/or every token of a participant issued so far.

        Revoked tokens are refused from now on (4401 "token revoked"), and open
        connections admitted with them close now with the same code. Tokens the
        participant gets later work. The revocation lives in this process's memory;
        for one that outlives restarts and reaches every server, use the revocation
        file (``meshroom token revoke``).

        Returns:
            How many open connections were closed.

        Raises:
            ValueError: neither `jti` nor `participant` given.
        """
        self.revocations.revoke(jti=jti, participant=participant)
        return self._close_revoked()

    def _revoked(self, access: Access) -> bool:
        return self.revocations.revokes(access.token_id, access.participant_id, access.issued_at)

    def _close_revoked(self) -> int:
        closed = 0
        for session in list(self._sessions):
            if session.close_reason is None and self._revoked(session.access):
                logger.info("closing %r: token revoked", session)
                session.kill(CloseCode.UNAUTHENTICATED, "token revoked")
                closed += 1
        return closed

    async def _poll_revocations(self) -> None:
        while True:
            await anyio.sleep(self.revocation_poll)
            try:
                changed = self.revocations.reload()
            except Exception:  # never let a surprise stop the polling (or the server)
                logger.exception("checking the revocation list failed")
                continue
            if changed:
                self._close_revoked()

    async def on_authenticate(self, payload: AuthenticatePayload) -> Access:
        """Verify the token and map its grants (or the callback's answer) to an `Access`."""
        where = f"room {_short(payload.room)!r} path {_short(payload.path)!r}"
        if payload.token is None:
            logger.info("refused %s from %s: missing token", where, payload.client)
            raise AuthenticationError("missing token", code=CloseCode.UNAUTHENTICATED)
        try:
            claims = self.verifier.verify(payload.token)
        except AuthenticationError as error:
            logger.info("refused %s from %s: %s", where, payload.client, error.reason)
            raise
        issued_at = claims.issued_at.timestamp() if claims.issued_at is not None else None
        if self.revocations.revokes(claims.token_id, claims.participant_id, issued_at):
            logger.info(
                "refused %s to %s (%s): token revoked", where, claims.participant_id, payload.client
            )
            raise AuthenticationError("token revoked", code=CloseCode.UNAUTHENTICATED)
        if self._authenticate is not None:
            result = self._authenticate(payload, claims)
            if inspect.isawaitable(result):
                result = await result
            access = result
        else:
            access = claims.access_for(payload.room, payload.path)
        if access is None:
            logger.info(
                "refused %s to %s (%s): no grant", where, claims.participant_id, payload.client
            )
            raise AuthenticationError(f"no access to {where}", code=CloseCode.FORBIDDEN)
        if not isinstance(access, Access):
            raise TypeError(f"authenticate must return Access or None, not {type(access)}")
        if access.token_id is None and access.issued_at is None:
            # an `authenticate` callback's Access: still revocable as this token
            access = dataclasses.replace(access, token_id=claims.token_id, issued_at=issued_at)
        if self.close_at_expiry and access.expires_at is None:
            deadline = claims.expires_at.timestamp() + self.verifier.leeway
            access = dataclasses.replace(access, expires_at=deadline)
        return access
