"""One authenticated connection to one document: the y-websocket message loop.

What it sends is queued by its `Outbox` (never waiting: a client that does not keep up is
closed); what a client's writes may change is `Inbound`. Two ways to drive a session,
chosen by its connection:

- any `Connection` (ASGI, in memory): two tasks, a reader that applies what
  the client sends and a writer that drains the bounded queue;
- a `PushConnection` (`meshroom serve`'s own WebSocket protocol): no task of
  its own. The transport calls `handle` for each message, and the queue is
  written once the transport has handled what it read, or when the socket's
  buffer drains.

What the session answers, as the Node `y-websocket` server does:

- on open: sync step 1 (the server's state vector), then every awareness state;
- sync step 1 → sync step 2; step 2 / update → applied and relayed to others
  (dropped and counted for read-only access);
- awareness → applied and relayed to every session of the document, the
  sender included (that echo is what keeps an idle client from reconnecting);
- query-awareness → every awareness state;
- a room call (type 5, on the room document's connection) → `RoomCalls` (offers, tool
  calls); anything unknown → ignored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import suppress
from typing import TYPE_CHECKING, Any

import anyio
from anyio import CancelScope

from meshdoc.updates import check_state_vector

from .._exceptions import ProtocolError
from ..protocol._calls import decode_room_call, encode_room_call
from ..protocol._close_codes import CloseCode
from ..protocol._messages import (
    UPDATE_PREFIX,
    AuthMessage,
    AwarenessMessage,
    QueryAwarenessMessage,
    RoomCallMessage,
    SyncMessage,
    SyncStep,
    decode_auth_token,
    decode_message,
    encode_authenticated,
    encode_awareness,
    encode_sync_step1,
    encode_sync_step2,
    update_payload,
)
from ._budget import SendBudget
from ._connection import Connection, ConnectionClosed, PushConnection
from ._hooks import Access
from ._inbound import Inbound
from ._limits import Limits, TokenBucket

if TYPE_CHECKING:
    from ._document import LiveDocument
    from ._room import Room

__all__ = ["Session"]

#: Messages one connection may handle before letting other tasks run.
_READ_FAIRNESS = 16


log = logging.getLogger("meshroom.server")


class Session(Inbound):
    """A connection serving one document of one room.

    Its sending half is `Outbox`, what a client's writes may change is `Inbound`; this
    class runs the connection: greeting, the message loop, expiry and the end.
    """

    __slots__ = ("_bucket", "_expiry", "_on_end", "_on_token", "_scope", "client")

    def __init__(
        self,
        connection: Connection,
        room: Room,
        document: LiveDocument,
        access: Access,
        limits: Limits,
        *,
        client: str | None = None,
        bucket: TokenBucket | None = None,
        budget: SendBudget | None = None,
        on_token: Callable[[Session, str], None] | None = None,
    ) -> None:
        super().__init__(connection, room, document, access, limits, budget)
        self.client = client
        self._bucket = bucket or TokenBucket(limits.messages_per_second, limits.messages_burst)
        self._scope: CancelScope | None = None
        #: Called once when a session started with `start` ends.
        self._on_end: Callable[[], None] | None = None
        #: Told of a token sent after admission (a refresh; see `_reauth`); None: ignored.
        self._on_token = on_token
        #: The timer that closes the session at `access.expires_at` (see `_arm_expiry`).
        self._expiry: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:
        return (
            f"<Session {self.access.participant_id!r} "
            f"{self.room.name!r}/{self.document.path!r} {self.client or ''}>"
        )

    def kill(self, code: int, reason: str) -> None:
        """Close this session with `code` (from any task, without waiting)."""
        super().kill(code, reason)
        if self._scope is not None:
            self._scope.cancel()
        on_end, self._on_end = self._on_end, None
        if on_end is not None:
            self._drop_queue()
            on_end()

    # -- incoming --------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve until the client leaves or the session is killed; then close the socket."""
        try:
            if isinstance(self.connection, PushConnection):
                await self._run_pushed(self.connection)
                return
            async with anyio.create_task_group() as group:
                self._scope = group.cancel_scope
                if self.close_reason is not None:
                    group.cancel_scope.cancel()
                group.start_soon(self._guard, self._writer)
                self._arm_expiry()
                self._greet()
                await self._guard(self._reader)
        finally:
            if self.close_reason is None:
                self.close_reason = (int(CloseCode.NORMAL), "")
            self._drop_queue()
            await self.close_connection()

    def _greet(self) -> None:
        """What a client gets first: who it is, the server's state vector, then awareness."""
        self._tell_access()
        self.enqueue(encode_sync_step1(self.document.doc.get_state()))
        everyone = self.document.awareness.encode_all()
        if everyone is not None:
            self.enqueue(encode_awareness(everyone))

    def _tell_access(self) -> None:
        """The "authenticated" message: who this connection is and whether it may write."""
        access = self.access
        identity = {"id": access.participant_id, "name": access.name, "kind": access.kind}
        scope = "readonly" if access.read_only else "read-write"
        self.enqueue(encode_authenticated(scope, identity))

    def reauthorize(self, access: Access) -> None:
        """A refreshed token was accepted: its access and expiry apply from now on.

        The client is told with the "authenticated" message again, which is also
        how it knows the refresh succeeded. Presence keeps the participant as it
        joined (the participant id cannot change).
        """
        if self.close_reason is not None:
            return
        self.access = access
        self._tell_access()
        self._arm_expiry()

    def _arm_expiry(self) -> None:
        """(Re)start the timer that closes this session when `access.expires_at` passes.

        A loop timer rather than a task: a push connection holds no task of its
        own, and a refresh only has to move the timer.
        """
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        deadline = self.access.expires_at
        if deadline is None or self.close_reason is not None:
            return
        delay = max(0.0, deadline - time.time())
        self._expiry = asyncio.get_running_loop().call_later(delay, self._expired)

    def _expired(self) -> None:
        self._expiry = None
        self.kill(CloseCode.UNAUTHENTICATED, "token expired")

    async def close_connection(self) -> None:
        """Close the socket with the session's close code (best effort: the peer may be gone)."""
        code, reason = self.close_reason or (CloseCode.NORMAL, "")
        with anyio.CancelScope(shield=True), anyio.move_on_after(5), suppress(Exception):
            await self.connection.close(code, reason)

    def start(self, on_end: Callable[[], None]) -> None:
        """Serve a `PushConnection` without a task: `on_end` is called once when it ends.

        The caller then closes the socket (`close_connection`) and releases what
        the session holds; `run` is the awaiting form of the same.
        """
        if not isinstance(self.connection, PushConnection):
            raise TypeError("Session.start needs a PushConnection; use run()")
        self._on_end = on_end
        if self.close_reason is not None:
            self._on_end = None
            on_end()
            return
        self._push(self.connection)

    def _push(self, connection: PushConnection) -> None:
        self._pushed = connection
        self._arm_expiry()
        self._greet()
        if self.close_reason is None:
            connection.start_pushing(self._receive, self._peer_closed, self._flush)

    async def _run_pushed(self, connection: PushConnection) -> None:
        """Push mode, awaited: the transport calls back; this task waits for the end."""
        with CancelScope() as scope:
            self._scope = scope
            if self.close_reason is not None:
                scope.cancel()
            self._push(connection)
            await anyio.sleep_forever()

    def _receive(self, message: bytes) -> None:
        """One pushed message: like the reader task, a bad message closes this session only."""
        try:
            self.handle(message)
        except Exception as error:
            self._fail(error)

    def _peer_closed(self, code: int, reason: str) -> None:
        self.kill(CloseCode.NORMAL, "")

    async def _guard(self, func) -> None:  # type: ignore[no-untyped-def]
        try:
            await func()
        except ConnectionClosed:
            self.kill(CloseCode.NORMAL, "")
        except Exception as error:
            self._fail(error)
        else:
            self.kill(CloseCode.NORMAL, "")

    def _fail(self, error: Exception) -> None:
        """A bad message closes this session only (4422); a bug here too, logged (1011)."""
        if isinstance(error, ProtocolError):
            self.kill(CloseCode.PROTOCOL_ERROR, str(error))
        else:
            log.exception("session %r failed", self, exc_info=error)
            self.kill(1011, f"internal error: {type(error).__name__}")

    async def _reader(self) -> None:
        # Messages already received are handled back to back (yielding every
        # _READ_FAIRNESS of them): their updates then reach each writer's queue
        # together and leave as one merged frame instead of one frame each.
        handled = 0
        while True:
            message = await self.connection.recv()
            self.handle(message)
            handled += 1
            if handled % _READ_FAIRNESS == 0:
                await anyio.lowlevel.checkpoint()

    def send_room_call(self, call: dict[str, Any]) -> None:
        """Send one room call to the client (see `RoomCalls`)."""
        self.enqueue(encode_room_call(call))

    def _room_call(self, body: bytes) -> None:
        try:
            call = decode_room_call(body)
        except ProtocolError as error:
            self.send_room_call({"type": "error", "error": str(error), "request": None})
            self._violation(f"malformed room call: {error}")
            return
        if self.document.path != "":
            self.send_room_call(
                {
                    "type": "error",
                    "error": "room calls go on the room document's connection (path '')",
                    "request": None,
                }
            )
            return
        self.room.calls.handle(self, call, len(body))

    def handle(self, data: bytes) -> None:
        """Handle one client message (synchronously: ordering is the document's order).

        Raises:
            ProtocolError: malformed bytes; the caller closes this session only.
        """
        if self.close_reason is not None:
            return
        if len(data) > self._limits.max_message_size:
            self.kill(
                CloseCode.MESSAGE_TOO_BIG,
                f"message of {len(data)} bytes exceeds {self._limits.max_message_size}",
            )
            return
        if not self._bucket.take():
            self.kill(
                CloseCode.RATE_LIMITED,
                f"more than {self._limits.messages_per_second:g} messages per second",
            )
            return
        if data[:2] == UPDATE_PREFIX:  # most messages: skip building a message object
            self._apply(update_payload(data))
            return
        message = decode_message(data)
        match message:
            case SyncMessage(step=SyncStep.STEP1, payload=state_vector):
                try:
                    check_state_vector(state_vector)  # before yrs sizes a map from its count
                    missing = self.document.doc.get_update(state_vector)
                except ValueError as error:
                    raise ProtocolError(f"bad state vector: {error}") from None
                reply = encode_sync_step2(missing)
                # after what it carries is on disk: a reply is a relay too
                self.document.when_durable(lambda: self.enqueue_reply(reply))
            case SyncMessage(payload=update):
                self._apply(update)
            case AwarenessMessage(update=update):
                self._awareness(update)
            case QueryAwarenessMessage():
                everyone = self.document.awareness.encode_all()
                if everyone is not None:
                    self.enqueue(encode_awareness(everyone))
            case AuthMessage(body=body) if self._on_token is not None:
                self._on_token(self, decode_auth_token(body))  # a token refresh
            case RoomCallMessage(body=body):
                self._room_call(body)
            case _:
                pass  # unknown types (and auth without a refresh handler): ignored
