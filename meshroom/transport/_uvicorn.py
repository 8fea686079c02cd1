"""`meshroom serve`'s WebSocket transport: uvicorn hands each upgraded socket to a session.

Under plain ASGI a connection costs an ASGI task, a receive queue, Starlette's
frames and a session writer task, and every delivered message wakes a task.
This protocol replaces uvicorn's WebSocket implementation: frames are parsed
in `data_received` (websockets' sans-I/O parser) and handed to the session at
once; what the sessions queued is written when the read is handled, and every
`_WRITE_AFTER` (2 ms) of a long one (edits from elsewhere: on the loop's next
turn, `Deferred`), merged as under ASGI.
An admitted connection costs no task, and a message reaches twenty readers
without a single task switch.

Plain HTTP requests (`/healthz`, static files, `/dev/token`) still go to the
ASGI app; every WebSocket upgrade goes to the `Server`. Embedders who mount
`create_app(server)` in their own app keep the portable ASGI path, or pass
`uvicorn_websocket(server)` as uvicorn's `ws` to get this one.

```py
import uvicorn
from meshroom import Server, create_app
from meshroom.transport import uvicorn_websocket

server = Server()
uvicorn.run(create_app(server), port=8765, ws=uvicorn_websocket(server))
```

Longer than 400 lines: one asyncio protocol, whose callbacks (the handshake, reads,
writes, pauses, the keepalive, the close) share its state; the bytes it writes without a
socket are in `_wire`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

from ..server._connection import ConnectionClosed
from ._wire import (
    BAD_HANDSHAKE,
    binary_frame,
    close_reason,
    deferred_writes,
    handshake_response,
    parse_request,
)

if TYPE_CHECKING:
    from ..server._server import Server

__all__ = ["RoomWebSocketProtocol", "uvicorn_websocket"]

#: Default seconds between keepalive checks (see `uvicorn_websocket`): a frozen peer is
#: dropped within 9 s; a ping to a quiet peer every 3 s costs a few bytes.
PING_INTERVAL = 3.0

log = logging.getLogger("meshroom.server")
#: uvicorn's own WebSocket implementations log each handshake here; so does this one
#: (and `meshroom.auth` redacts tokens from this logger).
access_log = logging.getLogger("uvicorn.error")

#: Bytes read ahead of the session (while it is admitted and its document loads)
#: before reading pauses: a client can not grow memory while it waits.
_INBOX_PAUSE_BYTES = 1024 * 1024
#: Seconds a closing socket waits for the peer's close frame before it is cut.
_CLOSE_TIMEOUT = 10.0
#: Seconds of handling one read (hundreds of messages once a burst piled up) before
#: what it queued is written anyway: readers then work while the rest is handled, and
#: the first message does not wait for the last. Against writing once per read, the
#: fan-out burst gains throughput at the same p99; 0.5 ms splits into too many frames.
_WRITE_AFTER = 0.002


class RoomWebSocketProtocol(asyncio.Protocol):
    """One WebSocket connection, after uvicorn's HTTP upgrade: a meshroom `PushConnection`.

    uvicorn creates it with its config and state (see `uvicorn_websocket`).
    """

    __slots__ = (
        "_client",
        "_close_sent",
        "_close_timer",
        "_conn",
        "_connections",
        "_deferred",
        "_ended",
        "_fragments",
        "_heard",
        "_inbox",
        "_inbox_bytes",
        "_loop",
        "_on_close",
        "_on_message",
        "_on_writable",
        "_ping_interval",
        "_ping_timer",
        "_pinged",
        "_reading_paused",
        "_server",
        "_tasks",
        "_transport",
        "_waiter",
        "_writable",
    )

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: Any = None,
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        server: Server,
        ping_interval: float = PING_INTERVAL,
    ) -> None:
        self._server = server
        self._loop = _loop or asyncio.get_event_loop()
        self._deferred = deferred_writes(self._loop)
        self._connections: set[Any] = server_state.connections
        self._tasks: set[asyncio.Task[None]] = server_state.tasks
        self._conn: ServerProtocol | None = None  # once the handshake is answered
        self._transport: asyncio.Transport | None = None
        self._client: str | None = None
        self._ping_interval = ping_interval
        self._ping_timer: asyncio.TimerHandle | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self._heard = False  # any bytes from the peer since the last keepalive check
        self._pinged = False
        self._fragments: list[bytes] | None = None
        # Before `start_pushing`: messages wait here for `recv`.
        self._inbox: list[bytes] | None = []
        self._inbox_bytes = 0
        self._reading_paused = False
        self._waiter: asyncio.Future[None] | None = None
        # After `start_pushing`: the session's callbacks.
        self._on_message: Callable[[bytes], None] | None = None
        self._on_close: Callable[[int, str], None] | None = None
        self._on_writable: Callable[[], None] | None = None
        self._writable = True
        self._close_sent = False
        #: (code, reason) the connection ended with, once it did (peer close or lost).
        self._ended: tuple[int, str] | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._connections.add(self)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self._client = f"{peer[0]}:{peer[1]}"

    def data_received(self, data: bytes) -> None:
        self._heard = True
        conn = self._conn
        if conn is None:
            self._handshake(data)
            return
        conn.receive_data(data)
        deferred = self._deferred
        clock = time.perf_counter
        due = clock() + _WRITE_AFTER
        for event in conn.events_received():
            self._frame(event)
            if clock() >= due:  # a long read: write what is queued so far
                deferred.run()
                due = clock() + _WRITE_AFTER
        self._write_pending()
        # every message of this read is handled: write what they queued now, merged,
        # rather than on the loop's next turn
        deferred.run()

    def eof_received(self) -> bool | None:
        if self._conn is not None:
            self._conn.receive_eof()
            self._write_pending()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._connections.discard(self)
        for timer in (self._ping_timer, self._close_timer):
            if timer is not None:
                timer.cancel()
        self._writable = False
        self._close_sent = True
        received = self._conn.close_rcvd if self._conn is not None else None
        self._end(received.code if received else 1006, received.reason if received else "")

    def pause_writing(self) -> None:
        self._writable = False

    def resume_writing(self) -> None:
        if self._close_sent:
            return
        self._writable = True
        if self._on_writable is not None:
            self._on_writable()

    def shutdown(self) -> None:
        """uvicorn is shutting down: tell the client (1012), which reconnects elsewhere."""
        self._close(1012, "server restarting")

    # -- incoming --------------------------------------------------------------------------

    def _handshake(self, data: bytes) -> None:
        target, headers = parse_request(data)
        response = handshake_response(headers)
        assert self._transport is not None
        if response is None:
            self._transport.write(BAD_HANDSHAKE)
            self._close_sent = True
            self._transport.close()
            return
        self._transport.write(response)
        # +1 KiB: a message just over the limit is refused by the session, with its reason
        self._conn = ServerProtocol(
            state=State.OPEN, max_size=self._server.limits.max_message_size + 1024, logger=log
        )
        if access_log.isEnabledFor(logging.INFO):
            access_log.info('%s - "WebSocket %s" [accepted]', self._client, target)
        path, _, query = target.partition("?")
        task = self._loop.create_task(self._serve(path, dict(parse_qsl(query)), headers))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._ping_timer = self._loop.call_later(self._ping_interval, self._keepalive)

    async def _serve(self, path: str, query: dict[str, str], headers: dict[str, str]) -> None:
        # Returns once the session runs on its own (or was refused, and closed)
        try:
            await self._server.serve(self, path, query=query, headers=headers, client=self._client)
        except Exception:  # pragma: no cover - serve() closes on its own errors
            log.exception("serving %s failed", path)
            self._close(1011, "internal error")

    def _frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.BINARY or opcode is Opcode.TEXT:
            if frame.fin:
                self._deliver(bytes(frame.data))
            else:
                self._fragments = [bytes(frame.data)]
        elif opcode is Opcode.CONT and self._fragments is not None:
            self._fragments.append(bytes(frame.data))
            if frame.fin:
                data, self._fragments = b"".join(self._fragments), None
                self._deliver(data)
        elif opcode is Opcode.CLOSE:
            received = self._conn.close_rcvd if self._conn is not None else None
            self._close_sent = True  # the parser answered the close frame itself
            self._end(received.code if received else 1005, received.reason if received else "")
        # PING: the parser queued the pong; PONG: hearing anything is enough

    def _deliver(self, message: bytes) -> None:
        if self._on_message is not None:
            self._on_message(message)
            return
        if self._inbox is None or self._ended is not None:
            return
        self._inbox.append(message)
        self._inbox_bytes += len(message)
        if self._inbox_bytes > _INBOX_PAUSE_BYTES and not self._reading_paused:
            self._reading_paused = True
            if self._transport is not None:
                self._transport.pause_reading()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _end(self, code: int, reason: str) -> None:
        if self._ended is not None:
            return
        self._ended = (code, reason)
        self._wake()
        if self._on_close is not None:
            self._on_close(code, reason)

    # -- outgoing --------------------------------------------------------------------------

    def _write_pending(self) -> None:
        """Write what the parser produced (handshake response, pongs, close frames)."""
        if self._conn is None:
            return
        chunks = self._conn.data_to_send()
        if not chunks or self._transport is None:
            return
        data = b"".join(chunks)
        if data:
            self._transport.write(data)
        if chunks[-1] == b"":  # the protocol is done with the TCP connection
            self._transport.close()

    def _close(self, code: int, reason: str) -> None:
        if self._close_sent or self._transport is None:
            return
        self._close_sent = True
        self._writable = False
        if self._conn is not None and self._conn.state is State.OPEN:
            self._conn.send_close(code, close_reason(reason))
            self._write_pending()
        if self._transport.is_closing():
            return
        # the peer answers with its close frame, then the parser asks to close TCP; a
        # peer that never answers (or never reads) is cut after a timeout
        self._close_timer = self._loop.call_later(_CLOSE_TIMEOUT, self._transport.abort)

    def _keepalive(self) -> None:
        """Every interval: ping a quiet peer; cut one that stayed silent since the last ping."""
        if self._close_sent or self._transport is None or self._conn is None:
            return
        if self._heard:
            self._heard = self._pinged = False
        elif self._pinged:
            log.info("closing %s: no answer to a keepalive ping", self._client or "-")
            self._close_sent = True
            self._transport.abort()
            return
        else:
            self._conn.send_ping(struct.pack("!d", time.monotonic()))
            self._write_pending()
            self._pinged = True
        self._ping_timer = self._loop.call_later(self._ping_interval, self._keepalive)

    # -- meshroom PushConnection -----------------------------------------------------------

    @property
    def writable(self) -> bool:
        return self._writable and not self._close_sent

    def write(self, message: bytes) -> None:
        if self._close_sent or self._transport is None:
            return
        self._transport.write(binary_frame(message))

    def defer(self, callback: Callable[[], None]) -> None:
        self._deferred.add(callback)

    def start_pushing(
        self,
        on_message: Callable[[bytes], None],
        on_close: Callable[[int, str], None],
        on_writable: Callable[[], None],
    ) -> None:
        inbox, self._inbox = self._inbox or [], None
        self._inbox_bytes = 0
        self._on_message = on_message
        self._on_close = on_close
        self._on_writable = on_writable
        if self._reading_paused and self._transport is not None:
            self._reading_paused = False
            self._transport.resume_reading()
        for message in inbox:
            on_message(message)
        if self._ended is not None:
            on_close(*self._ended)

    # -- meshroom Connection (the handshake before pushing) --------------------------------

    async def send(self, message: bytes) -> None:
        if self._close_sent:
            raise ConnectionClosed(*(self._ended or (1006, "")))
        self.write(message)

    async def recv(self) -> bytes:
        while True:
            inbox = self._inbox
            if inbox:
                message = inbox.pop(0)
                self._inbox_bytes -= len(message)
                if self._reading_paused and self._inbox_bytes <= _INBOX_PAUSE_BYTES // 2:
                    self._reading_paused = False
                    if self._transport is not None:
                        self._transport.resume_reading()
                return message
            if self._ended is not None or inbox is None:
                raise ConnectionClosed(*(self._ended or (1006, "")))
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self._close(code, reason)


def uvicorn_websocket(server: Server, *, ping_interval: float = PING_INTERVAL) -> Any:
    """uvicorn's `ws` option that serves every WebSocket with `server` (see the module doc).

    Args:
        ping_interval: seconds between keepalive checks: a peer quiet since the last
            check is pinged, and one still silent at the next is cut. A peer that stops
            answering (a frozen process, a dead link) is gone within three intervals,
            and its awareness with it, instead of lingering until the other clients'
            own 30 s awareness timeout.
    """
    return functools.partial(RoomWebSocketProtocol, server=server, ping_interval=ping_interval)
