"""One document kept in sync over one y-websocket socket, reconnecting when it drops.

The client side of the y-websocket protocol, as `y-websocket`'s `WebsocketProvider`
speaks it: on every (re)connection send sync step 1 (our state vector) and our
awareness; answer the server's sync step 1 with sync step 2 (everything the
server lacks, which is how edits made offline reach it, once, by state vector);
then stream local updates and awareness changes both ways.

This module holds the sockets: the reconnect loop, and one connection's send queue,
send and receive loops and the end of it. What the messages do to the document and
its awareness is `DocumentSync`'s (`_sync`); auth messages and token refreshes are
`_auth`'s. While offline nothing is queued: the next handshake carries it all.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import anyio
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from pycrdt import Awareness, Doc
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from meshdoc.updates import Unsettled

from .._exceptions import ClientError
from .._retry import Backoff
from ..protocol._calls import encode_room_call
from ..protocol._messages import MessageType
from ._auth import MESSAGE_AUTH, TokenRefreshes, read_auth
from ._socket import FATAL_CLOSE_CODES, open_socket
from ._sync import DocumentSync

__all__ = ["DocumentLink", "RemoteOrigin"]

log = logging.getLogger("meshroom.client")

#: Queued outgoing messages per socket (default 10,000). A writer faster than the socket
#: overflows it; the link then reconnects, and the handshake resends everything by state
#: vector, so an overflow costs a round trip, never an edit.
OUTGOING_BUFFER = 10_000

#: Seconds to wait for the close frame after an auth "permission denied" message, to
#: report the server's close code (default 2 s; after it, the refusal reads 4403).
DENIED_CLOSE_WAIT = 2.0

#: Seconds `close()` waits for queued updates to flush before dropping the socket
#: (default 5 s: enough for a large backlog on a live link, short enough not to hang
#: on a dead one).
CLOSE_TIMEOUT = 5.0


class RemoteOrigin:
    """Transaction origin of updates that came from the server over one link."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __repr__(self) -> str:
        return f"RemoteOrigin({self.url!r})"


