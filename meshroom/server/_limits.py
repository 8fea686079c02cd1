"""Limits that keep one client from hurting the server or the other clients.

Every field has a default and a reason; a server takes one frozen `Limits`.
`TokenBucket` is the rate limiter behind `messages_per_second`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

__all__ = ["Limits", "TokenBucket"]


@dataclass(frozen=True)
class Limits:
    """Per-connection and per-room bounds.

    ```py
    from meshroom import Limits, Server

    server = Server(limits=Limits(send_queue_size=256, messages_per_second=50))
    ```
    """

    #: Largest message accepted, in bytes. Default 16 MiB: a large paste or the first
    #: sync of a big document arrives as one message. Bigger → close 1009.
    max_message_size: int = 16 * 1024 * 1024
    #: Messages waiting to be written to one connection. Default 1024: minutes of typing.
    #: A client that does not read fast enough overflows it and is closed with
    #: `CloseCode.SLOW_READER`, so it never grows server memory nor delays others.
    send_queue_size: int = 1024
    #: Bytes waiting to be written to one connection (beyond what its socket holds).
    #: Default 32 MiB: two of the largest messages. Queued updates are merged before
    #: either bound counts as overflow, so a burst to a briefly busy client never does.
    send_queue_bytes: int = 32 * 1024 * 1024
    #: Bytes queued for all connections of the server together. Default 512 MiB; past
    #: it, the connection with the most waiting is closed (`SLOW_READER`), then the next,
    #: so that many readers that stopped at once cannot exhaust the server's memory.
    max_queued_bytes: int = 512 * 1024 * 1024
    #: Open connections to the server, all addresses together. Default 10,000; past it,
    #: a new connection is closed at once with 1013 (try again later).
    max_connections: int = 10_000
    #: Open connections from one client address. Default 256: a browser with many tabs
    #: and documents fits; a runaway script does not. 0 disables the check.
    max_connections_per_ip: int = 256
    #: Sustained messages per second from one connection. Default 300: fast typing plus
    #: cursor moves is ~30/s; agents streaming text stay well below. Over → `RATE_LIMITED`.
    messages_per_second: float = 300.0
    #: Messages a connection may send at once above the sustained rate. Default 3000:
    #: a client coming back online flushes its offline edits in a burst.
    messages_burst: int = 3000
    #: Largest first message of a connection that authenticates by an AUTH message.
    #: Default 1 MiB: a token fits; an unauthenticated flood does not.
    pre_auth_bytes: int = 1024 * 1024
    #: Seconds a connection has to present a token when one is required. Default 10.
    auth_timeout: float = 10.0
    #: Writes tolerated from a read-only connection (or forbidden room-document edits)
    #: before it is closed. Default 20: a viewer's editor may emit a few stray updates
    #: (cursor plugins, normalisation) that are simply dropped.
    read_only_violations: int = 20
    #: Room messages kept in the room document; older ones are trimmed. Default 200.
    room_messages: int = 200
    #: Bytes of one document's updates the server holds while storage cannot write them
    #: (they are relayed only once written). Default 64 MiB; past it, a client's writes
    #: are refused: its socket closes with `CloseCode.STORAGE_UNAVAILABLE`, the client
    #: keeps its edits and resends them when it reconnects.
    unwritten_bytes: int = 64 * 1024 * 1024
    #: Documents one Hocuspocus socket may have open or waiting for their auth at once.
    #: Default 64: an app with many editors on a page fits; fanning one socket out over
    #: thousands of names (each queueing frames before its auth) does not. Past it, the
    #: next document is refused with a permission-denied message; the socket stays.
    documents_per_socket: int = 64

    def __post_init__(self) -> None:
        for name in (
            "max_message_size",
            "send_queue_size",
            "send_queue_bytes",
            "messages_burst",
            "pre_auth_bytes",
            "room_messages",
            "unwritten_bytes",
            "max_queued_bytes",
            "max_connections",
            "documents_per_socket",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"Limits.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("max_connections_per_ip", "read_only_violations"):
            if getattr(self, name) < 0:
                raise ValueError(f"Limits.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("messages_per_second", "auth_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"Limits.{name} must be > 0, got {getattr(self, name)}")


class TokenBucket:
    """`rate` tokens per second, at most `burst` saved; `take()` is False when empty."""

    __slots__ = ("_burst", "_last", "_rate", "_tokens")

    def __init__(self, rate: float, burst: int) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._last = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
