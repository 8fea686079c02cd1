"""Transports: how WebSocket connections reach the server core.

`create_app(server)` is the ASGI app any ASGI server runs (a Starlette app with the
y-websocket route and ``/healthz``); `uvicorn_websocket(server)` is meshroom's own WebSocket
protocol for uvicorn, which `meshroom serve` uses.
"""

from __future__ import annotations

from ._asgi import WebSocketConnection, create_app
from ._uvicorn import RoomWebSocketProtocol, uvicorn_websocket

__all__ = ["RoomWebSocketProtocol", "WebSocketConnection", "create_app", "uvicorn_websocket"]
