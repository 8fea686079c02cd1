"""The room server core: rooms on demand, connections in, extensions called in order.

Transport-agnostic: `serve()` takes any `Connection` plus the URL path, query
and headers it arrived with. Transports are plugged in from outside:
`meshroom.create_app(server)` wraps it as an ASGI app, `meshroom serve` runs it on uvicorn.
Longer than 400 lines: `Server` is the one object an embedding application holds
(lifecycle, rooms, documents, messages, activity, connections), each method short; the
work is in `_serving`, `_room` and the modules they use.

```py
import anyio
from meshroom import Server
from meshroom.server import connection_pair
from meshroom.protocol._messages import encode_sync_step1

async def main():
    async with Server(grace_period=0.1) as server:
        server_side, client_side = connection_pair()
        async with anyio.create_task_group() as group:
            group.start_soon(server.serve, server_side, "/my room/notes.md")
            await client_side.recv()  # the server's sync step 1
            assert server.room_names() == ["my room"]
            await client_side.close()

anyio.run(main)
```
"""

from __future__ import annotations

import enum
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus

from .._exceptions import MeshroomError, RoomNameError
from .._retry import Backoff
from ..protocol._close_codes import CloseCode
from ..protocol._names import validate_path, validate_room
from ._activity import ActivityFeed
from ._budget import SendBudget
from ._connection import Connection
from ._deadlines import CallDeadlines
from ._heap import trim_heap
from ._hooks import Extension
from ._limits import Limits
from ._multiplex import serve_hocuspocus
from ._room import Room
from ._serving import close_quietly, serve_connection
from ._stats import ServerStats
from ._threads import ThreadLoader

__all__ = ["Server"]

log = logging.getLogger("meshroom.server")


class ServerState(enum.Enum):
    UNOPENED = "unopened"
    RUNNING = "running"
    CLOSED = "closed"


