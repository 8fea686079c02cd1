"""The Hocuspocus provider protocol as bytes, and its translation to y-websocket messages.

`@hocuspocus/provider` multiplexes documents over one WebSocket: every frame starts with
the document's name (a lib0 var-string; with the provider's ``sessionAwareness`` option it
is ``documentName\\0sessionId``), then a var-uint type and a body (read from the
provider's and `@hocuspocus/server`'s sources, v4)::

    0 SYNC              the y-protocols sync message (step 1, step 2, update), as y-websocket
    1 AWARENESS         var-bytes awareness update, as y-websocket
    2 AUTH              var-uint sub-type: 0 TOKEN (client: var-string token, then
                        optionally the provider's version), 1 PERMISSION_DENIED (server:
                        var-string reason), 2 AUTHENTICATED (server: var-string scope,
                        "read-write" or "readonly")
    3 QUERY_AWARENESS   no body, as y-websocket
    4 SYNC_REPLY        a client's sync message that asks for no step 1 back
    5 STATELESS         var-string payload (any string)
    6 BROADCAST_STATELESS  server-side only; a client sending it is refused
    7 CLOSE             client: "detach this document"; server: var-string reason
    8 SYNC_STATUS       server: var-int 1 (the update was applied) or 0 (refused)

and two frames without a document name: ``[9]`` PING (from a server) and ``[10]`` PONG.

Most bodies are y-websocket's byte for byte, so the server speaks y-websocket to its
sessions and this module only moves the name and the AUTH sub-types: `to_session` turns a
client frame's message into what a y-websocket session reads, `from_session` the reverse.
Types 5 (room calls) and 8 keep their numbers on both sides. Pure functions, no I/O.

```py
from meshroom.protocol._hocuspocus import decode_frame, encode_frame, from_session

frame = encode_frame("team/notes", b"\\x00\\x00\\x01\\x00")     # sync step 1
assert decode_frame(frame) == ("team/notes", 0, b"\\x00\\x01\\x00")
assert from_session("team", b"\\x02\\x00\\x02no") == encode_frame("team", b"\\x02\\x01\\x02no")
```
"""

from __future__ import annotations

import enum

from .._exceptions import ProtocolError
from ._messages import MessageType, _Reader, write_var_string, write_var_uint

__all__ = [
    "PING",
    "PONG",
    "HocuspocusType",
    "decode_frame",
    "document_name",
    "encode_close",
    "encode_frame",
    "encode_permission_denied",
    "encode_stateless",
    "encode_sync_status",
    "from_session",
    "to_session",
]


class HocuspocusType(enum.IntEnum):
    """The var-uint after the document name of a Hocuspocus frame."""

    SYNC = 0
    AWARENESS = 1
    AUTH = 2
    QUERY_AWARENESS = 3
    SYNC_REPLY = 4
    STATELESS = 5
    BROADCAST_STATELESS = 6
    CLOSE = 7
    SYNC_STATUS = 8


#: Frames without a document name: a keep-alive and its answer.
PING = b"\x09"
PONG = b"\x0a"
_TOKEN = 0
_PERMISSION_DENIED = 1
_AUTHENTICATED = 2
#: The y-websocket AUTH sub-types the session sends (see `_messages`).
_WS_PERMISSION_DENIED = 0
_WS_AUTHENTICATED = 2
#: Longest document name read from a frame: a room, "/" and a path, with room to spare.
MAX_NAME_BYTES = 4096


def encode_frame(name: str, message: bytes) -> bytes:
    """A Hocuspocus frame: `name`, then `message` (its type var-uint and body)."""
    return write_var_string(name) + message


def decode_frame(data: bytes) -> tuple[str, int, bytes]:
    """(document name, type, body) of a client frame.

    Raises:
        ProtocolError: no readable name or type (truncated, not UTF-8, too long a name).
    """
    reader = _Reader(bytes(data))
    length = reader.var_uint()
    if length > MAX_NAME_BYTES:
        raise ProtocolError(f"a document name of {length} bytes (at most {MAX_NAME_BYTES})")
    reader.pos = 0
    name = reader.var_string()
    kind = reader.var_uint()
    return name, kind, reader.rest()


def document_name(key: str) -> str:
    """The document name of a routing key (``documentName\\0sessionId`` or a plain name)."""
    return key.partition("\0")[0]


def to_session(kind: int, body: bytes) -> bytes | None:
    """The y-websocket message a session reads for a client frame's type and body.

    Sync (and sync reply), awareness, query-awareness and stateless keep their layout;
    an AUTH token becomes a y-websocket AUTH message (type 2, var-string token). None for
    types the session has no use for (a client's SYNC_STATUS, unknown types), which are
    ignored as y-websocket ignores unknown types. CLOSE and BROADCAST_STATELESS are the
    caller's (they end the document or are refused) and never reach here.

    Raises:
        ProtocolError: an AUTH message that is not a token.
    """
    if kind in (HocuspocusType.SYNC, HocuspocusType.SYNC_REPLY):
        return bytes((MessageType.SYNC,)) + body
    if kind in (
        HocuspocusType.AWARENESS,
        HocuspocusType.QUERY_AWARENESS,
        HocuspocusType.STATELESS,
    ):
        return write_var_uint(kind) + body
    if kind == HocuspocusType.AUTH:
        return bytes((MessageType.AUTH,)) + write_var_string(read_token(body))
    return None


def read_token(body: bytes) -> str:
    """The token of a client AUTH body (sub-type 0, token, then the provider's version).

    Raises:
        ProtocolError: another sub-type, or a truncated token.
    """
    reader = _Reader(body)
    sub_type = reader.var_uint()
    if sub_type != _TOKEN:
        raise ProtocolError(f"a client's auth message must carry a token (sub-type {sub_type})")
    return reader.var_string()


def from_session(key: str, message: bytes) -> bytes:
    """The Hocuspocus frame for what a session sends, addressed to routing key `key`.

    Everything keeps its layout except AUTH: y-websocket's permission denied (sub-type 0)
    is Hocuspocus's sub-type 1; the authenticated message (sub-type 2, the scope, then
    meshroom's identity JSON, which the provider does not read) keeps its bytes.
    """
    if message[:2] == bytes((MessageType.AUTH, _WS_PERMISSION_DENIED)):
        message = bytes((MessageType.AUTH, _PERMISSION_DENIED)) + message[2:]
    return encode_frame(key, message)


def encode_permission_denied(key: str, reason: str) -> bytes:
    """AUTH PERMISSION_DENIED for `key`: the provider emits ``authenticationFailed``."""
    return encode_frame(
        key, bytes((HocuspocusType.AUTH, _PERMISSION_DENIED)) + write_var_string(reason)
    )


def encode_close(key: str, reason: str) -> bytes:
    """CLOSE for `key`: the server ended this document (the socket stays open)."""
    return encode_frame(key, bytes((HocuspocusType.CLOSE,)) + write_var_string(reason))


def encode_stateless(payload: str) -> bytes:
    """A STATELESS message body with its type (a session's room call has this layout)."""
    return bytes((HocuspocusType.STATELESS,)) + write_var_string(payload)


def encode_sync_status(applied: bool) -> bytes:
    """SYNC_STATUS as a session message (type 8, var-int 1 or 0; the same byte as var-uint)."""
    return bytes((HocuspocusType.SYNC_STATUS, 1 if applied else 0))
