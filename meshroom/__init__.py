"""meshroom: rooms where people and agents share Yjs documents over y-websocket.

What most programs need is here: a `Server` (with `Limits` and `Extension`s), `create_app`
to serve it from any ASGI server, and `RoomClient` to join a room from Python. The parts
live in subpackages, each importing only those below it (see docs/architecture.md):
`protocol`, `server`, `transport`, `client`, `storage`, `auth`, `cluster`, `agents`,
`testing`, `cli`.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from ._exceptions import (
    AuthenticationError,
    ClientError,
    MeshroomError,
    ProtocolError,
    RoomNameError,
    StorageError,
)
from .client import ClientState, RoomClient
from .protocol import CloseCode
from .server import (
    Access,
    AuthenticatePayload,
    ChangePayload,
    ConnectionPayload,
    Extension,
    Limits,
    LoadDocumentPayload,
    Room,
    Server,
    StoreDocumentPayload,
)

if TYPE_CHECKING:
    from .transport import create_app

__all__ = [
    "Access",
    "AuthenticatePayload",
    "AuthenticationError",
    "ChangePayload",
    "ClientError",
    "ClientState",
    "CloseCode",
    "ConnectionPayload",
    "Extension",
    "Limits",
    "LoadDocumentPayload",
    "MeshroomError",
    "ProtocolError",
    "Room",
    "RoomClient",
    "RoomNameError",
    "Server",
    "StorageError",
    "StoreDocumentPayload",
    "create_app",
]

#: Names that moved to the subpackage that owns them; still importable from `meshroom`, with a
#: DeprecationWarning, until the next release.
_MOVED = {
    "Backoff": "meshroom.client",
    "RemoteOrigin": "meshroom.client",
    "Connection": "meshroom.server",
    "ConnectionClosed": "meshroom.server",
    "MemoryConnection": "meshroom.server",
    "PushConnection": "meshroom.server",
    "connection_pair": "meshroom.server",
    "WebSocketConnection": "meshroom.transport",
    "uvicorn_websocket": "meshroom.transport",
}


def __getattr__(name: str) -> Any:
    if name == "create_app":  # loaded on use: the server core runs without Starlette
        from .transport import create_app

        return create_app
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module 'meshroom' has no attribute {name!r}")
    warnings.warn(
        f"meshroom.{name} moved to {module}.{name}; the old name goes in the next release",
        DeprecationWarning,
        stacklevel=2,
    )
    import importlib

    return getattr(importlib.import_module(module), name)
