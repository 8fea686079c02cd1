"""The server core: rooms, sessions, live documents, presence, and the extension hooks.

Transport-agnostic and free of its adapters: it never imports Starlette, uvicorn, fsspec,
Redis or openai. A transport (`meshroom.transport`, or your own) hands it `Connection`s
through `Server.serve`; storage, auth and the cluster plug in as `Extension`s.
"""

from __future__ import annotations

from ._connection import (
    Connection,
    ConnectionClosed,
    MemoryConnection,
    PushConnection,
    connection_pair,
)
from ._hooks import (
    Access,
    AuthenticatePayload,
    ChangePayload,
    ConnectionPayload,
    DeleteDocumentPayload,
    DocumentInfo,
    Extension,
    ListDocumentsPayload,
    LoadDocumentPayload,
    LoadThreadPayload,
    StoreDocumentPayload,
)
from ._limits import Limits
from ._room import Room
from ._server import Server

__all__ = [
    "Access",
    "AuthenticatePayload",
    "ChangePayload",
    "Connection",
    "ConnectionClosed",
    "ConnectionPayload",
    "DeleteDocumentPayload",
    "DocumentInfo",
    "Extension",
    "Limits",
    "ListDocumentsPayload",
    "LoadDocumentPayload",
    "LoadThreadPayload",
    "MemoryConnection",
    "PushConnection",
    "Room",
    "Server",
    "StoreDocumentPayload",
    "connection_pair",
]
