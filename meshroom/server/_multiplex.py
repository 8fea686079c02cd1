"""Hocuspocus clients: many documents over one socket, each served by an ordinary `Session`.

`@hocuspocus/provider` puts every document of a page on one WebSocket and names the
document in each frame (`protocol._hocuspocus`). This module splits such a socket into one
`_Channel` per document: a `PushConnection` that speaks y-websocket to its session and
Hocuspocus to the socket. Each channel is admitted by `serve_connection`, as a y-websocket
socket is, so rooms, storage, auth, refresh, presence, limits and room calls are the same
code for both kinds of client (docs/hocuspocus.md).

A document's life on the socket:

- **pending**: frames arrive before its AUTH message; they wait (at most 256 frames and
  `Limits.pre_auth_bytes`), and `Limits.auth_timeout` bounds the wait;
- **admitting**: its AUTH token goes through `serve_connection` (the room and path come
  from the name, ``room/path`` split at the first ``/``, a bare ``room`` being the room
  document); frames keep waiting;
- **live**: the session greets it (authenticated, sync step 1, awareness) and the frames
  that waited are handled, then every frame as it comes. After each client update the
  document answers SYNC_STATUS: 1 once the update is applied (and durable, with storage),
  0 when it was refused (read-only access);
- **closed**: by the client (CLOSE, or the socket going away), or by the server: then the
  client gets PERMISSION_DENIED (a refusal, an expired or refused token) and CLOSE with
  ``"{code} {reason}"``; the socket and the other documents stay. Codes that y-websocket
  clients answer by reconnecting (a slow reader, rate limits, storage down, shutdown) close
  the whole socket with that code instead, so the provider reconnects and resyncs.

Stateless messages: on any document, ``{"type": "message", ...}`` posts a room message
from the connection's participant; any other JSON object is a room call, answered as the
session answers room calls (accepted on the room document only). Each room message
appended in a room is sent as ``{"type": "message", "message": {...}}`` to every live
document of that room on the socket. BROADCAST_STATELESS from a client is refused (4422,
that document only).

Longer than 400 lines: the socket and its channels share one state machine (who is
pending, live or gone, and what each side must be told), which reads best in one place.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from contextlib import suppress
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import anyio
import pycrdt

from meshdoc.updates import check_update, decode_state

from .._exceptions import ProtocolError
from ..protocol._calls import decode_room_call
from ..protocol._close_codes import CloseCode
from ..protocol._hocuspocus import (
    PING,
    PONG,
    HocuspocusType,
    decode_frame,
    document_name,
    encode_close,
    encode_permission_denied,
    encode_stateless,
    encode_sync_status,
    from_session,
    read_token,
    to_session,
)
from ..protocol._messages import MessageType, update_payload, write_var_string
from ._connection import Connection, ConnectionClosed, PushConnection
from ._limits import TokenBucket
from ._serving import close_quietly, serve_connection

if TYPE_CHECKING:
    from ._serving import ServingHost
    from ._session import Session

__all__ = ["serve_hocuspocus"]

log = logging.getLogger("meshroom.server")

#: Frames one document may queue before it is admitted.
MAX_WAITING_FRAMES = 256
#: Bytes the socket may hold unwritten (ASGI and in-memory transports) before the
#: sessions hold their messages back in their own bounded queues.
_SOCKET_BUFFER = 4 * 1024 * 1024
#: Codes that end the whole socket: a y-websocket client reconnects after them, and so
#: does the provider when its socket closes (a CLOSE frame would leave it detached).
SOCKET_CODES = frozenset(
    {
        CloseCode.GOING_AWAY,
        CloseCode.MESSAGE_TOO_BIG,
        1011,
        1012,
        CloseCode.TRY_AGAIN_LATER,
        CloseCode.RATE_LIMITED,
        CloseCode.SLOW_READER,
        CloseCode.STORAGE_UNAVAILABLE,
    }
)
_AUTH_CODES = (CloseCode.UNAUTHENTICATED, CloseCode.FORBIDDEN, CloseCode.AUTH_TIMEOUT)
_MESSAGE_FIELDS = {"type", "text", "json", "to", "thread", "id", "ref"}
_SYNC_KINDS = (HocuspocusType.SYNC, HocuspocusType.SYNC_REPLY)
_SYNC_WRITES = (b"\x01", b"\x02")  # sync step 2 and update: the client writes

_PENDING, _ADMITTING, _LIVE, _CLOSED = "pending", "admitting", "live", "closed"


async def serve_hocuspocus(
    server: ServingHost,
    connection: Connection,
    *,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    client: str | None,
) -> None:
    """Serve one Hocuspocus socket until it closes (see `Server.serve`)."""
    await _Socket(server, connection, query, headers, client).run()


class _Socket:
    """One Hocuspocus WebSocket: routes frames to channels, writes theirs."""

    def __init__(
        self,
        server: ServingHost,
        connection: Connection,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        client: str | None,
    ) -> None:
        self.server = server
        self.connection = connection
        self.query = dict(query)
        self.headers = dict(headers)
        self.client = client
        self.limits = server.limits
        #: Routing key -> its channel, for documents pending, admitting or live.
        self.channels: dict[str, _Channel] = {}
        #: Frames of documents not yet live (no session counts them): flood control.
        self.bucket = TokenBucket(self.limits.messages_per_second, self.limits.messages_burst)
        self.closed = False
        self._ended = anyio.Event()
        self._push = connection if isinstance(connection, PushConnection) else None
        self._out: list[bytes] = []
        self._out_bytes = 0
        self._wakeup: anyio.Event | None = None
        self._starved = False
        self._loop = asyncio.get_running_loop()
        #: Room name -> (the messages observer, the live channels of that room).
        self._watches: dict[str, tuple[Any, set[_Channel]]] = {}
        #: Admissions in flight (the loop keeps only weak references to tasks).
        self._admitting: set[asyncio.Task[None]] = set()
        #: The code and reason the socket closes with once `run` ends.
        self._close_reason: tuple[int, str] = (int(CloseCode.NORMAL), "")

    # -- running ---------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            async with anyio.create_task_group() as group:
                if self._push is not None:
                    self._push.start_pushing(self.frame, self._peer_closed, self._drained)
                else:
                    group.start_soon(self._read_loop)
                    group.start_soon(self._write_loop)
                await self._ended.wait()
                group.cancel_scope.cancel()
        finally:
            self._end()
            code, reason = self._close_reason
            await close_quietly(self.connection, code, reason)

    async def _read_loop(self) -> None:
        with suppress(ConnectionClosed):
            while not self.closed:
                self.frame(await self.connection.recv())
        self._end()

    def _peer_closed(self, code: int, reason: str) -> None:
        self._end()

    def close(self, code: int, reason: str) -> None:
        """End the socket and every document on it (from any callback)."""
        if self.closed:
            return
        log.info("closing hocuspocus socket of %s: %s (%s)", self.client, reason, int(code))
        self._close_reason = (int(code), reason)
        self._end()

    def _end(self) -> None:
        if self.closed:
            return
        self.closed = True
        channels, self.channels = list(self.channels.values()), {}
        for channel in channels:
            channel.peer_gone()
        self._ended.set()
        if self._wakeup is not None:
            self._wakeup.set()

    # -- writing ---------------------------------------------------------------------------

    @property
    def writable(self) -> bool:
        if self.closed:
            return False
        if self._push is not None:
            return self._push.writable
        return self._out_bytes < _SOCKET_BUFFER

    def write(self, frame: bytes) -> None:
        if self.closed:
            return
        if self._push is not None:
            self._push.write(frame)
            return
        self._out.append(frame)
        self._out_bytes += len(frame)
        if self._out_bytes >= _SOCKET_BUFFER:
            self._starved = True
        wakeup = self._wakeup
        if wakeup is not None:
            self._wakeup = None
            wakeup.set()

    def defer(self, callback: Callable[[], None]) -> None:
        if self._push is not None:
            self._push.defer(callback)
        else:
            self._loop.call_soon(callback)

    async def _write_loop(self) -> None:
        send = self.connection.send
        try:
            while not self.closed:
                if not self._out:
                    self._wakeup = wakeup = anyio.Event()
                    await wakeup.wait()
                    continue
                batch, self._out = self._out, []
                for frame in batch:
                    await send(frame)
                    self._out_bytes -= len(frame)
                if self._starved and self._out_bytes < _SOCKET_BUFFER // 2:
                    self._starved = False
                    self._drained()
        except ConnectionClosed:
            self._end()

    def _drained(self) -> None:
        for channel in list(self.channels.values()):
            channel.drained()

    # -- reading ---------------------------------------------------------------------------

    def frame(self, data: bytes) -> None:
        """One frame from the client: to its document's channel, or a new channel."""
        if self.closed:
            return
        if len(data) > self.limits.max_message_size:
            self.close(
                CloseCode.MESSAGE_TOO_BIG,
                f"message of {len(data)} bytes exceeds {self.limits.max_message_size}",
            )
            return
        if data == PING:
            self.write(PONG)
            return
        if data == PONG:
            return
        try:
            key, kind, body = decode_frame(data)
        except ProtocolError as error:
            self.close(CloseCode.PROTOCOL_ERROR, f"not a Hocuspocus frame: {error}")
            return
        if not key:
            # what a y-websocket client sends first when its URL names no room (its sync
            # step 1 reads as a frame for the empty name): refuse it as y-websocket would
            self.close(
                CloseCode.BAD_ROOM_NAME,
                "the frame names no room (an empty document name); a y-websocket client "
                "names the room in the URL, ws://HOST/ROOM; Hocuspocus clients name it in "
                "each frame",
            )
            return
        channel = self.channels.get(key)
        if channel is not None and channel.state == _LIVE:
            channel.handle(kind, body)
            return
        if not self.bucket.take():
            self.close(CloseCode.RATE_LIMITED, "too many frames for documents not yet admitted")
            return
        if channel is None:
            if kind == HocuspocusType.CLOSE:
                return  # detaching a document that is not here: nothing to do
            most = self.limits.documents_per_socket
            if len(self.channels) >= most:
                reason = f"more than {most} documents on one socket"
                self.write(encode_permission_denied(key, reason))
                return
            channel = self.channels[key] = _Channel(self, key)
        channel.waiting(kind, body, len(data))

    def forget(self, channel: _Channel) -> None:
        if self.channels.get(channel.key) is channel:
            del self.channels[channel.key]

    def admit(self, channel: _Channel, token: str) -> None:
        """Start admitting `channel` with `token` (in a task of the socket's group)."""
        name = document_name(channel.key)
        # "room/path": the room, then the path (split at the first "/"); a bare "room" is
        # the room document. Each segment is quoted, so the name is taken literally.
        segments = name.split("/")
        target = "/" + "/".join(quote(segment, safe="") for segment in segments)
        query = dict(self.query)
        if token:
            query["token"] = token
        # Called from the transport's callbacks too (no current task, so no anyio task
        # group can start it); connections run on asyncio, so an asyncio task does.
        task = self._loop.create_task(self._serve(channel, target, query))
        self._admitting.add(task)
        task.add_done_callback(self._admitting.discard)

    async def _serve(self, channel: _Channel, target: str, query: dict[str, str]) -> None:
        await serve_connection(
            self.server,
            channel,
            target,
            query=query,
            headers=self.headers,
            client=self.client,
            on_session=channel.bind,
        )
        if channel.state != _LIVE:
            channel.refused()

    # -- room messages as stateless --------------------------------------------------------

    def watch(self, channel: _Channel) -> None:
        """Send `channel` every room message appended in its room from now on."""
        room = channel.session.room
        watch = self._watches.get(room.name)
        if watch is None:
            channels: set[_Channel] = set()
            observer = room.presence.messages.observe(lambda event: _tell_messages(event, channels))
            self._watches[room.name] = (observer, channels)
            watch = self._watches[room.name]
        watch[1].add(channel)

    def unwatch(self, channel: _Channel) -> None:
        room = channel.session.room
        watch = self._watches.get(room.name)
        if watch is None:
            return
        watch[1].discard(channel)
        if not watch[1]:
            del self._watches[room.name]
            with suppress(Exception):  # the room may have closed its document already
                room.presence.messages.unobserve(watch[0])