class DocumentLink:
    """Keeps `doc` and its awareness in sync with the server at `url`.

    Args:
        url: Full `ws://` URL of the document, query string included.
        doc: The document to sync; local edits are sent, remote ones applied.
        user: Published as the awareness field `user` (name, kind, id).
        backoff: Delays between reconnect attempts.
        connect_timeout: How long the first connection may take, retries included.
        on_change: Called (synchronously) after any remote update, awareness change,
            connection change or error, so waiters can re-check their predicate.
        on_sync: Called (synchronously) after each completed handshake.
        on_identity: Called with who the server says this connection is (``id``,
            ``name``, ``kind``: with auth, the token decides), before the first sync.
        ephemeral: The server's copy is the only truth and does not outlive the server
            process (the room document): each reconnection starts from a new, empty
            `doc` instead of resyncing the old one. Resyncing it into a restarted server
            would replay the previous process's participants and messages, which the
            server refuses, leaving every later message unmergeable there.
    """

    def __init__(
        self,
        url: str,
        doc: Doc,
        *,
        user: dict[str, Any],
        backoff: Backoff,
        connect_timeout: float,
        on_change: Callable[[], None],
        on_sync: Callable[[], None] | None = None,
        on_identity: Callable[[dict[str, Any]], None] | None = None,
        on_room_call: Callable[[bytes], None] | None = None,
        on_disconnect: Callable[[], None] | None = None,
        ephemeral: bool = False,
    ) -> None:
        self.url = url
        #: The URL without its query string (which may carry a token), for messages.
        self.where = url.split("?", 1)[0]
        self.origin = RemoteOrigin(self.where)
        self.error: ClientError | None = None
        self.connected = False
        self.connections = 0  #: successful handshakes so far (1 + reconnects)
        self._backoff = backoff
        self._connect_timeout = connect_timeout
        self._on_change = on_change
        self._on_sync = on_sync
        self._on_identity = on_identity
        self._on_room_call = on_room_call
        self._on_disconnect = on_disconnect
        #: Who the server says this connection is (``id``, ``name``, ``kind``), once told.
        self.identity: dict[str, Any] | None = None
        #: What the server lets this connection do (``"read-write"`` or ``"readonly"``),
        #: once told: a read-only connection's edits are dropped by the server.
        self.scope: str | None = None
        self._ephemeral = ephemeral
        self._refreshes = TokenRefreshes()
        self._sessions = 0
        self._outgoing: MemoryObjectSendStream[bytes] | None = None
        self._session_scope: anyio.CancelScope | None = None
        self._stopping = False
        self._stopped = anyio.Event()
        self._run_scope = anyio.CancelScope()
        self._sync = DocumentSync(
            doc, user=user, origin=self.origin, send=self._enqueue, on_change=on_change
        )

    @property
    def doc(self) -> Doc:
        """The document kept in sync (a new one after each reconnection, if ephemeral)."""
        return self._sync.doc

    @property
    def awareness(self) -> Awareness:
        """The document's awareness: ours and that of every peer on it."""
        return self._sync.awareness

    @property
    def _unsettled(self) -> Unsettled:
        """What waits behind a gap in the document's clocks."""
        return self._sync.unsettled

    # -- lifecycle -------------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Connect and stay in sync until `close()` or a refusal.

        Signals readiness once the first sync completed (the server's sync step 2 was
        applied). Before that, a refusal, or no sync within `connect_timeout`, raises
        `ClientError`; after it, a refusal is stored in `error` (and `on_change` called)
        and `run` returns.
        """
        started = False
        delays = self._backoff.delays()
        deadline = anyio.current_time() + self._connect_timeout
        try:
            with self._run_scope:
                while not self._stopping:
                    try:
                        websocket = await open_socket(
                            self.url, self.where, None if started else deadline
                        )
                    except ClientError as error:
                        if not started:
                            raise
                        self._fail(error)
                        return
                    except (OSError, InvalidHandshake, TimeoutError) as error:
                        if not started and anyio.current_time() >= deadline:
                            raise ClientError(
                                f"cannot connect to {self.where}: {error}", reason=str(error)
                            ) from error
                        log.debug("connect to %s failed (%s), retrying", self.where, error)
                        delay = next(delays)
                        if not started:  # never sleep past the deadline: try once more at it
                            delay = min(delay, max(0.0, deadline - anyio.current_time()))
                        await anyio.sleep(delay)
                        continue

                    # before the first sync, the whole handshake counts against the deadline
                    sync_scope = anyio.CancelScope(deadline=math.inf if started else deadline)

                    def on_synced(sync_scope: anyio.CancelScope = sync_scope) -> None:
                        nonlocal started, delays
                        delays = self._backoff.delays()
                        sync_scope.deadline = math.inf
                        if not started:
                            started = True
                            task_status.started()

                    if self._ephemeral and self._sessions:
                        self._sync.replace_doc()
                    self._sessions += 1
                    with sync_scope:
                        error = await self._session(websocket, on_synced)
                    if sync_scope.cancelled_caught and not started:
                        raise ClientError(
                            f"{self.where} accepted the connection but did not sync within "
                            f"{self._connect_timeout} s"
                        )
                    if error is not None:
                        if not started:
                            raise error
                        self._fail(error)
                        return
                    if not self._stopping:
                        delay = next(delays)
                        if not started:  # closed before the first sync: still the deadline
                            remaining = deadline - anyio.current_time()
                            if remaining <= 0:
                                raise ClientError(
                                    f"{self.where} closed the connection before the first "
                                    f"sync, again until the {self._connect_timeout} s "
                                    "connect timeout"
                                )
                            delay = min(delay, remaining)
                        await anyio.sleep(delay)
        finally:
            self._stopped.set()
            self._sync.unobserve()

    async def close(self) -> None:
        """Withdraw our awareness, flush queued updates, close the socket with 1000.

        Offline (between reconnect attempts), there is nothing to flush: it stops at once.
        """
        self._stopping = True
        if self.awareness.get_local_state() is not None:
            self.awareness.set_local_state(None)  # queues the removal, if connected
        outgoing, self._outgoing = self._outgoing, None
        if outgoing is None:
            self._run_scope.cancel()
        else:
            outgoing.close()  # the sender drains the queue, then closes the socket
            with anyio.move_on_after(CLOSE_TIMEOUT):
                await self._stopped.wait()
            self._run_scope.cancel()

    async def refresh_token(self, token: str, url: str) -> None:
        """Send `token` to the server on this connection; reconnect with `url` from now on.

        Offline, there is nothing to send: the next connection presents the new token
        in `url`. A connection that drops before the answer leaves the same to the
        reconnection.

        Raises:
            ClientError: the server refused the token (it closed the connection: `code`
                4401 or 4403), or did not answer within `REFRESH_ANSWER_WAIT` seconds.
        """
        self.url = url
        if self._outgoing is None:
            return
        await self._refreshes.send(token, self.where, self._enqueue)

    def set_user(self, user: dict[str, Any]) -> None:
        """Publish `user` as our awareness field ``user`` (keeping the other fields)."""
        self._sync.set_user(user)

    # -- one connection ----------------------------------------------------------------------

    async def _session(
        self, websocket: ClientConnection, on_synced: Callable[[], None]
    ) -> ClientError | None:
        """Run one connection until it closes; return the refusal, if it was one."""
        send, receive = anyio.create_memory_object_stream[bytes](max_buffer_size=OUTGOING_BUFFER)
        refusal: ClientError | None = None
        self._refreshes.connection_opened()
        async with anyio.create_task_group() as tg:
            self._session_scope = tg.cancel_scope
            try:
                for message in self._sync.greeting():
                    send.send_nowait(message)
                self._outgoing = send
                tg.start_soon(self._send_loop, websocket, receive)
                tg.start_soon(self._sync.renew_awareness)
                refusal = await self._receive_loop(websocket, on_synced)
            finally:
                self._outgoing = None
                # unanswered refreshes: refused, or left to the reconnection
                self._refreshes.connection_ended(refusal)
                send.close()
                tg.cancel_scope.cancel()
                with anyio.CancelScope(shield=True):
                    await websocket.close()
                self._session_scope = None
                if self._on_disconnect is not None:
                    self._on_disconnect()
                if self.connected:
                    self.connected = False
                    self._sync.drop_remote_awareness()
                    self._on_change()
        return refusal

    async def _receive_loop(
        self, websocket: ClientConnection, on_synced: Callable[[], None]
    ) -> ClientError | None:
        denied: ClientError | None = None
        try:
            while True:
                message = await websocket.recv(decode=False)
                try:
                    denial = self._handle(message, on_synced)
                except (ValueError, IndexError, RuntimeError) as error:
                    # bytes that are not y-websocket (or a corrupt update): drop this
                    # connection and resync from scratch on the next one
                    log.warning("bad message from %s (%s); reconnecting", self.where, error)
                    return None
                if denial is not None and denied is None:
                    # the server closes right after denying: wait briefly for its close code
                    denied = denial
                    with anyio.move_on_after(DENIED_CLOSE_WAIT):
                        while True:
                            await websocket.recv(decode=False)
                    return denied
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd is not None else None
            reason = closed.rcvd.reason if closed.rcvd is not None else ""
            if code in FATAL_CLOSE_CODES and not self._stopping:
                return ClientError(
                    f"{self.where} closed the connection: {code} {reason or ''}".strip(),
                    code=code,
                    reason=reason or (denied.reason if denied else ""),
                )
            if denied is not None:
                return denied
            log.debug("connection to %s closed (%s %s)", self.where, code, reason)
            return None

    async def _send_loop(
        self, websocket: ClientConnection, receive: MemoryObjectReceiveStream[bytes]
    ) -> None:
        try:
            async with receive:
                async for message in receive:
                    await websocket.send(message)
            if self._stopping:
                await websocket.close(1000, "client closed")
        except ConnectionClosed:
            pass  # the receive loop sees the close and decides

    def _handle(self, message: bytes, on_synced: Callable[[], None]) -> ClientError | None:
        """Act on one message from the server; return the denial, if it was one."""
        if not message:
            return None
        if message[0] == MESSAGE_AUTH:
            auth = read_auth(message, self.where)
            if isinstance(auth, ClientError):
                return auth
            if auth is not None:
                self.scope, self.identity = auth
                if self._on_identity is not None:
                    self._on_identity(self.identity)
                self._refreshes.authenticated()
            return None
        if message[0] == MessageType.ROOM_CALL:
            if self._on_room_call is not None:
                self._on_room_call(message[1:])
            return None
        if self._sync.handle(message) and not self.connected:  # the first sync step 2
            self.connected = True
            self.connections += 1
            on_synced()
            if self._on_sync is not None:
                self._on_sync()
            self._on_change()
        return None

    def send_room_call(self, call: dict[str, Any]) -> bool:
        """Send one room call now; False (nothing sent) while not connected."""
        if self._outgoing is None or not self.connected:
            return False
        self._enqueue(encode_room_call(call))
        return self._outgoing is not None

    def _enqueue(self, message: bytes) -> None:
        outgoing = self._outgoing
        if outgoing is None:
            return  # offline: the next handshake sends it, by state vector
        try:
            outgoing.send_nowait(message)
        except anyio.WouldBlock:
            log.warning("outgoing queue of %s overflowed; reconnecting to resync", self.where)
            self._outgoing = None
            if self._session_scope is not None:
                self._session_scope.cancel()
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._outgoing = None

    def _fail(self, error: ClientError) -> None:
        log.warning("%s", error)
        self.error = error
        self._on_change()