class Server:
    """Rooms of documents shared over the y-websocket protocol.

    Args:
        extensions: storage, auth, metrics… called in `priority` order (higher first).
            An extension with an ``attach_server(server)`` method is handed this server.
        grace_period: seconds a room stays open after its last participant left.
        limits: per-connection bounds (see `Limits`).
        store_retry: first and longest delay, in seconds, between attempts to store a
            closing room whose `on_store_document` raised.

    Use as an async context manager (or `start()` in a task group, then `stop()`).
    """

    def __init__(
        self,
        *,
        extensions: Sequence[Extension] = (),
        grace_period: float = 5.0,
        limits: Limits | None = None,
        store_retry: tuple[float, float] = (0.5, 30.0),
    ) -> None:
        if grace_period < 0:
            raise ValueError(f"grace_period must be >= 0, got {grace_period}")
        self.extensions: list[Extension] = sorted(
            extensions, key=lambda extension: extension.priority, reverse=True
        )
        #: What happened in each room session, for the extensions' `on_activity` hooks.
        self.activity = ActivityFeed(
            self.extensions, lambda room: getattr(self._rooms.get(room), "session", None)
        )
        #: Relay counters, kept only when an extension reads them (``uses_stats = True``).
        counting = any(getattr(extension, "uses_stats", False) for extension in extensions)
        self.stats = ServerStats() if counting else None
        for extension in self.extensions:
            # An extension that opens documents by itself (a cluster's storage writer)
            # learns which server's rooms to open them in.
            attach = getattr(extension, "attach_server", None)
            if attach is not None:
                attach(self)
        self.grace_period = grace_period
        self.limits = limits or Limits()
        self.store_retry = store_retry
        self._store_backoff = Backoff(initial=store_retry[0], maximum=store_retry[1], jitter=0.0)
        self._rooms: dict[str, Room] = {}
        self._connections_per_ip: dict[str, int] = {}
        #: Open connections, all addresses together (against `Limits.max_connections`).
        self._connections = 0
        #: The bound on bytes queued for all connections together.
        self.send_budget = SendBudget(self.limits.max_queued_bytes)
        #: Deadlines of the tool calls routed in every room (one task watches them).
        self._call_deadlines = CallDeadlines()
        #: Agents' saved conversations asked back of the extensions (one task).
        self._thread_loader = ThreadLoader(self.extensions)
        self._group: TaskGroup | None = None
        self._state = ServerState.UNOPENED
        self._stopped: anyio.Event | None = None  # created in start(): needs a running loop
        self._stop_requested = False
        self._exit_stack: AsyncExitStack | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Server:
        if self._state is not ServerState.UNOPENED:
            raise MeshroomError("A Server can only be started once.")
        async with AsyncExitStack() as stack:
            self._group = await stack.enter_async_context(anyio.create_task_group())
            self._group.start_soon(self._call_deadlines.run)
            self._group.start_soon(self._thread_loader.run)
            await self._startup()
            stack.push_async_callback(self._shutdown)
            self._exit_stack = stack.pop_all()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._exit_stack is not None
        stack, self._exit_stack = self._exit_stack, None
        await stack.__aexit__(*exc_info)

    async def start(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run until `stop()`; signals readiness once rooms can be served."""
        async with self:
            task_status.started()
            self._stopped = anyio.Event()
            if not self._stop_requested:
                await self._stopped.wait()

    async def stop(self) -> None:
        """Ask a server run by `start()` to store everything and stop."""
        self._stop_requested = True
        if self._stopped is not None:
            self._stopped.set()

    async def _startup(self) -> None:
        self._state = ServerState.RUNNING
        self.activity.start(self._group)
        for extension in self.extensions:
            await extension.on_startup()
        log.info("server started (%d extensions)", len(self.extensions))

    async def _shutdown(self) -> None:
        """Close every connection, store every room (reason "shutdown"), stop extensions."""
        self._state = ServerState.CLOSED
        with anyio.CancelScope(shield=True):
            for room in list(self._rooms.values()):
                for session in room.sessions:
                    session.kill(CloseCode.GOING_AWAY, "server shutting down")
            for room in list(self._rooms.values()):
                await self._store_at_shutdown(room)
                room.close()
                room.record("room.closed", reason="shutdown")
            self._rooms.clear()
            await self.activity.finish()  # the last events reach the hooks before they stop
        # Not inside the shield: an extension may close a task group it opened in
        # on_startup, which must be exited from the same cancel-scope nesting level.
        for extension in reversed(self.extensions):
            try:
                await extension.on_shutdown()
            except Exception:
                log.exception("on_shutdown of %s failed", type(extension).__name__)
        assert self._group is not None
        self._group.cancel_scope.cancel()
        log.info("server stopped")

    async def _store_at_shutdown(self, room: Room) -> None:
        for attempt in range(1, 4):
            try:
                await room.store("shutdown")
                return
            except Exception:
                log.exception("storing room %r at shutdown failed (attempt %d)", room.name, attempt)
                await anyio.sleep(self._store_backoff.delay(attempt))
        log.error("room %r could not be stored at shutdown", room.name)

    def _require_running(self) -> TaskGroup:
        if self._state is not ServerState.RUNNING or self._group is None:
            raise MeshroomError("The server is not running: use `async with server:` first.")
        return self._group

    # -- rooms -----------------------------------------------------------------------------

    def room_names(self) -> list[str]:
        """Names of the rooms open in this process."""
        return sorted(self._rooms)

    def room(self, name: str) -> Room | None:
        """The open room `name`, for introspection (participants, sessions, documents)."""
        return self._rooms.get(name)

    def _acquire(self, name: str) -> Room:
        group = self._require_running()
        room = self._rooms.get(name)
        if room is None:
            room = Room(
                name,
                extensions=self.extensions,
                max_messages=self.limits.room_messages,
                call_deadlines=self._call_deadlines,
            )
            assert room.calls.threads is not None
            room.calls.threads.request_load = self._thread_loader.request
            self._rooms[name] = room
            room.stats = self.stats
            room.watch(self.activity)
            group.start_soon(room.run_changes)
            group.start_soon(room.list_stored)
            log.info("room %r opened", name)
        room.holders += 1
        return room

    def _release(self, room: Room) -> None:
        room.holders -= 1
        room.releases += 1
        if room.holders == 0 and self._group is not None and self._state is ServerState.RUNNING:
            self._group.start_soon(self._close_when_idle, room, room.releases)

    async def _close_when_idle(self, room: Room, releases: int) -> None:
        """After the grace period, store the room and drop it, unless someone came back."""
        await anyio.sleep(self.grace_period)
        if room.releases != releases:
            return  # somebody came and left meanwhile: their own timer decides
        failures = 0
        while (
            room.holders == 0 and room.releases == releases and self._rooms.get(room.name) is room
        ):
            try:
                await room.store("room-close")
            except Exception:
                failures += 1
                delay = self._store_backoff.delay(failures)
                log.exception("storing room %r failed; retrying in %.1f s", room.name, delay)
                await anyio.sleep(delay)
                continue
            if (
                room.holders == 0
                and room.releases == releases
                and self._rooms.get(room.name) is room
            ):
                del self._rooms[room.name]
                room.close()
                log.info("room %r closed", room.name)
                room.record("room.closed", reason="idle")
                # A trim walks the heap (milliseconds for a large one): not on the loop.
                await anyio.to_thread.run_sync(trim_heap)
            return

    @asynccontextmanager
    async def open_document(
        self,
        room: str,
        path: str,
        schema: Any = None,
        *,
        fragment: str = "default",
        origin: Any = None,
        participant: str | None = None,
    ) -> AsyncIterator[Any]:
        """Hold a room's live document from the server side (the room stays open meanwhile).

        Yields a `meshdoc.MeshDocument` over the live `pycrdt.Doc` (its `.doc`). Edits
        made through it reach every client and the `on_change` hooks, like a client's;
        `origin` (when given) is the transaction origin of its writes. `participant`
        (an embedded agent's id) is listed in the room document's ``documents`` map as
        having it open, as a connection's participant is.

        Raises:
            RoomNameError: bad room name or path.
        """
        validate_room(room)
        validate_path(path)
        live_room = self._acquire(room)
        try:
            document = await live_room.open_document(path)
            if path:
                live_room.directory.opened(path, participant)
            try:
                yield _wrap_document(document.doc, schema, fragment, origin)
            finally:
                if path:
                    live_room.directory.closed(path, participant)
        finally:
            self._release(live_room)

    async def delete_document(self, room: str, path: str) -> None:
        """Delete a document from storage (`on_delete_document`), the room and its
        ``documents`` map; refused while open (that copy would bring it back).

        Raises:
            RoomNameError: bad room name or path (or ``""``: the room document).
            MeshroomError: the document is open. Exception: an `on_delete_document` hook's.
        """
        validate_room(room)
        if not validate_path(path):
            raise RoomNameError("the room document cannot be deleted", name=path)
        live_room = self._acquire(room)
        try:
            await live_room.wait_listed()
            await live_room.delete_document(path)
        finally:
            self._release(live_room)

    async def store(self, room: str | None = None) -> None:
        """Store one open room (or every open room) now, with reason ``"explicit"``.

        Raises:
            KeyError: `room` is not open in this process.
            Exception: whatever `on_store_document` raised.
        """
        names = self.room_names() if room is None else [room]
        for name in names:
            live_room = self._rooms.get(name)
            if live_room is None:
                raise KeyError(f"room {name!r} is not open")
            await live_room.store("explicit")

    async def send_message(
        self,
        room: str,
        from_: str,
        text: str | None = None,
        *,
        json: Any = None,
        to: str | None = None,
    ) -> dict[str, Any]:
        """Append a room message (shown to every client of the room document).

        Raises:
            RoomNameError: bad room name.
            ValueError: neither or both of `text` and `json`.
        """
        validate_room(room)
        live_room = self._acquire(room)
        try:
            return live_room.presence.append(from_, text=text, json=json, to=to)
        finally:
            self._release(live_room)

    # -- activity --------------------------------------------------------------------------

    def record_activity(self, room: str, type: str, **fields: Any) -> None:
        """Record an activity event of `room` for the `on_activity` hooks (never waits).

        For extensions (storage saves and failures) and applications; `fields` must be
        JSON-ready and hold no secrets (docs/activity.md).
        """
        self.activity.record(room, type, **fields)

    # -- connections -----------------------------------------------------------------------

    async def serve(
        self,
        connection: Connection,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        client: str | None = None,
    ) -> None:
        """Serve one accepted connection until it closes.

        Args:
            connection: the transport (already accepted).
            path: the raw URL path, still percent-encoded: ``/{room}`` or ``/{room}/{doc}``
                for a y-websocket client; ``/`` (no room) for a Hocuspocus provider, whose
                socket carries many documents (docs/hocuspocus.md).
            query: query parameters (``token``, ``id``, ``name``, ``kind``).
            headers: request headers (``Authorization: Bearer``).
            client: ``"host:port"`` of the peer, for per-address limits and logs.
        """
        if self._state is not ServerState.RUNNING:
            await close_quietly(connection, CloseCode.GOING_AWAY, "server not running")
            return
        if path in ("", "/"):  # no room in the URL: a Hocuspocus socket names them per frame
            await serve_hocuspocus(
                self, connection, query=query or {}, headers=headers or {}, client=client
            )
            return
        await serve_connection(
            self, connection, path, query=query or {}, headers=headers or {}, client=client
        )

    @asynccontextmanager
    async def lifespan(self, app: Any = None) -> AsyncIterator[None]:
        """Run the server for an ASGI app's lifetime: ``Starlette(..., lifespan=server.lifespan)``.

        For a parent app that mounts `create_app(server)` (a mounted app's own lifespan never runs).
        """
        async with self:
            yield


def _wrap_document(doc: Any, schema: Any, fragment: str, origin: Any) -> Any:
    """A MeshDocument over the room's live `doc` (meshdoc is part of this distribution)."""
    from meshdoc import MeshDocument

    if origin is None:
        return MeshDocument(schema, fragment=fragment, doc=doc)
    return MeshDocument(schema, fragment=fragment, doc=doc, origin=origin)