def _tell_messages(event: Any, channels: set[_Channel]) -> None:
    """Room messages were appended: each live channel of the room gets them as stateless."""
    # Runs inside the room document's commit: must never raise.
    try:
        for part in event.delta:
            for item in part.get("insert", ()):
                message = item.to_py() if hasattr(item, "to_py") else item
                if not isinstance(message, dict):
                    continue
                payload = json.dumps(
                    {"type": "message", "message": message},
                    ensure_ascii=False,
                    separators=(",", ":"),
                    default=str,
                )
                for channel in list(channels):
                    channel.session.enqueue(encode_stateless(payload))
    except Exception:  # pragma: no cover - defensive: a reader never breaks a write
        log.exception("relaying room messages to hocuspocus clients failed")


class _Channel:
    """One document of a Hocuspocus socket, as a `PushConnection` for its session."""

    __slots__ = (
        "_denied",
        "_on_close",
        "_on_message",
        "_on_writable",
        "_prefix",
        "_queue",
        "_queued_bytes",
        "_ready",
        "_timer",
        "key",
        "peer_closed",
        "session",
        "socket",
        "state",
    )

    def __init__(self, socket: _Socket, key: str) -> None:
        self.socket = socket
        self.key = key
        self.state = _PENDING
        self.session: Session = None  # type: ignore[assignment]  # set by `bind`
        self.peer_closed = False
        self._prefix = write_var_string(key)
        self._queue: list[tuple[int, bytes]] = []
        self._queued_bytes = 0
        self._ready: asyncio.Event | None = None
        self._denied = False
        self._on_message: Callable[[bytes], None] | None = None
        self._on_close: Callable[[int, str], None] | None = None
        self._on_writable: Callable[[], None] | None = None
        limits = socket.limits
        self._timer: asyncio.TimerHandle | None = socket._loop.call_later(
            limits.auth_timeout, self._timed_out
        )

    def __repr__(self) -> str:
        return f"<hocuspocus channel {self.key!r} {self.state}>"

    # -- before admission ------------------------------------------------------------------

    def waiting(self, kind: int, body: bytes, size: int) -> None:
        """A frame for this document before it is live: queued; an AUTH token admits."""
        if kind == HocuspocusType.CLOSE:
            self.detach()
            return
        if self.state == _PENDING and kind == HocuspocusType.AUTH:
            try:
                token = read_token(body)
            except ProtocolError as error:
                self.deny(str(error))
                return
            self.state = _ADMITTING
            self._cancel_timer()
            self.socket.admit(self, token)
            return
        limits = self.socket.limits
        if len(self._queue) >= MAX_WAITING_FRAMES or (
            self._queued_bytes + size > limits.pre_auth_bytes
        ):
            self.deny(
                f"more than {MAX_WAITING_FRAMES} frames or {limits.pre_auth_bytes} bytes "
                "before the document was admitted"
            )
            return
        self._queue.append((kind, body))
        self._queued_bytes += size
        if self._ready is not None:
            self._ready.set()

    def _timed_out(self) -> None:
        self._timer = None
        if self.state == _PENDING:
            self.deny(f"no auth message within {self.socket.limits.auth_timeout:g} s")

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def deny(self, reason: str) -> None:
        """Refuse this document before it went live; the client may try again."""
        if self.state in (_CLOSED, _LIVE):
            return
        self.socket.write(encode_permission_denied(self.key, reason))
        self._denied = True
        self.peer_closed = True  # whatever admission still runs answers nothing more
        self._finish()

    def refused(self) -> None:
        """Admission ended without a session (refused, or the socket went away)."""
        if self.state != _CLOSED:
            self._finish()

    def bind(self, session: Session) -> None:
        self.session = session

    def _finish(self) -> None:
        self.state = _CLOSED
        self._cancel_timer()
        self._queue.clear()
        self._queued_bytes = 0
        self.socket.forget(self)
        if self._ready is not None:
            self._ready.set()

    def detach(self) -> None:
        """The client detached this document (CLOSE): end it, answer nothing."""
        self.peer_closed = True
        self.socket.forget(self)
        if self.state == _LIVE:
            assert self._on_close is not None
            self._on_close(CloseCode.NORMAL, "")
        elif self.state == _PENDING:
            self._finish()
        # admitting: `start_pushing` or the refusal ends it

    def peer_gone(self) -> None:
        """The socket closed under this document."""
        self.peer_closed = True
        if self.state == _LIVE:
            assert self._on_close is not None
            self._on_close(1006, "")
        elif self.state == _PENDING:
            self._finish()
        elif self._ready is not None:
            self._ready.set()

    # -- the Connection protocol (handshake and refusals) ----------------------------------

    async def send(self, message: bytes) -> None:
        if self.peer_closed or self.socket.closed:
            raise ConnectionClosed(1006, "")
        if message[:2] == bytes((MessageType.AUTH, 0)):
            self._denied = True
        self.socket.write(from_session(self.key, message))

    async def recv(self) -> bytes:
        """The next waiting frame as a session message (the handshake reads a token so)."""
        while True:
            if self.peer_closed or self.state == _CLOSED:
                raise ConnectionClosed(1006, "")
            if self._queue:
                kind, body = self._queue.pop(0)
                message = to_session(kind, body)
                if message is not None:
                    return message
                continue
            self._ready = asyncio.Event()
            await self._ready.wait()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """The server ends this document: tell the client unless it left (or asked)."""
        was_live = self.state == _LIVE
        if self.state == _CLOSED:
            return
        if was_live:
            self.socket.unwatch(self)
        self._finish()
        socket = self.socket
        if self.peer_closed or socket.closed:
            return
        if code in SOCKET_CODES:
            socket.close(code, reason)
            return
        if not was_live:
            if not self._denied:
                socket.write(encode_permission_denied(self.key, reason or f"refused ({code})"))
            return
        if code in _AUTH_CODES:
            socket.write(encode_permission_denied(self.key, reason))
        socket.write(encode_close(self.key, f"{int(code)} {reason}".strip()))
        await anyio.lowlevel.checkpoint()

    # -- the PushConnection protocol (the session, once admitted) --------------------------

    @property
    def writable(self) -> bool:
        return self.state == _LIVE and self.socket.writable

    def write(self, message: bytes) -> None:
        if self.state != _LIVE:
            return
        if message[0] == MessageType.AUTH:
            self.socket.write(from_session(self.key, message))
        else:
            self.socket.write(self._prefix + message)

    def defer(self, callback: Callable[[], None]) -> None:
        self.socket.defer(callback)

    def start_pushing(
        self,
        on_message: Callable[[bytes], None],
        on_close: Callable[[int, str], None],
        on_writable: Callable[[], None],
    ) -> None:
        self._on_message = on_message
        self._on_close = on_close
        self._on_writable = on_writable
        if self.peer_closed or self.socket.closed or self.state == _CLOSED:
            self.socket.forget(self)
            self.state = _LIVE  # so that the close below reaches the session
            self.socket.defer(lambda: on_close(1006, ""))
            return
        self.state = _LIVE
        self.socket.watch(self)
        waiting, self._queue, self._queued_bytes = self._queue, [], 0
        for kind, body in waiting:
            if self.state != _LIVE:
                break
            self.handle(kind, body)

    def drained(self) -> None:
        if self.state == _LIVE and self._on_writable is not None:
            self._on_writable()

    # -- a live document's frames ----------------------------------------------------------

    def handle(self, kind: int, body: bytes) -> None:
        """One frame of the live document: to the session, answered with a sync status."""
        on_message = self._on_message
        assert on_message is not None
        session = self.session
        if kind == HocuspocusType.CLOSE:
            self.detach()
            return
        if kind == HocuspocusType.BROADCAST_STATELESS:
            session.kill(
                CloseCode.PROTOCOL_ERROR,
                "BroadcastStateless (6) is sent by servers only: send Stateless (5)",
            )
            return
        if kind == HocuspocusType.STATELESS:
            self._stateless(body)
            return
        try:
            message = to_session(kind, body)
        except ProtocolError as error:
            session.kill(CloseCode.PROTOCOL_ERROR, str(error))
            return
        if message is None:
            return
        if kind in _SYNC_KINDS and body[:1] in _SYNC_WRITES:
            self._write(message, body)
            return
        on_message(message)

    def _write(self, message: bytes, body: bytes) -> None:
        """A client update (or sync step 2): applied or refused, then its sync status."""
        session = self.session
        if session.access.read_only and body[0] == 1 and _known(session, message):
            session.enqueue(encode_sync_status(True))  # a reader's step 2 adds nothing
            return
        before = session.violations
        assert self._on_message is not None
        self._on_message(message)
        if session.close_reason is not None:
            return
        if session.violations != before:
            session.enqueue(encode_sync_status(False))
        else:
            session.document.when_durable(lambda: session.enqueue(encode_sync_status(True)))

    def _stateless(self, body: bytes) -> None:
        """A Stateless payload: a room message to post, or a room call for the session."""
        session = self.session
        try:
            call = decode_room_call(body)
        except ProtocolError as error:
            session.send_room_call({"type": "error", "error": str(error), "request": None})
            return
        if call["type"] != "message":
            assert self._on_message is not None
            self._on_message(bytes((MessageType.ROOM_CALL,)) + body)  # the session's room calls
            return
        if not self.socket.bucket.take():
            self.socket.close(CloseCode.RATE_LIMITED, "too many room messages")
            return
        problem = _post(session, call)
        ref = call.get("ref")
        if problem is not None:
            session.send_room_call({"type": "error", "error": problem, "request": ref})


