"""What the server needs from a transport: send bytes, receive bytes, close with a code.

The server core never sees a WebSocket: the Starlette adapter (`_asgi.py`) is one
`Connection`, and `connection_pair()` is another, in memory, for in-process
peers (agents running beside the server) and tests.

```py
import anyio
from meshroom.server import connection_pair

async def main():
    server_side, client_side = connection_pair()
    await client_side.send(b"hello")
    assert await server_side.recv() == b"hello"
    await server_side.close(1000, "bye")

anyio.run(main)
```
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._exceptions import MeshroomError

__all__ = [
    "Connection",
    "ConnectionClosed",
    "MemoryConnection",
    "PushConnection",
    "connection_pair",
]


class ConnectionClosed(MeshroomError, anyio.EndOfStream):
    """`recv()` or `send()` on a closed connection; carries the close code and reason."""

    def __init__(self, code: int = 1000, reason: str = "") -> None:
        super().__init__(f"connection closed ({code}{': ' + reason if reason else ''})")
        self.code = code
        self.reason = reason


@runtime_checkable
class Connection(Protocol):
    """One peer's byte-message channel (one WebSocket, one in-memory pipe…)."""

    async def send(self, message: bytes) -> None:
        """Send one message; raises `ConnectionClosed` once closed."""

    async def recv(self) -> bytes:
        """Receive one message; raises `ConnectionClosed` when the peer closed."""

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close with a WebSocket close code; idempotent."""


@runtime_checkable
class PushConnection(Connection, Protocol):
    """A `Connection` that calls back with each message and writes without waiting.

    A transport running in the event loop's own callbacks (meshroom's uvicorn
    WebSocket protocol, `meshroom.uvicorn_websocket`) offers this: its session then
    needs no reader or writer task, and a message reaches every reader without a
    task switch. `recv` and `send` still work until `start_pushing` (the handshake
    uses them).
    """

    @property
    def writable(self) -> bool:
        """False while the socket's buffer is full (or once closed): hold messages back."""

    def write(self, message: bytes) -> None:
        """Send one message now, without waiting; does nothing once closed."""

    def defer(self, callback: Callable[[], None]) -> None:
        """Call `callback` once, soon, after the messages being handled now."""

    def start_pushing(
        self,
        on_message: Callable[[bytes], None],
        on_close: Callable[[int, str], None],
        on_writable: Callable[[], None],
    ) -> None:
        """From now on, deliver messages, the peer's close and buffer drains by calling back.

        Messages received but not yet read with `recv` are delivered first, at once.
        """


class _Closed:
    """Shared close state of a memory pair: the first close wins, both sides see it."""

    __slots__ = ("code", "reason")

    def __init__(self) -> None:
        self.code: int | None = None
        self.reason = ""


class MemoryConnection:
    """One end of an in-memory `Connection` pair (see `connection_pair`)."""

    def __init__(
        self,
        outgoing: MemoryObjectSendStream[bytes],
        incoming: MemoryObjectReceiveStream[bytes],
        closed: _Closed,
    ) -> None:
        self._outgoing = outgoing
        self._incoming = incoming
        self._closed = closed

    @property
    def close_code(self) -> int | None:
        """The close code once either side closed, else None."""
        return self._closed.code

    @property
    def close_reason(self) -> str:
        return self._closed.reason

    def _raise_closed(self) -> None:
        raise ConnectionClosed(self._closed.code or 1006, self._closed.reason)

    async def send(self, message: bytes) -> None:
        if self._closed.code is not None:
            self._raise_closed()
        try:
            await self._outgoing.send(bytes(message))
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            self._raise_closed()

    async def recv(self) -> bytes:
        try:
            return await self._incoming.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            self._raise_closed()
            raise  # unreachable: keeps type checkers happy

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._closed.code is None:
            self._closed.code = code
            self._closed.reason = reason
        self._outgoing.close()
        self._incoming.close()
        await anyio.lowlevel.checkpoint()


def connection_pair(max_buffer: float = math.inf) -> tuple[MemoryConnection, MemoryConnection]:
    """Two connected in-memory `Connection`s: what one sends, the other receives.

    Args:
        max_buffer: messages buffered per direction before `send` waits (default unbounded:
            the server bounds its own send queue).
    """
    a_to_b_send, a_to_b_recv = anyio.create_memory_object_stream[bytes](max_buffer)
    b_to_a_send, b_to_a_recv = anyio.create_memory_object_stream[bytes](max_buffer)
    closed = _Closed()
    return (
        MemoryConnection(a_to_b_send, b_to_a_recv, closed),
        MemoryConnection(b_to_a_send, a_to_b_recv, closed),
    )
