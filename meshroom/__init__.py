"""meshroom: rooms where people and agents share Yjs documents over y-websocket."""

from __future__ import annotations

from ._exceptions import AuthenticationError as AuthenticationError
from ._exceptions import ClientError as ClientError
from ._exceptions import MeshroomError as MeshroomError
from ._exceptions import ProtocolError as ProtocolError
from ._exceptions import RoomNameError as RoomNameError
from ._exceptions import StorageError as StorageError
from .client._backoff import Backoff as Backoff
from .client._client import ClientState as ClientState
from .client._client import RoomClient as RoomClient
from .client._link import RemoteOrigin as RemoteOrigin
from .protocol._close_codes import CloseCode as CloseCode
from .server._connection import Connection as Connection
from .server._connection import ConnectionClosed as ConnectionClosed
from .server._connection import MemoryConnection as MemoryConnection
from .server._connection import PushConnection as PushConnection
from .server._connection import connection_pair as connection_pair
from .server._hooks import Access as Access
from .server._hooks import AuthenticatePayload as AuthenticatePayload
from .server._hooks import ChangePayload as ChangePayload
from .server._hooks import ConnectionPayload as ConnectionPayload
from .server._hooks import Extension as Extension
from .server._hooks import LoadDocumentPayload as LoadDocumentPayload
from .server._hooks import StoreDocumentPayload as StoreDocumentPayload
from .server._limits import Limits as Limits
from .server._room import Room as Room
from .server._server import Server as Server
from .transport._asgi import WebSocketConnection as WebSocketConnection
from .transport._asgi import create_app as create_app
from .transport._uvicorn import uvicorn_websocket as uvicorn_websocket

__all__ = [
    "Access",
    "AuthenticatePayload",
    "AuthenticationError",
    "Backoff",
    "ChangePayload",
    "ClientError",
    "ClientState",
    "CloseCode",
    "Connection",
    "ConnectionClosed",
    "ConnectionPayload",
    "Extension",
    "Limits",
    "LoadDocumentPayload",
    "MemoryConnection",
    "MeshroomError",
    "ProtocolError",
    "PushConnection",
    "RemoteOrigin",
    "Room",
    "RoomClient",
    "RoomNameError",
    "Server",
    "StorageError",
    "StoreDocumentPayload",
    "WebSocketConnection",
    "connection_pair",
    "create_app",
    "uvicorn_websocket",
]