def _post(session: Session, call: dict[str, Any]) -> str | None:
    """Append the room message `call` describes, from the session's participant."""
    extra = set(call) - _MESSAGE_FIELDS
    if extra:
        return f"unknown message fields: {sorted(extra)}"
    access = session.access
    if not access.may_message:
        return f"{access.participant_id!r} may not post room messages"
    text, value, to = call.get("text"), call.get("json"), call.get("to")
    thread, message_id = call.get("thread"), call.get("id")
    if text is not None and not isinstance(text, str):
        return "'text' must be a string"
    for name, field in (("to", to), ("thread", thread), ("id", message_id)):
        if field is not None and not isinstance(field, str):
            return f"'{name}' must be a string or absent"
    try:
        session.room.presence.append(
            access.participant_id, text=text, json=value, to=to, thread=thread, id=message_id
        )
    except ValueError as error:
        return str(error)
    return None


def _known(session: Session, message: bytes) -> bool:
    """Whether a sync step 2 only carries structs the document has (a reader's answer)."""
    try:
        update = update_payload(message)
        check_update(update)
        theirs = decode_state(pycrdt.get_state(update))
    except Exception:
        return False  # the session refuses it, as any reader's write
    ours = decode_state(session.document.doc.get_state())
    return all(clock <= ours.get(client, 0) for client, clock in theirs.items())
