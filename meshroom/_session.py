"""One authenticated connection to one document: the y-websocket message loop.

Everything the server sends to a client goes through `enqueue`, which never
waits: a full queue means the client does not keep up, and it is closed with
`SLOW_READER` instead of slowing the room down or growing memory. Two ways to
drive a session, chosen by its connection:

- any `Connection` (ASGI, in memory): two tasks, a reader that applies what
  the client sends and a writer that drains the bounded queue (a list);
- a `PushConnection` (`meshroom serve`'s own WebSocket protocol): no task of
  its own. The transport calls `handle` for each message, and the queue is
  written once the transport has handled what it read, or when the socket's
  buffer drains. Both ways merge queued updates into one frame.

What the session answers, as the Node `y-websocket` server does:

- on open: sync step 1 (the server's state vector), then every awareness state;
- sync step 1 → sync step 2; step 2 / update → applied and relayed to others
  (dropped and counted for read-only access);
- awareness → applied and relayed to every session of the document, the
  sender included (that echo is what keeps an idle client from reconnecting);
- query-awareness → every awareness state; anything unknown → ignored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import suppress
from typing import TYPE_CHECKING

import anyio
from anyio import CancelScope

from ._budget import SendBudget
from ._close_codes import CloseCode
from ._connection import Connection, ConnectionClosed, PushConnection
from ._exceptions import ProtocolError
from ._hooks import Access
from ._limits import Limits, TokenBucket
from ._protocol import (
    EMPTY_UPDATE,
    UPDATE_PREFIX,
    AuthMessage,
    AwarenessMessage,
    QueryAwarenessMessage,
    SyncMessage,
    SyncStep,
    coalesce_updates,
    decode_auth_token,
    decode_awareness_update,
    decode_message,
    encode_authenticated,
    encode_awareness,
    encode_awareness_update,
    encode_sync_step1,
    encode_sync_step2,
    update_payload,
)

if TYPE_CHECKING:
    from ._document import LiveDocument
    from ._room import Room

__all__ = ["Session", "coalesce_updates"]

#: Most queued messages merged into one send; bounds the work of one merge.
_MAX_BATCH = 256
#: Messages one connection may handle before letting other tasks run.
_READ_FAIRNESS = 16


log = logging.getLogger("meshroom.server")

#: Awareness client ids one connection may publish. A Yjs client uses one per document;
#: the cap keeps a hostile connection from filling the awareness store with random ids.
MAX_AWARENESS_IDS = 8
#: Largest awareness update a client may send, in bytes. A cursor and a name take a few
#: hundred; the states are kept until the client leaves and decoded JSON takes up to 25
#: times its text (a 16 MiB update of empty objects: 416 MiB), so a connection's states
#: (at most `MAX_AWARENESS_IDS` of them) stay within tens of MiB.
MAX_AWARENESS_UPDATE = 256 * 1024


class Session:
    """A connection serving one document of one room."""

    __slots__ = (
        "_bucket",
        "_budget",
        "_expiry",
        "_flush_scheduled",
        "_limits",
        "_on_end",
        "_on_token",
        "_outbox",
        "_outbox_bytes",
        "_owned_ids",
        "_pushed",
        "_reply_bytes",
        "_scope",
        "_wakeup",
        "access",
        "client",
        "client_ids",
        "close_reason",
        "connection",
        "document",
        "room",
        "violations",
    )

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
        self.connection = connection
        self.room = room
        self.document = document
        self.access = access
        self.client = client
        self._limits = limits
        self._bucket = bucket or TokenBucket(limits.messages_per_second, limits.messages_burst)
        #: Messages waiting for the writer (at most `limits.send_queue_size`). A list
        #: the writer swaps for a new one: smaller than a deque, and no per-item pop.
        self._outbox: list[bytes] = []
        self._outbox_bytes = 0
        #: Bytes of queued replies (see `enqueue_reply`): not counted against the bound.
        self._reply_bytes = 0
        #: The server-wide bound on queued bytes, told of every change of `_outbox_bytes`.
        self._budget = budget
        #: Set by `enqueue` to wake the writer; only exists while the writer waits.
        self._wakeup: anyio.Event | None = None
        self._scope: CancelScope | None = None
        #: The connection while it pushes (see `PushConnection`), else None.
        self._pushed: PushConnection | None = None
        self._flush_scheduled = False
        #: Called once when a session started with `start` ends.
        self._on_end: Callable[[], None] | None = None
        #: (code, reason) once the server decided to close this session.
        self.close_reason: tuple[int, str] | None = None
        self.violations = 0
        #: Awareness client ids this connection published (removed when it leaves).
        self.client_ids: set[int] = set()
        #: Awareness client ids this connection owns in `document.awareness_owners`.
        self._owned_ids: set[int] = set()
        #: Told of a token sent after admission (a refresh; see `_reauth`); None: ignored.
        self._on_token = on_token
        #: The timer that closes the session at `access.expires_at` (see `_arm_expiry`).
        self._expiry: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:
        return (
            f"<Session {self.access.participant_id!r} "
            f"{self.room.name!r}/{self.document.path!r} {self.client or ''}>"
        )

    # -- outgoing --------------------------------------------------------------------------

    def enqueue(self, message: bytes) -> None:
        """Queue a message for this client without waiting; overflow closes the session."""
        if self.close_reason is not None:
            return
        limits = self._limits
        if self._outbox and (
            len(self._outbox) >= limits.send_queue_size
            or self._outbox_bytes - self._reply_bytes + len(message) > limits.send_queue_bytes
        ):
            self._compact_or_kill(len(message))
            if self.close_reason is not None:
                return
        self._outbox.append(message)
        self._outbox_bytes += len(message)
        if self._budget is not None:
            self._budget.set(self, self._budgeted_bytes())
            if self.close_reason is not None:
                return
        pushed = self._pushed
        if pushed is not None:
            if not self._flush_scheduled:
                self._flush_scheduled = True
                pushed.defer(self._flush)
            elif len(self._outbox) >= _MAX_BATCH:
                self._flush()  # a long burst in one turn: write as it comes, in batches
            return
        wakeup = self._wakeup
        if wakeup is not None:
            self._wakeup = None
            wakeup.set()

    def enqueue_reply(self, message: bytes) -> None:
        """Queue an answer the client asked for (sync step 2), whatever its size.

        The byte bound is for what piles up behind a client that stopped reading;
        the first sync of a large document is one message the size of the document,
        which the server holds anyway, and refusing it would leave a client that
        does not retry never synced.
        """
        self._reply_bytes += len(message)
        self.enqueue(message)

    def _budgeted_bytes(self) -> int:
        """Queued bytes the server-wide `SendBudget` counts: replies are exempt there too,
        or a document larger than `Limits.max_queued_bytes` could never be synced."""
        return max(0, self._outbox_bytes - self._reply_bytes)

    def _compact_or_kill(self, incoming: int) -> None:
        """The queue is full: merge its updates; still (nearly) full means a slow reader.

        A client that is merely busy for a moment (a burst of keystrokes while its
        socket drains a large paste) queues updates that merge into one; one that
        stopped reading keeps the queue full of what does not merge, or of bytes.
        """
        limits = self._limits
        self._outbox[:] = coalesce_updates(self._outbox)
        self._outbox_bytes = sum(map(len, self._outbox))
        if self._budget is not None:
            self._budget.set(self, self._budgeted_bytes())
        # Three quarters: room to grow before the next merge, so merges stay rare.
        if len(self._outbox) * 4 >= limits.send_queue_size * 3:
            self.kill(
                CloseCode.SLOW_READER,
                f"more than {limits.send_queue_size} messages waiting: client too slow",
            )
        elif (self._outbox_bytes - self._reply_bytes + incoming) * 4 > limits.send_queue_bytes * 3:
            self.kill(
                CloseCode.SLOW_READER,
                f"more than {limits.send_queue_bytes} bytes waiting: client too slow",
            )

    def kill(self, code: int, reason: str) -> None:
        """Close this session with `code` (from any task, without waiting)."""
        if self.close_reason is None:
            self.close_reason = (int(code), reason)
            if code not in (CloseCode.NORMAL, CloseCode.GOING_AWAY):
                log.info("closing %r: %s (%s)", self, reason, int(code))
        if self._scope is not None:
            self._scope.cancel()
        on_end, self._on_end = self._on_end, None
        if on_end is not None:
            self._drop_queue()
            on_end()

    def _drop_queue(self) -> None:
        """The session is over: nothing more will be written."""
        if self._expiry is not None:
            self._expiry.cancel()  # a timer would keep the ended session alive until it fires
            self._expiry = None
        self._outbox.clear()
        self._outbox_bytes = self._reply_bytes = 0
        if self._budget is not None:
            self._budget.set(self, 0)
        self._wakeup = None
        self._pushed = None

    def _flush(self) -> None:
        """Write the queue now (push mode), while the socket takes it; merged like `_writer`."""
        self._flush_scheduled = False
        connection = self._pushed
        if connection is None or self.close_reason is not None:
            return
        while self._outbox and connection.writable:
            for frame in coalesce_updates(self._take_batch()):
                connection.write(frame)

    def _take_batch(self) -> list[bytes]:
        """Up to `_MAX_BATCH` queued messages, oldest first, out of the queue."""
        outbox = self._outbox
        if len(outbox) <= _MAX_BATCH:
            self._outbox, self._outbox_bytes, self._reply_bytes = [], 0, 0
            if self._budget is not None:
                self._budget.set(self, 0)
            return outbox
        batch = outbox[:_MAX_BATCH]
        del outbox[:_MAX_BATCH]
        self._outbox_bytes -= sum(map(len, batch))
        self._reply_bytes = min(self._reply_bytes, self._outbox_bytes)
        if self._budget is not None:
            self._budget.set(self, self._budgeted_bytes())
        return batch

    async def _writer(self) -> None:
        # A plain list and one Event per wait (not a memory object stream): the
        # writer only yields to the loop when it has nothing to send, so a busy
        # connection costs one wake-up per batch, not a checkpoint per message.
        send = self.connection.send
        while True:
            if not self._outbox:
                self._wakeup = wakeup = anyio.Event()
                await wakeup.wait()
                continue
            for frame in coalesce_updates(self._take_batch()):
                await send(frame)

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
                # Imported on use, like the document's `Unsettled` (a document is open, so
                # meshdoc is loaded): importing meshroom does not import meshdoc.
                from meshdoc.updates._scan import check_state_vector

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
            case _:
                pass  # unknown types (and auth without a refresh handler): ignored

    def _violation(self, reason: str) -> None:
        self.violations += 1
        log.info("dropped a write from %r: %s (%d)", self, reason, self.violations)
        if self.violations > self._limits.read_only_violations:
            code = CloseCode.READ_ONLY_VIOLATION if self.access.read_only else CloseCode.FORBIDDEN
            self.kill(code, f"{reason} ({self.violations} writes refused)")

    def _apply(self, update: bytes) -> None:
        if update == EMPTY_UPDATE:
            return
        if self.access.read_only:
            self._violation("read-only access: writes are not applied")
            return
        if self.document.path == "":
            self._apply_to_room_document(update)
            return
        if self.document.unwritten_bytes > self._limits.unwritten_bytes:
            self.kill(
                CloseCode.STORAGE_UNAVAILABLE,
                f"storage is not writing this document ({self.document.unwritten_bytes} "
                "bytes wait): reconnect later, your edits are kept",
            )
            return
        try:
            self.document.apply(update, self)
        except (ValueError, RuntimeError) as error:
            # RuntimeError: yrs refused an update that passed the checks (a struct whose
            # parent cannot hold it); this connection is closed as sending bad bytes.
            raise ProtocolError(f"not a Yjs update: {error}") from None

    def _apply_to_room_document(self, update: bytes) -> None:
        """Only appending own messages is allowed; forgeries are refused or repaired.

        The update is checked before it reaches the room document's scratch copy: that
        copy is applied to directly, not through the document's `Unsettled`.
        """
        from meshdoc.updates._scan import check_update

        try:
            check_update(update)
        except ValueError as error:
            raise ProtocolError(f"not a Yjs update: {error}") from None
        presence = self.room.presence

        def apply(repaired: bool) -> None:
            # A repaired update is relayed to everyone, the sender included: it must
            # see the repair too.
            self.document.apply(update, None if repaired else self)

        try:
            problem = presence.apply_client_update(update, self.access.participant_id, apply)
        except ValueError as error:
            message = str(error)
            if not message.startswith("not a Yjs update"):
                message = f"not a Yjs update: {message}"
            raise ProtocolError(message) from None
        presence.trim()
        if problem is not None:
            self._violation(f"room document: {problem}")

    def _owns(self, client_id: int) -> bool:
        """Claim `client_id` for this connection if free; True if this connection owns it."""
        owners = self.document.awareness_owners
        owner = owners.get(client_id)
        if owner is self:
            return True
        if owner is not None and owner.access.participant_id != self.access.participant_id:
            return False  # another participant's state: never changed from here
        if owner is None and len(self._owned_ids) >= MAX_AWARENESS_IDS:
            return False
        if owner is not None:  # the same participant reconnected: the new socket takes over
            owner._owned_ids.discard(client_id)
            owner.client_ids.discard(client_id)
        owners[client_id] = self
        self._owned_ids.add(client_id)
        return True

    def _awareness(self, update: bytes) -> None:
        if len(update) > MAX_AWARENESS_UPDATE:
            raise ProtocolError(
                f"awareness update of {len(update)} bytes exceeds {MAX_AWARENESS_UPDATE}"
            )
        entries = decode_awareness_update(update)
        allowed = [entry for entry in entries if self._owns(entry.client_id)]
        if len(allowed) < len(entries):
            log.info("dropped awareness from %r for client ids it does not own", self)
        accepted = self.document.awareness.apply(allowed)
        if not accepted:
            return
        for entry in accepted:
            if entry.state is None:
                self.client_ids.discard(entry.client_id)
            else:
                self.client_ids.add(entry.client_id)
        self.document.broadcast(encode_awareness(encode_awareness_update(accepted)))

    def remove_awareness(self) -> None:
        """Tell everyone this connection's awareness states are gone (on disconnect)."""
        removal = self.document.awareness.remove(self.client_ids)
        self.client_ids.clear()
        owners = self.document.awareness_owners
        for client_id in self._owned_ids:
            if owners.get(client_id) is self:
                del owners[client_id]
        self._owned_ids.clear()
        if removal is not None:
            self.document.broadcast(encode_awareness(removal))
