"""meshroom: rooms where people and agents share Yjs documents over y-websocket."""

from __future__ import annotations

from ._asgi import WebSocketConnection as WebSocketConnection
from ._asgi import create_app as create_app
from ._client import ClientState as ClientState
from ._client import RoomClient as RoomClient
from ._client_backoff import Backoff as Backoff
from ._client_link import RemoteOrigin as RemoteOrigin
from ._close_codes import CloseCode as CloseCode
from ._connection import Connection as Connection
from ._connection import ConnectionClosed as ConnectionClosed
from ._connection import MemoryConnection as MemoryConnection
from ._connection import PushConnection as PushConnection
from ._connection import connection_pair as connection_pair
from ._exceptions import AuthenticationError as AuthenticationError
from ._exceptions import ClientError as ClientError
from ._exceptions import MeshroomError as MeshroomError
from ._exceptions import ProtocolError as ProtocolError
from ._exceptions import RoomNameError as RoomNameError
from ._exceptions import StorageError as StorageError
from ._hooks import Access as Access
from ._hooks import AuthenticatePayload as AuthenticatePayload
from ._hooks import ChangePayload as ChangePayload
from ._hooks import ConnectionPayload as ConnectionPayload
from ._hooks import Extension as Extension
from ._hooks import LoadDocumentPayload as LoadDocumentPayload
from ._hooks import StoreDocumentPayload as StoreDocumentPayload
from ._limits import Limits as Limits
from ._room import Room as Room
from ._server import Server as Server
from ._uvicorn import uvicorn_websocket as uvicorn_websocket

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
