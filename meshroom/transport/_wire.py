"""The bytes of meshroom's WebSocket transport (`_uvicorn.py`) that need no socket.

The upgrade request uvicorn replays and the 101 (or 400) answer, server frames built
without a `Frame` object (one per broadcast, not per reader), close reasons cut to what a
close frame carries, and `Deferred`: the callbacks that write the sessions' queues.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import struct
import weakref
from collections.abc import Callable

from websockets.utils import accept_key

__all__ = [
    "BAD_HANDSHAKE",
    "Deferred",
    "binary_frame",
    "close_reason",
    "deferred_writes",
    "handshake_response",
    "parse_request",
]

log = logging.getLogger("meshroom.server")

#: Close reasons are at most 123 bytes of UTF-8 (RFC 6455).
_MAX_REASON_BYTES = 123


class _LastFrame:
    """The frame built for the last message: a broadcast writes one message to every
    reader, so each frame is built once, not once per reader.

    One tuple, replaced whole (a reader in another thread never gets another
    message's frame), and only for messages up to `_LAST_FRAME_BYTES`: a large
    first sync is sent once, and holding it after it left would only cost memory.
    """

    last: tuple[bytes | None, bytes] = (None, b"")


#: Largest message whose frame `_LastFrame` keeps.
_LAST_FRAME_BYTES = 1024 * 1024


def binary_frame(payload: bytes) -> bytes:
    """One unmasked, final binary frame (what a server sends), built without a Frame object."""
    message, frame = _LastFrame.last
    if payload is message:
        return frame
    size = len(payload)
    if size < 126:
        header = bytes((0x82, size))
    elif size < 65536:
        header = struct.pack("!BBH", 0x82, 126, size)
    else:
        header = struct.pack("!BBQ", 0x82, 127, size)
    frame = header + payload
    _LastFrame.last = (payload, frame) if size <= _LAST_FRAME_BYTES else (None, b"")
    return frame


def parse_request(data: bytes) -> tuple[str, dict[str, str]]:
    """The target and headers (lower-case names) of the upgrade request uvicorn replays.

    uvicorn has parsed and checked the request already (it asked for a WebSocket
    upgrade); it hands it over re-serialised, so a plain split suffices.
    """
    head, _, _ = data.partition(b"\r\n\r\n")
    request_line, *lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        value = value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    parts = request_line.split(" ")
    return (parts[1] if len(parts) == 3 else ""), headers


_BAD_HANDSHAKE_BODY = b"Failed to open a WebSocket connection: bad handshake.\n"
#: The answer to an upgrade request without a valid key or version (nothing is opened).
BAD_HANDSHAKE = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
    % (len(_BAD_HANDSHAKE_BODY), _BAD_HANDSHAKE_BODY)
)


def handshake_response(headers: dict[str, str]) -> bytes | None:
    """The 101 response (RFC 6455 §4.2.2), or None when the request is not a valid upgrade.

    Built here rather than by websockets' `accept()`: the parsed request would
    otherwise stay referenced by its parser for the connection's lifetime.
    """
    key = headers.get("sec-websocket-key", "")
    if headers.get("sec-websocket-version") != "13" or len(key) != 24:
        return None
    date = email.utils.formatdate(usegmt=True)
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept_key(key)}\r\nDate: {date}\r\nServer: meshroom\r\n\r\n"
    ).encode("latin-1")


def close_reason(reason: str) -> str:
    """`reason` cut to what a close frame carries, never inside a character."""
    data = reason.encode("utf-8")[:_MAX_REASON_BYTES]
    return data.decode("utf-8", errors="ignore")


class Deferred:
    """Callbacks run once, together: after a socket's read is handled, or on the loop's
    next turn (one `call_soon`) for what was queued elsewhere.

    Sessions defer their writes here: every message of a read is handled first,
    then each session writes its queue as one merged frame.
    """

    __slots__ = ("_callbacks", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._callbacks: list[Callable[[], None]] = []

    def add(self, callback: Callable[[], None]) -> None:
        if not self._callbacks:
            self._loop.call_soon(self.run)
        self._callbacks.append(callback)

    def run(self) -> None:
        """Run what is pending now (a socket's messages are all handled: no need to wait)."""
        if not self._callbacks:
            return
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            try:
                callback()
            except Exception:  # one session's failure never stops the others' writes
                log.exception("a deferred write failed")


_deferred_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Deferred] = (
    weakref.WeakKeyDictionary()
)


def deferred_writes(loop: asyncio.AbstractEventLoop) -> Deferred:
    deferred = _deferred_by_loop.get(loop)
    if deferred is None:
        deferred = _deferred_by_loop[loop] = Deferred(loop)
    return deferred
