"""The link's side of y-protocols/auth: who the server says we are, a denial, a token refresh.

Apart from the sync and awareness messages because it changes with the access rules, not
with the document: the server greets each connection with an "authenticated" message
naming the participant (with auth, the token decides who that is), denies a connection
with "permission denied" and a reason, and answers each token refresh sent on a live
connection with another "authenticated" message, in the order they were sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anyio
from pycrdt import Decoder

from .._exceptions import ClientError, ProtocolError
from ..protocol._close_codes import CloseCode
from ..protocol._messages import decode_authenticated, encode_auth_token

__all__ = ["MESSAGE_AUTH", "REFRESH_ANSWER_WAIT", "TokenRefreshes", "read_auth"]

log = logging.getLogger("meshroom.client")

MESSAGE_AUTH = 2  # y-protocols/auth: [2, 0 = permission denied, reason]
_AUTHENTICATED = b"\x02"  # [2, 2 = authenticated, scope, identity JSON]: see _protocol

#: Seconds to wait for the server's answer to a token refresh (default 10 s; a server
#: that does not know token refresh never answers).
REFRESH_ANSWER_WAIT = 10.0


def read_auth(message: bytes, where: str) -> tuple[str, dict[str, Any]] | ClientError | None:
    """Read an auth message from the server at `where`.

    Returns:
        For an "authenticated" message, the scope (``"read-write"`` or ``"readonly"``:
        whether the server applies our edits) and who the server says this connection
        is (``id``, ``name``, ``kind``); the refusal, as a `ClientError` with `code`
        4403, for "permission denied"; None for a malformed "authenticated" message
        (logged).
    """
    if message[1:2] == _AUTHENTICATED:
        try:
            return decode_authenticated(message[1:])
        except ProtocolError:
            log.warning("%s sent a malformed authenticated message", where)
            return None
    decoder = Decoder(message[2:])
    reason = decoder.read_var_string() if len(message) > 2 else "permission denied"
    return ClientError(
        f"{where} denied access: {reason}",
        code=int(CloseCode.FORBIDDEN),
        reason=reason,
    )


class _Refresh:
    """One token refresh waiting for the server's answer on the current connection."""

    __slots__ = ("answered", "done", "error")

    def __init__(self) -> None:
        self.done = anyio.Event()
        #: True once the server answered with "authenticated"; else the connection ended.
        self.answered = False
        #: The refusal that ended the connection, if it was one.
        self.error: ClientError | None = None


class TokenRefreshes:
    """The token refreshes sent on the current connection, each waiting for its answer.

    A connection's first "authenticated" message is the greeting; each later one
    answers the oldest refresh still waiting.
    """

    def __init__(self) -> None:
        self._greeted = False
        self._waiting: list[_Refresh] = []

    def connection_opened(self) -> None:
        """A new connection starts: its first "authenticated" message is the greeting."""
        self._greeted = False

    def authenticated(self) -> None:
        """The server sent "authenticated": the greeting, or the answer to a refresh."""
        if not self._greeted:
            self._greeted = True
        elif self._waiting:  # the answer to our oldest token refresh
            waiter = self._waiting.pop(0)
            waiter.answered = True
            waiter.done.set()

    def connection_ended(self, refusal: ClientError | None) -> None:
        """Release every refresh still waiting: refused with `refusal`, else left to reconnect."""
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            waiter.error = refusal
            waiter.done.set()

    async def send(self, token: str, where: str, enqueue: Callable[[bytes], None]) -> None:
        """Send `token` with `enqueue` and wait for the server at `where` to answer.

        Raises:
            ClientError: the server refused the token (it closed the connection), or did
                not answer within `REFRESH_ANSWER_WAIT` seconds.
        """
        waiter = _Refresh()
        self._waiting.append(waiter)
        enqueue(encode_auth_token(token))
        with anyio.move_on_after(REFRESH_ANSWER_WAIT):
            await waiter.done.wait()
        if waiter.error is not None:
            raise waiter.error
        if not waiter.done.is_set():
            if waiter in self._waiting:
                self._waiting.remove(waiter)
            raise ClientError(
                f"{where} did not answer the token refresh in {REFRESH_ANSWER_WAIT:g} s"
            )
