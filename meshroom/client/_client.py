"""`RoomClient`: a Python peer in a meshroom room, as a browser tab would be.

It joins the room document (participants, messages, awareness) and opens any
number of documents, each over its own y-websocket socket, exactly as the
JavaScript `WebsocketProvider` does, so a Python peer and a browser editor see
each other's edits, cursors and messages live. Each socket reconnects on its
own with exponential backoff and resyncs by state vector (see `_link`).

This module is the client's public face; its sockets are `DocumentLinks`' (`_links`),
what a message or an awareness state holds is `_presence`'s, room calls are `ToolCalls`'
(`_calls`). Longer than 400 lines: it is the one class users hold (lifecycle,
documents, presence, tools), each method a short delegate with its documentation.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit
from uuid import uuid4

import anyio
import anyio.lowlevel
from anyio.abc import TaskStatus
from pycrdt import Array, Doc, Map

from .._exceptions import ClientError, RoomNameError
from .._retry import Backoff
from ..protocol._names import validate_path, validate_room
from ._calls import Offerable, ToolCalls
from ._documents import DocumentList, DocumentsCallback
from ._links import DocumentLinks, socket_url
from ._presence import MessageOutbox, check_awareness_fields, merge_awareness, room_message
from ._queues import QueueItem
from ._threads import Conversations

if TYPE_CHECKING:
    from meshdoc import MeshDocument, MeshSchema

__all__ = ["ClientState", "RoomClient"]

ParticipantKind = Literal["person", "agent"]


class ClientState(enum.Enum):
    """Lifecycle of a `RoomClient`; a client is opened once and closed once."""

    UNOPENED = 1
    OPENED = 2
    CLOSED = 3


class RoomClient:
    """An async peer in one room: documents, presence, messages.

    Use it as an async context manager (or `start` in a task group, then `stop`):

    ```py
    async with RoomClient("ws://127.0.0.1:8765", "team", name="Ann") as room:
        doc = await room.open("notes/plan")        # synced MeshDocument
        await room.send_message("plan is ready")
        with anyio.fail_after(5):
            await room.wait_for(lambda: len(room.participants) >= 2)
    ```

    Args:
        url: Server base URL (`ws://host:port` or `wss://…`, optionally with a path prefix).
        room: Room name.
        name: Display name, shown to others in participants and awareness.
        kind: `"person"` or `"agent"`.
        id: The participant id to ask for (default: a new UUID). With auth the token's
            ``sub`` decides instead: `participant_id` is the id the server gave.
        token: Access token, sent as the `token` query parameter; `refresh_token` replaces
            it on the open sockets and for reconnections.
        backoff: Reconnect delays (default `Backoff()`: 0.1 s doubling to 10 s, jittered).
        connect_timeout: Seconds the first connection of each socket may take, retries
            included (default 10 s); reconnects after that retry forever.

    Raises:
        RoomNameError: `room` is not a valid room name.
        ValueError: `url` is not a ws:// or wss:// URL, or `kind` is unknown.
    """

    def __init__(
        self,
        url: str,
        room: str,
        *,
        name: str = "",
        kind: ParticipantKind = "person",
        id: str | None = None,
        token: str | None = None,
        backoff: Backoff | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss") or not parts.netloc:
            raise ValueError(f"server URL must be ws://host:port or wss://host, got {url!r}")
        if kind not in ("person", "agent"):
            raise ValueError(f"kind must be 'person' or 'agent', got {kind!r}")
        if parts.query or parts.fragment:
            raise ValueError(f"server URL must not carry a query or fragment: {url!r}")
        self.url = url.rstrip("/")
        self.room = validate_room(room)
        self.name = name
        self.kind: ParticipantKind = kind
        self._requested_id = id if id is not None else str(uuid4())
        self._participant_id: str | None = None  # what the server says, once it did
        self._token = token
        self._state = ClientState.UNOPENED
        self._exit_stack: AsyncExitStack | None = None
        self._links = DocumentLinks(
            self.room,
            url_of=self._url,
            user=self._user,
            backoff=backoff if backoff is not None else Backoff(),
            connect_timeout=connect_timeout,
            on_room_sync=self._room_synced,
            on_identity=self._learn_identity,
            on_room_call=self._receive_room_call,
            on_room_disconnect=self._room_disconnected,
        )
        self._tool_calls = ToolCalls(self._send_room_call, self)
        self._documents: dict[str, MeshDocument] = {}
        self._document_list = DocumentList(self._links.room_doc)
        self._outbox = MessageOutbox()

    # -- identity ----------------------------------------------------------------------------

    @property
    def participant_id(self) -> str:
        """Our participant id in the room: the server's word once joined, else the one asked.

        Without auth it is the `id` given (or a new UUID); with auth, the token's ``sub``.
        Messages are signed with it and `participants` is keyed by it.
        """
        return self._participant_id or self._requested_id

    @property
    def id(self) -> str:
        """Same as `participant_id`."""
        return self.participant_id

    def _learn_identity(self, identity: dict[str, Any]) -> None:
        participant_id = identity.get("id")
        if not isinstance(participant_id, str) or participant_id == self._participant_id:
            return
        self._participant_id = participant_id
        self._links.set_user(self._user())

    def _user(self) -> dict[str, Any]:
        return {"id": self.participant_id, "name": self.name, "kind": self.kind}

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def state(self) -> ClientState:
        """Where the client is in its lifecycle."""
        return self._state

    async def __aenter__(self) -> RoomClient:
        stack = AsyncExitStack()
        task_group = await stack.enter_async_context(anyio.create_task_group())
        try:
            await task_group.start(self.start)
        except BaseException:
            await stack.aclose()  # nothing runs in the group: it exits cleanly
            raise
        self._exit_stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        await self.stop()
        assert self._exit_stack is not None
        return await self._exit_stack.__aexit__(exc_type, exc_value, traceback)

    async def start(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Join the room (synced room document), signal readiness, run until `stop()`.

        Raises:
            RuntimeError: the client was already opened (clients are not reusable).
            ClientError: the server cannot be reached within `connect_timeout`, or it
                refused the connection (`code` is the close code, e.g. 4401).
        """
        if self._state is not ClientState.UNOPENED:
            raise RuntimeError("Cannot open a RoomClient more than once.")
        self._state = ClientState.OPENED
        refusal: ClientError | None = None
        async with anyio.create_task_group() as task_group:
            try:
                await self._links.join(task_group)
            except ClientError as error:
                refusal = error
                self._state = ClientState.CLOSED
                task_group.cancel_scope.cancel()
            else:
                self._tool_calls.start(task_group)
                task_status.started()
                await anyio.sleep_forever()
        self._links.task_group = None
        if refusal is not None:
            raise refusal

    async def stop(self) -> None:
        """Leave: withdraw awareness, flush pending edits, close every socket with 1000."""
        if self._state is ClientState.CLOSED:
            return
        self._state = ClientState.CLOSED
        await self._links.close_all()
        if self._links.task_group is not None:
            self._links.task_group.cancel_scope.cancel()
        self._links.notify()

    async def refresh_token(self, token: str) -> None:
        """Present a fresh token on every open socket, before the current one expires.

        The server checks it as it checks a token at connect; it must name the same
        participant. Each socket then keeps going with the new token's access
        (read-only or not) and expiry, without reconnecting; reconnections use it too.
        Returns once every connected socket's server accepted it (a socket offline at
        the moment presents it when it reconnects).

        ```py
        await room.refresh_token(mint_token(secret=secret, grants=grants,
                                            participant_id=room.participant_id))
        ```

        Raises:
            ValueError: `token` is not a non-empty string.
            ClientError: the client is not open; or the server refused the token (`code`
                4401: invalid, expired or revoked; 4403: no grant for a document, or
                another participant) and closed that socket; or it did not answer
                within 10 s (a server that does not know token refresh).
        """
        if not isinstance(token, str) or not token:
            raise ValueError("token must be a non-empty string")
        self._check_open()
        self._token = token
        errors = await self._links.refresh_token(token)
        self._links.notify()
        if errors:
            raise errors[0]

    # -- documents ---------------------------------------------------------------------------

    async def open(
        self, path: str, schema: MeshSchema | None = None, *, fragment: str = "default"
    ) -> MeshDocument:
        """Connect to the document at `path`, sync it, and return it as a `MeshDocument`.

        Opening a path that is already open returns the same document.

        Raises:
            RoomNameError: `path` is not a valid document path.
            ClientError: the client is not open, or the server refused this document.
        """
        from meshdoc import MeshDocument

        doc = await self.open_ydoc(path)
        document = self._documents.get(path)
        if document is None:
            document = MeshDocument(schema, fragment=fragment, doc=doc)
            self._documents[path] = document
        return document

    async def open_ydoc(self, path: str) -> Doc:
        """Connect to the document at `path`, sync it, and return its raw `pycrdt.Doc`.

        For documents that are not element trees (a plain `Text` bound to a code
        editor, a `Map` of settings); `open()` wraps the same `Doc`.

        Raises:
            RoomNameError: `path` is not a valid document path.
            ClientError: the client is not open, or the server refused this document.
        """
        validate_path(path)
        if path == "":
            raise RoomNameError(
                "the room document is joined on start: use participants, messages, awareness",
                name=path,
            )
        self._check_open()
        return (await self._links.open(path)).doc

    async def close_document(self, path: str) -> None:
        """Disconnect from one document (its edits so far are flushed first)."""
        self._documents.pop(path, None)
        await self._links.close(path)

    def ydoc(self, path: str = "") -> Doc:
        """The underlying `pycrdt.Doc` of an open document (`""`: the room document)."""
        return self._links.get(path).doc

    @property
    def open_documents(self) -> dict[str, MeshDocument]:
        """The documents this client opened (`open`), by path."""
        return dict(self._documents)

    @property
    def documents(self) -> dict[str, dict[str, Any]]:
        """The room's documents, stored and open, as the server lists them in the room
        document: path → {size, modified (ms since the epoch, or None), stored, open
        (the participant ids that have it open, sorted)}. Live: read it again, wait on
        it with `wait_for`, or subscribe with `on_documents_changed`."""
        return self._document_list.current()

    async def list_documents(self) -> dict[str, dict[str, Any]]:
        """The room's documents (as `documents`), once the room document is synced.

        Needs no storage object: the server lists stored documents in the room document
        when the room opens, before the room document's first sync.

        Raises:
            ClientError: the client is not open.
        """
        self._check_open()
        await self.wait_for(lambda: self._links.room is not None and self._links.room.connected)
        return self.documents

    def on_documents_changed(self, callback: DocumentsCallback) -> Callable[[], None]:
        """Call `callback(documents)` after each change of `documents`; return a function
        that unsubscribes it.

        ```py
        stop = room.on_documents_changed(lambda documents: print(sorted(documents)))
        ```

        Called on the event loop, inside the change's transaction: keep it short (set an
        event, queue the value) and do not edit the room document from it.
        """
        return self._document_list.subscribe(callback)

    # -- presence ----------------------------------------------------------------------------

    @property
    def participants(self) -> dict[str, dict[str, Any]]:
        """Participant id → {name, kind, joinedAt, attributes}, as the server maintains it."""
        return self._links.room_doc().get("participants", type=Map).to_py() or {}

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Room messages: {from, to (None = everyone), text or json, time}.

        In the shared array's order, which is causal (a message sent after seeing
        another comes after it) and the same for every peer; messages sent at once
        by peers that had not seen each other's are ordered by the CRDT, not by time.
        """
        return self._links.room_doc().get("messages", type=Array).to_py() or []

    async def send_message(
        self, content: str | Any, *, to: str | None = None, thread: str | None = None
    ) -> dict[str, Any]:
        """Post a message to the room (`to=None`: everyone; else a participant id).

        A `str` is sent as `text`; any other JSON value as `json`. While the room's
        socket is down the message waits, and is appended after the next handshake
        (the room document restarts from the server's copy on every reconnection).

        `thread` names the conversation it belongs to (an agent answers in the thread
        it was asked in, and keeps one conversation per thread). Returns the message, with
        its ``id``.

        Raises:
            ValueError: `to` or `thread` is empty, or `content` is not JSON-serialisable.
            ClientError: the client is not open.
        """
        message = room_message(self.participant_id, content, to, thread)
        self._check_open()
        self._outbox.post(self._links.room, message)
        await anyio.lowlevel.checkpoint()
        return message

    # -- tools offered in the room ---------------------------------------------------------

    @property
    def toolkits(self) -> dict[str, dict[str, Any]]:
        """Toolkits offered in the room: ``"OFFERER/NAME"`` → {name, description,
        offeredBy, tools}, as the server lists them in the room document."""
        return self._links.room_doc().get("toolkits", type=Map).to_py() or {}

    async def offer(self, toolkit: Offerable) -> None:
        """Offer `toolkit` (e.g. a `meshroom.agents.Toolkit`) to everyone in the room.

        Its tools run in this client when others call them, until `withdraw`, the
        client stops, or (briefly) the connection drops: offers are made again after
        each reconnection.

        Raises:
            RoomCallError: the server refused it (grants, names, sizes).
        """
        self._check_open()
        await self._tool_calls.offer(toolkit)

    async def withdraw(self, name: str) -> None:
        """Stop offering the toolkit called `name`."""
        await self._tool_calls.withdraw(name)

    async def call_tool(
        self,
        toolkit: str,
        tool: str,
        arguments: dict[str, Any] | None = None,
        *,
        timeout: float | None = 60.0,  # noqa: ASYNC109 - the server's deadline for the call
    ) -> Any:
        """Call `tool` of a toolkit offered in the room; return its result (JSON).

        `toolkit` is a key of `toolkits` (``"ann/ui"``) or a bare name only one
        participant offers (``"ui"``). `timeout` goes with the call: the server ends
        it with reason ``timeout`` (and cancels it at the offerer) when it passes.
        Cancelling the awaiting task cancels the call.

        Raises:
            RoomCallError: no result; `reason` says why (``unknown-tool``, ``timeout``,
                ``offerer-left``, ``tool-error``, ``forbidden``, ``disconnected``…).
        """
        self._check_open()
        return await self._tool_calls.call(toolkit, tool, arguments or {}, timeout=timeout)

    @property
    def conversations(self) -> Conversations:
        """Saved threads and streamed answers (what agents keep conversations with)."""
        return self._tool_calls.conversations

    # -- work queues -------------------------------------------------------------------

    @property
    def queues(self) -> dict[str, dict[str, Any]]:
        """The room's work queues: name → {length, consumers, inFlight}."""
        return self._links.room_doc().get("queues", type=Map).to_py() or {}

    async def send_to_queue(self, queue: str, item: Any) -> int:
        """Add a JSON `item` to the room's work queue `queue`; return its id.

        Raises:
            ClientError: not connected, or the room refused it (name, size, full).
        """
        self._check_open()
        return await self._tool_calls.queues.send(queue, item)

    def consume(self, queue: str) -> AbstractAsyncContextManager[AsyncIterator[QueueItem]]:
        """Take items of `queue` one at a time while the block runs; `ack` each when done::

            async with client.consume("summaries") as items:
                async for item in items:
                    print(item.item)
                    await item.ack()

        An item not acknowledged when this client disconnects goes to another consumer.
        """
        self._check_open()
        return self._tool_calls.queues.consume(queue)

    def _send_room_call(self, call: dict[str, Any]) -> bool:
        room = self._links.room
        return room is not None and room.send_room_call(call)

    def _receive_room_call(self, body: bytes) -> None:
        self._tool_calls.receive_encoded(body)

    def _room_disconnected(self) -> None:
        self._tool_calls.disconnected()

    def set_awareness(self, path: str, fields: dict[str, Any]) -> None:
        """Merge `fields` into our awareness state on `path` (`""`: the room document).

        ```py
        room.set_awareness("notes/plan", {"cursor": {"anchor": 3, "head": 7}})
        ```

        Raises:
            ValueError: `fields` is not a dict of JSON values.
            ClientError: `path` is not open.
        """
        check_awareness_fields(fields)
        merge_awareness(self._links.get(path).awareness, fields)

    def awareness(self, path: str = "") -> dict[int, dict[str, Any]]:
        """Yjs client id → awareness state of everyone on `path`, ourselves included."""
        return dict(self._links.get(path).awareness.states)

    def client_id(self, path: str = "") -> int:
        """Our Yjs client id on `path` (the key of our own state in `awareness(path)`)."""
        return self._links.get(path).awareness.client_id

    def read_only(self, path: str = "") -> bool:
        """Whether the server admitted our socket on `path` read-only (`""`: the room).

        The server drops a read-only connection's edits without answering, so a peer
        that edits on behalf of others (an agent, an MCP session) asks first and says
        why instead of writing into a document that never reaches anyone. It is the
        scope of the server's last "authenticated" message on that socket, which a
        token refresh can change; False until the server has said.

        Raises:
            ClientError: `path` is not open.
        """
        return self._links.get(path).scope == "readonly"

    @property
    def connected(self) -> bool:
        """Whether every open socket is currently connected and synced."""
        return self._links.connected

    def connections(self, path: str = "") -> int:
        """How many times the socket of `path` completed a handshake (1 + reconnects)."""
        return self._links.get(path).connections

    # -- waiting -----------------------------------------------------------------------------

    async def wait_for(self, predicate: Callable[[], object]) -> None:
        """Wait until `predicate()` is true, re-checking after every change that arrives.

        Bound the wait with a scope, as anyio does:

        ```py
        with anyio.fail_after(5):
            await room.wait_for(lambda: "bob" in room.participants)
        ```

        Raises:
            ClientError: the server refused one of our sockets while waiting, or the
                client was closed.
        """
        while True:
            self._links.raise_error()
            if predicate():
                return
            if self._state is ClientState.CLOSED:
                raise ClientError(f"the client of room {self.room!r} is closed")
            await self._links.next_change()  # at most 0.2 s: state changed by other code

    # -- internals ---------------------------------------------------------------------------

    def _room_synced(self) -> None:
        self._document_list.rebind()  # a new room document after each reconnection
        self._tool_calls.connected()
        self._outbox.flush(self._links.room_doc())

    def _url(self, path: str) -> str:
        """The socket URL of `path`, with the current token."""
        query = {"id": self._requested_id, "name": self.name, "kind": self.kind}
        if self._token is not None:
            query["token"] = self._token
        return socket_url(self.url, self.room, path, query)

    def _check_open(self) -> None:
        if self._state is not ClientState.OPENED:
            raise ClientError(f"the client of room {self.room!r} is {self._state.name.lower()}")
        self._links.raise_error()
