"""The room server core: rooms on demand, connections in, extensions called in order.

Transport-agnostic: `serve()` takes any `Connection` plus the URL path, query
and headers it arrived with. `server.app` wraps it as a Starlette ASGI app.

```py
import anyio
from meshroom import Server, connection_pair
from meshroom._protocol import encode_sync_step1

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
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus

from ._close_codes import CloseCode
from ._connection import Connection, ConnectionClosed
from ._exceptions import AuthenticationError, MeshroomError, ProtocolError, RoomNameError
from ._handshake import admit
from ._hooks import ConnectionPayload, Extension
from ._limits import Limits, TokenBucket
from ._names import parse_target, validate_path, validate_room
from ._protocol import encode_permission_denied
from ._room import Room
from ._session import Session

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
        self.grace_period = grace_period
        self.limits = limits or Limits()
        self.store_retry = store_retry
        self._rooms: dict[str, Room] = {}
        self._connections_per_ip: dict[str, int] = {}
        self._group: TaskGroup | None = None
        self._state = ServerState.UNOPENED
        self._stopped = anyio.Event()
        self._exit_stack: AsyncExitStack | None = None
        self._app: Any = None

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Server:
        if self._state is not ServerState.UNOPENED:
            raise MeshroomError("A Server can only be started once.")
        async with AsyncExitStack() as stack:
            self._group = await stack.enter_async_context(anyio.create_task_group())
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
            await self._stopped.wait()

    async def stop(self) -> None:
        """Ask a server run by `start()` to store everything and stop."""
        self._stopped.set()

    async def _startup(self) -> None:
        self._state = ServerState.RUNNING
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
            self._rooms.clear()
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
        delay, longest = self.store_retry
        for attempt in range(1, 4):
            try:
                await room.store("shutdown")
                return
            except Exception:
                log.exception("storing room %r at shutdown failed (attempt %d)", room.name, attempt)
                await anyio.sleep(min(delay * 2 ** (attempt - 1), longest))
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
            room = Room(name, extensions=self.extensions, max_messages=self.limits.room_messages)
            self._rooms[name] = room
            group.start_soon(room.run_changes)
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
        delay, longest = self.store_retry
        while (
            room.holders == 0 and room.releases == releases and self._rooms.get(room.name) is room
        ):
            try:
                await room.store("room-close")
            except Exception:
                log.exception("storing room %r failed; retrying in %.1f s", room.name, delay)
                await anyio.sleep(delay)
                delay = min(delay * 2, longest)
                continue
            if (
                room.holders == 0
                and room.releases == releases
                and self._rooms.get(room.name) is room
            ):
                del self._rooms[room.name]
                room.close()
                log.info("room %r closed", room.name)
            return

    @asynccontextmanager
    async def open_document(
        self, room: str, path: str, schema: Any = None, *, fragment: str = "default"
    ) -> AsyncIterator[Any]:
        """Hold a room's live document from the server side (the room stays open meanwhile).

        Yields a `meshdoc.MeshDocument` over the live `pycrdt.Doc` when meshdoc provides
        one, else the `pycrdt.Doc` itself. Edits made through it reach every client and
        the `on_change` hooks, like a client's.

        Raises:
            RoomNameError: bad room name or path.
        """
        validate_room(room)
        validate_path(path)
        live_room = self._acquire(room)
        try:
            document = await live_room.open_document(path)
            yield _wrap_document(document.doc, schema, fragment)
        finally:
            self._release(live_room)

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
            path: the raw URL path, still percent-encoded: ``/{room}`` or ``/{room}/{doc}``.
            query: query parameters (``token``, ``id``, ``name``, ``kind``).
            headers: request headers (``Authorization: Bearer``).
            client: ``"host:port"`` of the peer, for per-address limits and logs.
        """
        query = query or {}
        headers = headers or {}
        if self._state is not ServerState.RUNNING:
            await _close(connection, CloseCode.GOING_AWAY, "server not running")
            return
        try:
            room_name, doc_path = parse_target(path)
        except RoomNameError as error:
            await _close(connection, CloseCode.BAD_ROOM_NAME, str(error))
            return
        host = client.rsplit(":", 1)[0] if client else None
        count = self._connections_per_ip.get(host, 0) if host else 0
        if (
            host
            and self.limits.max_connections_per_ip
            and count >= self.limits.max_connections_per_ip
        ):
            await _close(
                connection,
                CloseCode.RATE_LIMITED,
                f"more than {self.limits.max_connections_per_ip} connections from {host}",
            )
            return
        if host:
            self._connections_per_ip[host] = count + 1
        try:
            await self._serve_admitted(connection, room_name, doc_path, query, headers, client)
        finally:
            if host:
                remaining = self._connections_per_ip.get(host, 1) - 1
                if remaining:
                    self._connections_per_ip[host] = remaining
                else:
                    self._connections_per_ip.pop(host, None)

    async def _serve_admitted(
        self,
        connection: Connection,
        room_name: str,
        doc_path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        client: str | None,
    ) -> None:
        bucket = TokenBucket(self.limits.messages_per_second, self.limits.messages_burst)
        try:
            admission = await admit(
                connection,
                room=room_name,
                path=doc_path,
                query=query,
                headers=headers,
                client=client,
                extensions=self.extensions,
                limits=self.limits,
                bucket=bucket,
            )
        except AuthenticationError as error:
            log.info("refused %s for %r/%r: %s", client, room_name, doc_path, error.reason)
            with suppress(Exception):
                await connection.send(encode_permission_denied(error.reason))
            await _close(connection, error.code, error.reason)
            return
        except ProtocolError as error:
            await _close(connection, CloseCode.PROTOCOL_ERROR, str(error))
            return
        except ConnectionClosed:
            return
        room = self._acquire(room_name)
        try:
            try:
                document = await room.open_document(doc_path)
            except Exception as error:
                log.exception("loading %r/%r failed", room_name, doc_path)
                await _close(connection, 1011, f"the document could not be loaded: {error}")
                return
            session = Session(
                connection,
                room,
                document,
                admission.access,
                self.limits,
                client=client,
                bucket=bucket,
            )
            await self._run_session(session, admission.buffered)
        finally:
            self._release(room)

    async def _run_session(self, session: Session, buffered: list[bytes]) -> None:
        room, document, access = session.room, session.document, session.access
        payload = ConnectionPayload(room=room.name, path=document.path, access=access)
        room.presence.join(access)  # before joining the relay: the state includes it
        document.sessions.add(session)
        log.info(
            "connect %s %r to %r/%r%s",
            session.client or "-",
            access.participant_id,
            room.name,
            document.path,
            " (read-only)" if access.read_only else "",
        )
        try:
            for extension in self.extensions:
                await extension.on_connect(payload)
            await session.run(buffered)
        finally:
            with anyio.CancelScope(shield=True):
                document.sessions.discard(session)
                session.remove_awareness()
                room.presence.leave(access)
                code = session.close_reason[0] if session.close_reason else CloseCode.NORMAL
                log.info(
                    "disconnect %s %r from %r/%r (%s)",
                    session.client or "-",
                    access.participant_id,
                    room.name,
                    document.path,
                    int(code),
                )
                for extension in self.extensions:
                    try:
                        await extension.on_disconnect(payload)
                    except Exception:
                        log.exception("on_disconnect of %s failed", type(extension).__name__)

    @asynccontextmanager
    async def lifespan(self, app: Any = None) -> AsyncIterator[None]:
        """Run the server for an ASGI app's lifetime: ``Starlette(..., lifespan=server.lifespan)``.

        For a parent app that mounts `server.app` (a mounted app's own lifespan never runs).
        """
        async with self:
            yield

    @property
    def app(self) -> Any:
        """A Starlette app serving this server (websocket route, `GET /healthz`, lifespan)."""
        if self._app is None:
            from ._asgi import create_app

            self._app = create_app(self)
        return self._app


async def _close(connection: Connection, code: int, reason: str) -> None:
    with anyio.CancelScope(shield=True), anyio.move_on_after(5), suppress(Exception):
        await connection.close(int(code), reason)


def _wrap_document(doc: Any, schema: Any, fragment: str) -> Any:
    """A MeshDocument over `doc` when meshdoc has one, else the raw `pycrdt.Doc`."""
    try:
        from meshdoc import MeshDocument  # type: ignore[attr-defined]
    except ImportError:
        return doc
    return MeshDocument(schema, fragment=fragment, doc=doc)
