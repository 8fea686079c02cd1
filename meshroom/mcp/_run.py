"""Serving a room over MCP: join first, then speak stdio or streamable HTTP until the client goes.

The room is joined before the MCP transport starts, so a dead server or a
refused token fails at once with the client's own error (an MCP client sees
the process end before its handshake), instead of a server that answers
``tools/list`` and then fails every call. Over stdio the session ends when the
client closes its end; over HTTP the server runs until it is stopped, and each
MCP session is one of possibly many clients driving the same participant.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import anyio

from ..client import RoomClient
from ._server import RoomMcpServer

__all__ = ["serve_http", "serve_room", "serve_stdio"]


async def serve_stdio(server: RoomMcpServer) -> None:
    """Serve MCP on this process's stdin and stdout until the client closes stdin."""
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read, write):
        await server.server.run(read, write, server.initialization_options())


async def serve_http(
    server: RoomMcpServer,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    on_ready: Callable[[str], Any] | None = None,
) -> None:
    """Serve MCP's streamable HTTP at ``http://HOST:PORT/mcp`` until cancelled.

    `on_ready` is called with the endpoint's URL once it accepts connections.
    """
    import uvicorn

    app = server.server.streamable_http_app(host=host)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    http = uvicorn.Server(config)
    async with anyio.create_task_group() as group:
        group.start_soon(http.serve)
        while not http.started:
            if http.should_exit:
                raise OSError(f"cannot serve MCP on {host}:{port}")
            await anyio.sleep(0.01)
        bound = port or _bound_port(http)
        if on_ready is not None:
            on_ready(f"http://{host}:{bound}/mcp")
        try:
            await anyio.sleep_forever()
        finally:
            http.should_exit = True


def _bound_port(http: Any) -> int:
    for server in http.servers:
        for sock in server.sockets:
            return int(sock.getsockname()[1])
    raise OSError("the MCP HTTP server has no socket")


async def serve_room(
    url: str,
    room: str,
    *,
    name: str,
    token: str | None = None,
    documents: Sequence[str] = (),
    schema: Any = None,
    http: bool = False,
    host: str = "127.0.0.1",
    port: int = 8000,
    connect_timeout: float = 10.0,
    on_joined: Callable[[RoomMcpServer], Any] | None = None,
    on_ready: Callable[[str], Any] | None = None,
) -> None:
    """Join `room` at `url` as an agent named `name` and serve it over MCP.

    `documents` are opened before serving (they are listed as resources and watched
    for changes from the start). Returns when a stdio client leaves.

    Raises:
        ClientError: the room cannot be reached, or refused the token (at once, or later).
    """
    async with RoomClient(
        url, room, name=name, kind="agent", token=token, connect_timeout=connect_timeout
    ) as client:
        server = RoomMcpServer(client, name=name, schema=schema)
        for path in documents:
            await server.open_document(path)
        if on_joined is not None:
            on_joined(server)
        async with anyio.create_task_group() as group:
            await group.start(server.watch)
            if http:
                await serve_http(server, host=host, port=port, on_ready=on_ready)
            else:
                await serve_stdio(server)
            group.cancel_scope.cancel()
