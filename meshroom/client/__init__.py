"""The Python peer: `RoomClient` joins a room over the same protocol a browser tab speaks.

One socket per document, reconnecting with `Backoff` and resyncing by state vector; it
imports the protocol, never the server.
"""

from __future__ import annotations

from .._retry import Backoff
from ._calls import Offerable, RoomCallError, ToolCalls
from ._client import ClientState, RoomClient
from ._link import RemoteOrigin
from ._queues import QueueItem, WorkQueues

__all__ = [
    "Backoff",
    "ClientState",
    "Offerable",
    "QueueItem",
    "RemoteOrigin",
    "RoomCallError",
    "RoomClient",
    "ToolCalls",
    "WorkQueues",
]
