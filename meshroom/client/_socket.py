"""Opening the client's WebSocket, and which refusals are final.

A refusal that retrying cannot fix (bad name, no or bad token, forbidden path,
read-only writes, a message over the server's size limit) must surface as an
error, not as a reconnect loop; anything else (network down, server restarting,
rate limited, slow reader) is transient and retried with backoff.
"""

from __future__ import annotations

import anyio
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus, InvalidURI

from .._exceptions import ClientError
from ..protocol._close_codes import CloseCode

__all__ = ["FATAL_CLOSE_CODES", "open_socket"]

#: Close codes after which reconnecting cannot help: the server refused us for who we are
#: or what we sent, not because of a transient failure.
FATAL_CLOSE_CODES = frozenset(
    {
        CloseCode.BAD_ROOM_NAME,
        CloseCode.UNAUTHENTICATED,
        CloseCode.FORBIDDEN,
        CloseCode.READ_ONLY_VIOLATION,
        CloseCode.MESSAGE_TOO_BIG,  # resending the same state would be refused again
    }
)

#: HTTP statuses of a refused handshake that reconnecting cannot fix, as the close code
#: the server would have sent after accepting.
_FATAL_HTTP_STATUS = {
    400: CloseCode.BAD_ROOM_NAME,
    401: CloseCode.UNAUTHENTICATED,
    403: CloseCode.FORBIDDEN,
    404: CloseCode.BAD_ROOM_NAME,
}


async def open_socket(url: str, where: str, deadline: float | None) -> ClientConnection:
    """Open a y-websocket connection to `url` (no compression, no message size limit).

    Args:
        url: Full URL, query included.
        where: The URL without secrets, for error messages.
        deadline: `anyio.current_time()` by which the handshake must be done, or None.

    Raises:
        ClientError: the server refused the handshake with a final HTTP status, or the
            URL is not a WebSocket URL.
        OSError, websockets.InvalidHandshake, TimeoutError: transient; retry.
    """
    timeout = None if deadline is None else max(0.1, deadline - anyio.current_time())
    try:
        return await connect(
            url,
            compression=None,
            max_size=None,
            open_timeout=timeout,
            ping_interval=20,
            ping_timeout=20,
            close_timeout=2,
        )
    except InvalidStatus as error:
        status = error.response.status_code
        code = _FATAL_HTTP_STATUS.get(status)
        if code is None:
            raise
        body = error.response.body.decode("utf-8", "replace") if error.response.body else ""
        raise ClientError(
            f"{where} refused the connection: HTTP {status} {body}".strip(),
            code=int(code),
            reason=body or f"HTTP {status}",
        ) from error
    except InvalidURI as error:
        raise ClientError(f"not a WebSocket URL: {where}", reason=str(error)) from error
