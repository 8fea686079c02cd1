"""The path of one connection: name check, per-address limit, handshake, session.

Kept apart from `Server` (rooms and lifecycle) so each module has one job;
these functions use the server's private room bookkeeping (`_acquire`,
`_release`, `_connections_per_ip`) and nothing else: `ServingHost` names it, so
this module does not import the server that calls it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import AsyncExitStack, suppress
from typing import TYPE_CHECKING, Protocol

import anyio

from .._exceptions import AuthenticationError, ProtocolError, RoomNameError
from ..protocol._close_codes import CloseCode
from ..protocol._messages import encode_permission_denied
from ..protocol._names import parse_target
from ._connection import Connection, ConnectionClosed, PushConnection
from ._handshake import admit
from ._hooks import ConnectionPayload
from ._limits import TokenBucket
from ._reauth import TokenRefresh
from ._session import Session

if TYPE_CHECKING:
    from ._activity import ActivityFeed
    from ._budget import SendBudget
    from ._hooks import Extension
    from ._limits import Limits
    from ._room import Room

__all__ = ["ServingHost", "close_quietly", "serve_connection"]

log = logging.getLogger("meshroom.server")


class ServingHost(Protocol):
    """What serving one connection needs of its `Server`."""

    limits: Limits
    extensions: Sequence[Extension]
    send_budget: SendBudget
    activity: ActivityFeed
    _connections: int
    _connections_per_ip: dict[str, int]

    def _acquire(self, name: str) -> Room: ...

    def _release(self, room: Room) -> None: ...


async def serve_connection(
    server: ServingHost,
    connection: Connection,
    path: str,
    *,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    client: str | None,
    on_session: Callable[[Session], None] | None = None,
) -> None:
    """Name check, per-address limit, handshake, then the session (see `Server.serve`).

    `on_session` is told of the session once it exists, before it starts: the
    Hocuspocus multiplexer (`_multiplex`) reads what the session decided about each
    client update (applied or refused) to answer with a sync status.

    Each step that takes something (an address slot, the room, a place in the
    document) pushes its release on one exit stack. A push connection's session
    needs no task to wait for its end: the stack is detached and unwinds when
    the session ends, so an idle connection holds no coroutine frames.
    """
    try:
        room_name, doc_path = parse_target(path)
    except RoomNameError as error:
        await close_quietly(connection, CloseCode.BAD_ROOM_NAME, str(error))
        return
    async with AsyncExitStack() as stack:
        most = server.limits.max_connections
        if server._connections >= most:
            await close_quietly(
                connection, CloseCode.TRY_AGAIN_LATER, f"the server holds {most} connections"
            )
            return
        server._connections += 1
        stack.callback(_forget_connection, server)
        host = client.rsplit(":", 1)[0] if client else None
        if host:
            most = server.limits.max_connections_per_ip
            count = server._connections_per_ip.get(host, 0)
            if most and count >= most:
                await close_quietly(
                    connection, CloseCode.RATE_LIMITED, f"more than {most} connections from {host}"
                )
                return
            server._connections_per_ip[host] = count + 1
            stack.callback(_forget_address, server, host)
        try:
            session = await _admit(
                server, stack, connection, room_name, doc_path, query, headers, client
            )
            if session is None:
                return
            if on_session is not None:
                on_session(session)
            if isinstance(connection, PushConnection):
                stack.push_async_callback(session.close_connection)
                detached = stack.pop_all()
                session.start(on_end=lambda: _unwind(detached))
                return
            await session.run()
        except Exception as error:  # an extension hook failed: this connection only
            log.exception("serving %r/%r to %s failed", room_name, doc_path, client)
            await close_quietly(connection, 1011, f"internal error: {type(error).__name__}")


def _forget_connection(server: ServingHost) -> None:
    server._connections -= 1


def _forget_address(server: ServingHost, host: str) -> None:
    remaining = server._connections_per_ip.get(host, 1) - 1
    if remaining:
        server._connections_per_ip[host] = remaining
    else:
        server._connections_per_ip.pop(host, None)


#: Unwinds in flight: the event loop keeps only weak references to tasks.
_unwinding: set[asyncio.Task[None]] = set()


def _unwind(stack: AsyncExitStack) -> None:
    """A detached session ended: release what it held, in a task of its own.

    Called from the transport's callbacks (no current task, so no anyio task group
    can start it); push connections run on asyncio, so an asyncio task does.
    """

    async def unwind() -> None:
        with anyio.CancelScope(shield=True):
            try:
                await stack.aclose()
            except Exception:
                log.exception("closing a session failed")

    task = asyncio.get_running_loop().create_task(unwind())
    _unwinding.add(task)
    task.add_done_callback(_unwinding.discard)


async def _admit(
    server: ServingHost,
    stack: AsyncExitStack,
    connection: Connection,
    room_name: str,
    doc_path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    client: str | None,
) -> Session | None:
    """Authenticate, open the room and the document, join: the session, or None if refused."""
    bucket = TokenBucket(server.limits.messages_per_second, server.limits.messages_burst)
    try:
        admission = await admit(
            connection,
            room=room_name,
            path=doc_path,
            query=query,
            headers=headers,
            client=client,
            extensions=server.extensions,
            limits=server.limits,
            bucket=bucket,
        )
    except AuthenticationError as error:
        log.info(
            "refused %s for %r/%r: %s",
            client,
            room_name,
            doc_path,
            error.reason,
            extra={"room": room_name, "path": doc_path, "client": client},
        )
        server.activity.record(
            room_name,
            "auth.refused",
            path=doc_path,
            client=client,
            code=int(error.code),
            reason=error.reason,
        )
        with suppress(Exception):
            await connection.send(encode_permission_denied(error.reason))
        await close_quietly(connection, error.code, error.reason)
        return None
    except ProtocolError as error:
        await close_quietly(connection, CloseCode.PROTOCOL_ERROR, str(error))
        return None
    except ConnectionClosed:
        return None
    room = server._acquire(room_name)
    stack.callback(server._release, room)
    try:
        document = await room.open_document(doc_path)
    except Exception as error:
        log.exception("loading %r/%r failed", room_name, doc_path)
        await close_quietly(connection, 1011, f"the document could not be loaded: {error}")
        return None
    requires_token = any(extension.requires_token for extension in server.extensions)
    session = Session(
        connection,
        room,
        document,
        admission.access,
        server.limits,
        client=client,
        bucket=bucket,
        budget=server.send_budget,
        on_token=TokenRefresh(server.extensions, headers) if requires_token else None,
    )
    access = session.access
    payload = ConnectionPayload(room=room.name, path=document.path, access=access, session=session)
    room.presence.join(access)  # before joining the relay: the state includes it
    document.sessions.add(session)
    if document.path:
        room.directory.opened(document.path, access.participant_id)
    stack.push_async_callback(_leave, server, session, payload)
    log.info(
        "connect %s %r to %r/%r%s",
        session.client or "-",
        access.participant_id,
        room.name,
        document.path,
        " (read-only)" if access.read_only else "",
        extra={
            "room": room.name,
            "path": document.path,
            "participant": access.participant_id,
            "client": session.client,
        },
    )
    for extension in server.extensions:
        await extension.on_connect(payload)
    return session


async def _leave(server: ServingHost, session: Session, payload: ConnectionPayload) -> None:
    """The session is over: out of the relay, awareness and presence; tell the extensions."""
    room, document, access = session.room, session.document, session.access
    with anyio.CancelScope(shield=True):
        document.sessions.discard(session)
        session.remove_awareness()
        if document.path:
            room.directory.closed(document.path, access.participant_id)
        if document.path == "":
            room.calls.peer_left(session)
        room.presence.leave(access)
        code = session.close_reason[0] if session.close_reason else CloseCode.NORMAL
        log.info(
            "disconnect %s %r from %r/%r (%s)",
            session.client or "-",
            access.participant_id,
            room.name,
            document.path,
            int(code),
            extra={
                "room": room.name,
                "path": document.path,
                "participant": access.participant_id,
                "client": session.client,
            },
        )
        for extension in server.extensions:
            try:
                await extension.on_disconnect(payload)
            except Exception:
                log.exception("on_disconnect of %s failed", type(extension).__name__)


async def close_quietly(connection: Connection, code: int, reason: str) -> None:
    with anyio.CancelScope(shield=True), anyio.move_on_after(5), suppress(Exception):
        await connection.close(int(code), reason)
