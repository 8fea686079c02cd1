"""`JwtAuth`: the server extension that admits connections carrying a valid token.

The server extracts the token (query parameter ``token``, ``Authorization:
Bearer``, or a first y-websocket auth message) and calls `on_authenticate`
before it sends any document content. This extension verifies the token and
turns its grants into an `Access`; refusals carry a distinct close code:

- 4401 (unauthenticated): no token, malformed, badly signed, expired;
- 4403 (forbidden): a valid token whose grants do not cover this room and path.

An embedding application that decides by itself (a session table, an ACL
service) passes ``authenticate=``: it receives the payload and the verified
claims, and returns the `Access` to grant, or None to refuse (4403).
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from .._exceptions import AuthenticationError
from ..protocol._close_codes import CloseCode
from ..server._hooks import Access, AuthenticatePayload, Extension
from ._redact import install_redaction
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
        close_at_expiry: close open connections with 4401 when their token expires (plus
            the leeway). Off by default: y-websocket does not retry a 4401, so an app that
            turns this on must reconnect with a fresh token.
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
        close_at_expiry: bool = False,
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

    async def on_startup(self) -> None:
        """Keep tokens passed as ``?token=`` out of the ASGI server's request logs."""
        install_redaction()

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
        if self.close_at_expiry and access.expires_at is None:
            deadline = claims.expires_at.timestamp() + self.verifier.leeway
            access = dataclasses.replace(access, expires_at=deadline)
        return access
