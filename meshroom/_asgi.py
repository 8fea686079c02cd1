"""The ASGI face of the server: a Starlette app with the y-websocket route and `/healthz`.

```py
from starlette.applications import Starlette
from starlette.routing import Mount
from meshroom import Server

server = Server()
app = Starlette(routes=[Mount("/collab", app=server.app)], lifespan=server.lifespan)
```

Mounted inside another app, the parent's lifespan must run the server
(`server.lifespan`, or `async with server:` in your own), since Starlette does
not run a mounted app's lifespan.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from ._connection import ConnectionClosed

if TYPE_CHECKING:
    from ._server import Server

__all__ = ["WebSocketConnection", "create_app"]


class WebSocketConnection:
    """A Starlette `WebSocket` as a meshroom `Connection`."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self._closed: tuple[int, str] | None = None

    async def send(self, message: bytes) -> None:
        if self._closed is not None:
            raise ConnectionClosed(*self._closed)
        try:
            await self.websocket.send_bytes(message)
        except (WebSocketDisconnect, RuntimeError, OSError) as error:
            code = getattr(error, "code", 1006)
            self._closed = (code, "")
            raise ConnectionClosed(code, "") from None

    async def recv(self) -> bytes:
        if self._closed is not None:
            raise ConnectionClosed(*self._closed)
        message = await self.websocket.receive()
        if message["type"] == "websocket.disconnect":
            self._closed = (message.get("code", 1005), message.get("reason") or "")
            raise ConnectionClosed(*self._closed)
        data = message.get("bytes")
        if data is None:
            data = (message.get("text") or "").encode("utf-8")
        return data

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._closed is None:
            self._closed = (code, reason)
        if self.websocket.application_state != WebSocketState.DISCONNECTED:
            with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
                await self.websocket.close(code, reason[:120])


def _raw_target(websocket: WebSocket) -> str:
    """The request path below the mount point, still percent-encoded."""
    scope = websocket.scope
    raw = scope.get("raw_path")
    root = scope.get("root_path", "") or ""
    if raw:
        target = raw.decode("latin-1")
        depth = len([segment for segment in root.split("/") if segment])
        if depth:
            parts = target.split("/")
            target = "/" + "/".join(parts[1 + depth :])
        return target
    path = scope.get("path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return quote(path, safe="/")


def create_app(server: Server, *, extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    """A Starlette app for `server`; its lifespan starts and stops the server.

    Args:
        extra_routes: more routes or mounts (a static folder…), matched after
            `/healthz` and the websocket route.
    """

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "rooms": len(server.room_names())})

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        client = websocket.client
        await server.serve(
            WebSocketConnection(websocket),
            _raw_target(websocket),
            query=dict(websocket.query_params),
            headers=dict(websocket.headers),
            client=f"{client.host}:{client.port}" if client else None,
        )

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            WebSocketRoute("/{target:path}", endpoint),
            *extra_routes,
        ],
        lifespan=server.lifespan,
    )
