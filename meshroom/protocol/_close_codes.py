"""WebSocket close codes the server uses, one per reason a client can act on.

4000-4999 is the range RFC 6455 leaves to applications; the standard codes are
used where they already say it (1009: message too big).
"""

from __future__ import annotations

import enum

__all__ = ["CloseCode"]


class CloseCode(enum.IntEnum):
    """Why the server closed a socket; the close reason carries a human sentence."""

    NORMAL = 1000  #: the server or the client closed on purpose
    GOING_AWAY = 1001  #: the server shuts down
    MESSAGE_TOO_BIG = 1009  #: a frame exceeded `max_message_size`
    TRY_AGAIN_LATER = 1013  #: the server holds `Limits.max_connections` connections
    BAD_ROOM_NAME = 4400  #: the room name or document path breaks the naming rules
    UNAUTHENTICATED = 4401  #: no token, or a token that is expired, malformed or badly signed
    FORBIDDEN = 4403  #: a valid token that grants no access to this room or path
    READ_ONLY_VIOLATION = 4406  #: a read-only connection kept sending writes
    AUTH_TIMEOUT = 4408  #: no token arrived before the authentication deadline
    PROTOCOL_ERROR = 4422  #: bytes that are not y-websocket messages
    RATE_LIMITED = 4429  #: too many messages per second, or connections from one address
    SLOW_READER = 4503  #: the client did not read fast enough; its send queue overflowed
    #: storage cannot write edits now: the client keeps its edits and resends them when
    #: it reconnects (y-websocket retries 45xx codes)
    STORAGE_UNAVAILABLE = 4507
