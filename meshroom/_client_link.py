"""One document kept in sync over one y-websocket socket, reconnecting when it drops.

The client side of the y-websocket protocol, as `y-websocket`'s `WebsocketProvider`
speaks it: on every (re)connection send sync step 1 (our state vector) and our
awareness; answer the server's sync step 1 with sync step 2 (everything the
server lacks, which is how edits made offline reach it, once, by state vector);
then stream local updates and awareness changes both ways.

Local edits are observed on the `Doc` and queued for the socket; remote updates
are applied in a transaction whose origin is the link, and are not echoed back.
Structs that follow a gap in their client's clocks wait (meshdoc's `Unsettled`, shared
with the `MeshDocument` over the same doc) until the gap fills, as Yjs keeps them pending.
While offline nothing is queued: the next handshake carries it all.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import anyio
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from pycrdt import (
    Awareness,
    Decoder,
    Doc,
    TransactionEvent,
    YMessageType,
    YSyncMessageType,
    create_awareness_message,
    create_sync_message,
    create_update_message,
    read_message,
    write_message,
)
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from ._client_backoff import Backoff
from ._client_socket import FATAL_CLOSE_CODES, open_socket
from ._close_codes import CloseCode
from ._document import unsettled_of
from ._exceptions import ClientError, ProtocolError
from ._protocol import decode_authenticated, encode_auth_token

__all__ = ["DocumentLink", "RemoteOrigin"]

log = logging.getLogger("meshroom.client")

_MESSAGE_AUTH = 2  # y-protocols/auth: [2, 0 = permission denied, reason]
_AUTHENTICATED = b"\x02"  # [2, 2 = authenticated, scope, identity JSON]: see _protocol
_MESSAGE_QUERY_AWARENESS = 3
_EMPTY_UPDATE = b"\x00\x00"

#: Queued outgoing messages per socket (default 10,000). A writer faster than the socket
#: overflows it; the link then reconnects, and the handshake resends everything by state
#: vector, so an overflow costs a round trip, never an edit.
OUTGOING_BUFFER = 10_000


def _sync_step2(update: bytes) -> bytes:
    return bytes([YMessageType.SYNC, YSyncMessageType.SYNC_STEP2]) + write_message(update)


#: Seconds to wait for the close frame after an auth "permission denied" message, to
#: report the server's close code (default 2 s; after it, the refusal reads 4403).
DENIED_CLOSE_WAIT = 2.0

#: Seconds to wait for the server's answer to a token refresh (default 10 s; a server
#: that does not know token refresh never answers).
REFRESH_ANSWER_WAIT = 10.0

#: Seconds after which a silent peer's awareness is dropped; ours is re-announced at half
#: of it (default 30 s, y-protocols' `outdatedTimeout`, so JS peers agree).
AWARENESS_OUTDATED = 30.0

#: Seconds `close()` waits for queued updates to flush before dropping the socket
#: (default 5 s: enough for a large backlog on a live link, short enough not to hang
#: on a dead one).
CLOSE_TIMEOUT = 5.0


class _Refresh:
    """One token refresh waiting for the server's answer on the current connection."""

    __slots__ = ("answered", "done", "error")

    def __init__(self) -> None:
        self.done = anyio.Event()
        #: True once the server answered with "authenticated"; else the connection ended.
        self.answered = False
        #: The refusal that ended the connection, if it was one.
        self.error: ClientError | None = None


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
        ephemeral: bool = False,
    ) -> None:
        self.url = url
        #: The URL without its query string (which may carry a token), for messages.
        self.where = url.split("?", 1)[0]
        self.doc = doc
        self._unsettled = unsettled_of(doc)
        self.origin = RemoteOrigin(self.where)
        self.awareness = Awareness(doc, outdated_timeout=int(AWARENESS_OUTDATED * 1000))
        self.awareness.set_local_state({"user": user})
        self.error: ClientError | None = None
        self.connected = False
        self.connections = 0  #: successful handshakes so far (1 + reconnects)
        self._backoff = backoff
        self._connect_timeout = connect_timeout
        self._on_change = on_change
        self._on_sync = on_sync
        self._on_identity = on_identity
        #: Who the server says this connection is (``id``, ``name``, ``kind``), once told.
        self.identity: dict[str, Any] | None = None
        self._ephemeral = ephemeral
        #: Whether this connection's first "authenticated" message (the greeting) arrived;
        #: each later one answers a token refresh, oldest first.
        self._greeted = False
        self._refreshes: list[_Refresh] = []
        self._sessions = 0
        self._outgoing: MemoryObjectSendStream[bytes] | None = None
        self._session_scope: anyio.CancelScope | None = None
        self._applying_remote = False
        self._stopping = False
        self._stopped = anyio.Event()
        self._run_scope = anyio.CancelScope()
        self._doc_subscription = doc.observe(self._on_doc_update)
        self._awareness_subscription = self.awareness.observe(self._on_awareness)

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
                        self._replace_doc()
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
            self.doc.unobserve(self._doc_subscription)
            self.awareness.unobserve(self._awareness_subscription)

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
        waiter = _Refresh()
        self._refreshes.append(waiter)
        self._enqueue(encode_auth_token(token))
        with anyio.move_on_after(REFRESH_ANSWER_WAIT):
            await waiter.done.wait()
        if waiter.error is not None:
            raise waiter.error
        if not waiter.done.is_set():
            if waiter in self._refreshes:
                self._refreshes.remove(waiter)
            raise ClientError(
                f"{self.where} did not answer the token refresh in {REFRESH_ANSWER_WAIT:g} s"
            )

    # -- one connection ----------------------------------------------------------------------

    async def _session(
        self, websocket: ClientConnection, on_synced: Callable[[], None]
    ) -> ClientError | None:
        """Run one connection until it closes; return the refusal, if it was one."""
        send, receive = anyio.create_memory_object_stream[bytes](max_buffer_size=OUTGOING_BUFFER)
        refusal: ClientError | None = None
        self._greeted = False
        async with anyio.create_task_group() as tg:
            self._session_scope = tg.cancel_scope
            try:
                send.send_nowait(create_sync_message(self.doc))
                local = self.awareness.get_local_state()
                if local is not None:
                    ids = [self.awareness.client_id]
                    update = self.awareness.encode_awareness_update(ids)
                    send.send_nowait(create_awareness_message(update))
                self._outgoing = send
                tg.start_soon(self._send_loop, websocket, receive)
                tg.start_soon(self._renew_awareness)
                refusal = await self._receive_loop(websocket, on_synced)
            finally:
                self._outgoing = None
                refreshes, self._refreshes = self._refreshes, []
                for waiter in refreshes:  # unanswered: refused, or left to the reconnection
                    waiter.error = refusal
                    waiter.done.set()
                send.close()
                tg.cancel_scope.cancel()
                with anyio.CancelScope(shield=True):
                    await websocket.close()
                self._session_scope = None
                if self.connected:
                    self.connected = False
                    self._drop_remote_awareness()
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

    async def _renew_awareness(self) -> None:
        """Re-announce our state and forget silent peers, as pycrdt's `Awareness.start` does."""
        outdated = AWARENESS_OUTDATED
        while True:
            await anyio.sleep(outdated / 10)
            local = self.awareness.get_local_state()
            meta = self.awareness.meta.get(self.awareness.client_id)
            now = time.time()
            if local is not None and meta and now - meta["lastUpdated"] / 1000 >= outdated / 2:
                self.awareness.set_local_state(local)
            silent = [
                client
                for client, client_meta in self.awareness.meta.items()
                if client != self.awareness.client_id
                and client in self.awareness.states
                and now - client_meta["lastUpdated"] / 1000 >= outdated
            ]
            if silent:
                self.awareness.remove_awareness_states(silent, "timeout")

    def set_user(self, user: dict[str, Any]) -> None:
        """Publish `user` as our awareness field ``user`` (keeping the other fields)."""
        state = dict(self.awareness.get_local_state() or {})
        if state.get("user") != user:
            state["user"] = user
            self.awareness.set_local_state(state)

    # -- messages --------------------------------------------------------------------------

    def _handle(self, message: bytes, on_synced: Callable[[], None]) -> ClientError | None:
        if not message:
            return None
        kind = message[0]
        if kind == YMessageType.SYNC and len(message) > 1:
            step = message[1]
            payload = read_message(message[2:])
            if step == YSyncMessageType.SYNC_STEP1:
                # with what waits for a gap: the server keeps it until the gap fills
                self._enqueue(_sync_step2(self._unsettled.encode(self.doc, payload)))
            elif step in (YSyncMessageType.SYNC_STEP2, YSyncMessageType.SYNC_UPDATE):
                self._apply_remote(payload)
                if step == YSyncMessageType.SYNC_STEP2 and not self.connected:
                    self.connected = True
                    self.connections += 1
                    on_synced()
                    if self._on_sync is not None:
                        self._on_sync()
                    self._on_change()
        elif kind == YMessageType.AWARENESS:
            self.awareness.apply_awareness_update(read_message(message[1:]), self.origin)
        elif kind == _MESSAGE_AUTH and message[1:2] == _AUTHENTICATED:
            try:
                _scope, identity = decode_authenticated(message[1:])
            except ProtocolError:
                log.warning("%s sent a malformed authenticated message", self.where)
            else:
                self.identity = identity
                if self._on_identity is not None:
                    self._on_identity(identity)
                if not self._greeted:
                    self._greeted = True
                elif self._refreshes:  # the answer to our oldest token refresh
                    waiter = self._refreshes.pop(0)
                    waiter.answered = True
                    waiter.done.set()
        elif kind == _MESSAGE_AUTH:
            decoder = Decoder(message[2:])
            reason = decoder.read_var_string() if len(message) > 2 else "permission denied"
            return ClientError(
                f"{self.where} denied access: {reason}",
                code=int(CloseCode.FORBIDDEN),
                reason=reason,
            )
        elif kind == _MESSAGE_QUERY_AWARENESS:
            ids = list(self.awareness.states)
            update = self.awareness.encode_awareness_update(ids)
            self._enqueue(create_awareness_message(update))
        # other message types are extensions this client does not speak: ignored
        return None

    def _apply_remote(self, update: bytes) -> None:
        if update == _EMPTY_UPDATE:
            return
        doc = self.doc
        unsettled = self._unsettled
        self._applying_remote = True
        try:
            with doc.transaction(origin=self.origin):
                unsettled.integrate(doc, update)
        finally:
            self._applying_remote = False
        if unsettled:
            # What waited and now follows on is sent on to the server: it may have come
            # from elsewhere (an update applied to the document by its user).
            with doc.transaction(origin=self.origin):
                unsettled.settle(doc)
        self._on_change()

    def _on_doc_update(self, event: TransactionEvent) -> None:
        if self._applying_remote:
            return  # came from the server: never echo it back
        update = event.update
        if update != _EMPTY_UPDATE:
            self._enqueue(create_update_message(update))

    def _on_awareness(self, topic: str, payload: tuple[dict[str, Any], Any]) -> None:
        changes, origin = payload
        if topic == "update" and origin == "local":
            ids = changes["added"] + changes["updated"] + changes["removed"]
            update = self.awareness.encode_awareness_update(ids)
            self._enqueue(create_awareness_message(update))
        elif topic == "change":
            self._on_change()

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

    def _replace_doc(self) -> None:
        self.doc.unobserve(self._doc_subscription)
        self.doc = Doc()
        self._unsettled = unsettled_of(self.doc)
        self._doc_subscription = self.doc.observe(self._on_doc_update)

    def _drop_remote_awareness(self) -> None:
        others = [client for client in self.awareness.states if client != self.awareness.client_id]
        if others:
            self.awareness.remove_awareness_states(others, "disconnect")

    def _fail(self, error: ClientError) -> None:
        log.warning("%s", error)
        self.error = error
        self._on_change()
