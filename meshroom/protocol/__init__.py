"""The y-websocket protocol as bytes: messages, close codes, room names and document paths.

Pure functions with no I/O, shared by the server, the client and the cluster. The
Hocuspocus provider protocol sits beside these messages (`_hocuspocus`).
"""

from __future__ import annotations

from ._close_codes import CloseCode
from ._messages import (
    AuthMessage,
    AwarenessEntry,
    AwarenessMessage,
    Message,
    MessageType,
    QueryAwarenessMessage,
    SyncMessage,
    SyncStep,
    UnknownMessage,
    decode_message,
    encode_awareness,
    encode_sync_step1,
    encode_sync_step2,
    encode_update,
)
from ._names import parse_target, validate_path, validate_room

__all__ = [
    "AuthMessage",
    "AwarenessEntry",
    "AwarenessMessage",
    "CloseCode",
    "Message",
    "MessageType",
    "QueryAwarenessMessage",
    "SyncMessage",
    "SyncStep",
    "UnknownMessage",
    "decode_message",
    "encode_awareness",
    "encode_sync_step1",
    "encode_sync_step2",
    "encode_update",
    "parse_target",
    "validate_path",
    "validate_room",
]
