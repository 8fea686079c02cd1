"""The ASGI face of the server: a Starlette app with the y-websocket route and `/healthz`.

```py
from starlette.applications import Starlette
from starlette.routing import Mount
from meshroom import Server, create_app

server = Server()
app = Starlette(routes=[Mount("/collab", app=create_app(server))], lifespan=server.lifespan)
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
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from ..server._connection import ConnectionClosed

if TYPE_CHECKING:
    from ..server._server import Server

__all__ = ["WebSocketConnection", "create_app"]


class WebSocketConnection:
    """A Starlette `WebSocket` as a meshroom `Connection`.

    Given the raw ASGI `send` and `receive` of its scope, messages skip
    Starlette's per-message state checks: they run once per delivered message,
    the server's hottest path. Accepting and closing still go through
    `websocket`.
    """

    __slots__ = ("_closed", "_receive", "_send", "websocket")

    def __init__(
        self,
        websocket: WebSocket,
        *,
        send: Send | None = None,
        receive: Receive | None = None,
    ) -> None:
        self.websocket = websocket
        self._send = send
        self._receive = receive
        self._closed: tuple[int, str] | None = None

    async def send(self, message: bytes) -> None:
        if self._closed is not None:
            raise ConnectionClosed(*self._closed)
        try:
            if self._send is not None:
                await self._send({"type": "websocket.send", "bytes": message})
            else:
                await self.websocket.send_bytes(message)
        except (WebSocketDisconnect, RuntimeError, OSError) as error:
            code = getattr(error, "code", 1006)
            self._closed = (code, "")
            raise ConnectionClosed(code, "") from None

    async def recv(self) -> bytes:
        if self._closed is not None:
            raise ConnectionClosed(*self._closed)
        if self._receive is not None:
            message = await self._receive()
        else:
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


class _RawEndpoint:
    """Wraps an ASGI function so Starlette's route passes it the raw scope (not a WebSocket)."""

    __slots__ = ("_app",)

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


def create_app(server: Server, *, extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    """A Starlette app for `server`; its lifespan starts and stops the server.

    Args:
        extra_routes: more routes or mounts (a static folder…), matched after
            `/healthz` and the websocket route.
    """

    # With auth on, an anonymous prober learns that the server is up and nothing more
    # (not how many rooms it has); an open server lets anyone into every room anyway.
    open_server = not any(extension.requires_token for extension in server.extensions)

    async def healthz(request: Request) -> JSONResponse:
        if not open_server:
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "ok", "rooms": len(server.room_names())})

    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        # A raw ASGI endpoint (not a Starlette websocket function): the connection
        # gets the plain `send` and `receive` for its messages.
        websocket = WebSocket(scope, receive=receive, send=send)
        await websocket.accept()
        client = websocket.client
        await server.serve(
            WebSocketConnection(websocket, send=send, receive=receive),
            _raw_target(websocket),
            query=dict(websocket.query_params),
            headers=dict(websocket.headers),
            client=f"{client.host}:{client.port}" if client else None,
        )

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            WebSocketRoute("/{target:path}", _RawEndpoint(endpoint)),
            *extra_routes,
        ],
        lifespan=server.lifespan,
    )
