"""The y-websocket wire protocol: pure encode/decode functions, no I/O.

Every WebSocket frame carries one message: a var-uint message type, then a
type-specific body (the layout of `y-protocols` and the Node `y-websocket`
server)::

    0 SYNC             var-uint step (0 step 1, 1 step 2, 2 update) + var-bytes payload
    1 AWARENESS        var-bytes awareness update
    2 AUTH             client -> server: var-string token
                       server -> client: var-uint 0 (permission denied) + var-string reason
    3 QUERY_AWARENESS  no body; the answer is an AWARENESS message with every state
    5 ROOM_CALL        var-string JSON object: offering tools, calling them (see `_calls`)

Decoding never trusts its input: a truncated var-uint, a length that runs past
the end or a sync step that does not exist raise `ProtocolError`; an unknown
message type decodes to `UnknownMessage` so the caller can ignore it, as
standard clients do. Merging runs of queued update messages into one is in `_merge`;
room calls' JSON bodies are read in `_calls`. Longer than 400 lines: every y-websocket
message and the one untrusted-bytes reader they share, in one place.

```py
from meshroom.protocol._messages import SyncMessage, SyncStep, decode_message, encode_update

message = decode_message(encode_update(b"\\x00\\x00"))
assert message == SyncMessage(SyncStep.UPDATE, b"\\x00\\x00")
```
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from meshdoc.updates import VarIntTooLong, read_var_uint, write_var_uint

from .._exceptions import ProtocolError

__all__ = [
    "UPDATE_PREFIX",
    "AuthMessage",
    "AwarenessEntry",
    "AwarenessMessage",
    "Message",
    "MessageType",
    "QueryAwarenessMessage",
    "RoomCallMessage",
    "SyncMessage",
    "SyncStep",
    "UnknownMessage",
    "decode_auth_token",
    "decode_authenticated",
    "decode_awareness_update",
    "decode_message",
    "decode_permission_denied",
    "encode_auth_token",
    "encode_authenticated",
    "encode_awareness",
    "encode_awareness_update",
    "encode_permission_denied",
    "encode_query_awareness",
    "encode_sync_step1",
    "encode_sync_step2",
    "encode_update",
    "update_payload",
    "write_var_bytes",
    "write_var_string",
    "write_var_uint",
]

#: JavaScript numbers are exact up to 2**53; lib0 var-uints never exceed that.
#: The empty Yjs update (no structs, empty delete set): what an idle peer sends.
EMPTY_UPDATE = b"\x00\x00"
_PERMISSION_DENIED = 0
_AUTHENTICATED = 2
#: Deepest nesting of objects and arrays in a JSON value read from the wire (an awareness
#: state, an identity). Python's `json` recurses once per level against the interpreter's
#: limit (1000 frames, shared with whoever decodes and later re-encodes the value), so a
#: state accepted near that depth could fail to encode for every later joiner. 128 is what
#: yrs's JSON parser allows for JSON inside updates, and far more than a cursor needs.
MAX_JSON_DEPTH = 128
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_BRACKET_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class MessageType(enum.IntEnum):
    """The first var-uint of every y-websocket message."""

    SYNC = 0
    AWARENESS = 1
    AUTH = 2
    QUERY_AWARENESS = 3
    #: Room calls (toolkits offered, tool calls, work queues): a JSON object as a
    #: var-string, the layout of Hocuspocus's stateless message. Not y-websocket's:
    #: its provider logs and ignores it.
    ROOM_CALL = 5


class SyncStep(enum.IntEnum):
    """The second var-uint of a SYNC message."""

    STEP1 = 0  #: payload: the sender's state vector; answer with STEP2
    STEP2 = 1  #: payload: an update with everything the other side lacks
    UPDATE = 2  #: payload: an incremental update


#: How every SYNC update message starts (the relay's most common message).
UPDATE_PREFIX = bytes((MessageType.SYNC, SyncStep.UPDATE))


@dataclass(frozen=True)
class SyncMessage:
    step: SyncStep
    payload: bytes


@dataclass(frozen=True)
class AwarenessMessage:
    update: bytes


@dataclass(frozen=True)
class AuthMessage:
    """The raw body after the AUTH type; direction decides how to read it."""

    body: bytes


@dataclass(frozen=True)
class QueryAwarenessMessage:
    pass


@dataclass(frozen=True)
class RoomCallMessage:
    """A room call; `body` is still encoded (`decode_room_call` reads it)."""

    body: bytes


@dataclass(frozen=True)
class UnknownMessage:
    """A message type this server does not know: ignored, never fatal."""

    type: int
    body: bytes


Message = (
    SyncMessage
    | AwarenessMessage
    | AuthMessage
    | QueryAwarenessMessage
    | RoomCallMessage
    | UnknownMessage
)


@dataclass(frozen=True)
class AwarenessEntry:
    """One client's awareness state in an awareness update; `state` None means removed."""

    client_id: int
    clock: int
    state: dict[str, Any] | None


# -- primitives ---------------------------------------------------------------------------------


def write_var_bytes(data: bytes) -> bytes:
    """lib0 var-uint8array: length then bytes."""
    return write_var_uint(len(data)) + data


def write_var_string(text: str) -> bytes:
    """lib0 var-string: UTF-8 length then UTF-8 bytes."""
    return write_var_bytes(text.encode("utf-8"))


class _Reader:
    """A cursor over untrusted bytes; every overrun raises `ProtocolError`."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def var_uint(self) -> int:
        try:
            number, self.pos = read_var_uint(self.data, self.pos)
        except VarIntTooLong as error:
            raise ProtocolError(str(error)) from None
        except IndexError:
            raise ProtocolError("truncated var-uint") from None
        return number

    def var_bytes(self) -> bytes:
        length = self.var_uint()
        end = self.pos + length
        if end > len(self.data):
            raise ProtocolError(
                f"length {length} runs past the end of the message "
                f"({len(self.data) - self.pos} bytes left)"
            )
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def var_string(self) -> str:
        try:
            return self.var_bytes().decode("utf-8")
        except UnicodeDecodeError as error:
            raise ProtocolError(f"string is not UTF-8: {error}") from None

    def rest(self) -> bytes:
        return self.data[self.pos :]


def _json_depth(text: str) -> int:
    """How deep objects and arrays nest in JSON `text` (brackets inside strings ignored)."""
    brackets = _JSON_NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    return max(accumulate(map(_BRACKET_STEP.__getitem__, brackets)), default=0)


def _read_json(text: str, what: str) -> Any:
    """Parse untrusted JSON no deeper than `MAX_JSON_DEPTH`.

    Raises:
        ProtocolError: not JSON, or nested deeper (checked on the text first: counting
            brackets is cheap, the exact depth only matters when there are many).
    """
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _json_depth(text) > MAX_JSON_DEPTH:
        raise ProtocolError(f"{what} nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise ProtocolError(f"{what} is not JSON") from None


# -- messages -----------------------------------------------------------------------------------


def decode_message(data: bytes) -> Message:
    """Decode one y-websocket message.

    Raises:
        ProtocolError: the bytes are truncated or the sync step is unknown.
    """
    reader = _Reader(bytes(data))
    kind = reader.var_uint()
    match kind:
        case MessageType.SYNC:
            step = reader.var_uint()
            if step not in (0, 1, 2):
                raise ProtocolError(f"unknown sync step {step}")
            return SyncMessage(SyncStep(step), reader.var_bytes())
        case MessageType.AWARENESS:
            return AwarenessMessage(reader.var_bytes())
        case MessageType.AUTH:
            return AuthMessage(reader.rest())
        case MessageType.QUERY_AWARENESS:
            return QueryAwarenessMessage()
        case MessageType.ROOM_CALL:
            return RoomCallMessage(reader.rest())
        case _:
            return UnknownMessage(kind, reader.rest())


def update_payload(data: bytes) -> bytes:
    """The Yjs update inside a SYNC update message (``data`` starts with 0, 2).

    The relay's hottest path: the same as `decode_message(data).payload` without
    building a message object.

    Raises:
        ProtocolError: the bytes are truncated.
    """
    reader = _Reader(bytes(data))
    reader.pos = 2
    return reader.var_bytes()


def _sync(step: SyncStep, payload: bytes) -> bytes:
    return bytes((MessageType.SYNC, step)) + write_var_bytes(payload)


def encode_sync_step1(state_vector: bytes) -> bytes:
    """SYNC step 1: "here is what I have" (a Yjs state vector)."""
    return _sync(SyncStep.STEP1, state_vector)


def encode_sync_step2(update: bytes) -> bytes:
    """SYNC step 2: the answer to step 1, everything the asker lacks."""
    return _sync(SyncStep.STEP2, update)


def encode_update(update: bytes) -> bytes:
    """SYNC update: one incremental Yjs update (v1 encoding)."""
    return _sync(SyncStep.UPDATE, update)


def encode_awareness(update: bytes) -> bytes:
    """AWARENESS message around an encoded awareness update."""
    return bytes((MessageType.AWARENESS,)) + write_var_bytes(update)


def encode_query_awareness() -> bytes:
    """QUERY_AWARENESS: ask the other side for every awareness state it knows."""
    return bytes((MessageType.QUERY_AWARENESS,))


def encode_auth_token(token: str) -> bytes:
    """AUTH from a client: the token, for clients that cannot put it in the URL."""
    return bytes((MessageType.AUTH,)) + write_var_string(token)


def decode_auth_token(body: bytes) -> str:
    """Read the token of a client AUTH message body (see `AuthMessage`)."""
    return _Reader(body).var_string()


def encode_permission_denied(reason: str) -> bytes:
    """AUTH from the server: permission denied, as `y-protocols/auth` reads it."""
    return bytes((MessageType.AUTH, _PERMISSION_DENIED)) + write_var_string(reason)


def encode_authenticated(scope: str, identity: dict[str, Any]) -> bytes:
    """AUTH from the server: admitted, with what the connection may do and who it is.

    Sub-type 2 and the scope string (``"read-write"`` or ``"readonly"``) are those of
    Hocuspocus's Authenticated message; the JSON identity after them (``id``, ``name``,
    ``kind``) tells a client its effective participant id, which a token's ``sub``
    decides. `y-protocols/auth` reads only sub-type 0 (permission denied), so an
    unmodified y-websocket client ignores this message.
    """
    return (
        bytes((MessageType.AUTH, _AUTHENTICATED))
        + write_var_string(scope)
        + write_var_string(json.dumps(identity, separators=(",", ":")))
    )


def decode_authenticated(body: bytes) -> tuple[str, dict[str, Any]]:
    """Read (scope, identity) from a server AUTH body (see `encode_authenticated`).

    Raises:
        ProtocolError: the body is not an authenticated message, or its identity is
            not a JSON object.
    """
    reader = _Reader(body)
    kind = reader.var_uint()
    if kind != _AUTHENTICATED:
        raise ProtocolError(f"not an authenticated message (auth kind {kind})")
    scope = reader.var_string()
    identity: Any = {}
    if reader.rest():
        identity = _read_json(reader.var_string(), "the identity of an authenticated message")
    if not isinstance(identity, dict):
        raise ProtocolError("the identity of an authenticated message is not an object")
    return scope, identity


def decode_permission_denied(body: bytes) -> str:
    """Read the reason of a server AUTH message body.

    Raises:
        ProtocolError: the body is not a permission-denied message.
    """
    reader = _Reader(body)
    kind = reader.var_uint()
    if kind != _PERMISSION_DENIED:
        raise ProtocolError(f"unknown auth message kind {kind}")
    return reader.var_string()


# -- awareness updates --------------------------------------------------------------------------


def decode_awareness_update(update: bytes) -> list[AwarenessEntry]:
    """Decode an awareness update (count, then client id, clock, JSON state per client).

    Raises:
        ProtocolError: truncated, a count its bytes cannot hold, or a state that is neither
            a JSON object nor ``null`` (or nests deeper than `MAX_JSON_DEPTH`).
    """
    reader = _Reader(update)
    count = reader.var_uint()
    left = len(update) - reader.pos
    if count * 3 > left:  # each entry takes 3 bytes at least: refuse absurd counts early
        raise ProtocolError(f"awareness update claims {count} entries in {left} bytes")
    entries = []
    for _ in range(count):
        client_id = reader.var_uint()
        clock = reader.var_uint()
        text = reader.var_string()
        state = _read_json(text, f"awareness state of client {client_id}") if text else None
        if state is not None and not isinstance(state, dict):
            raise ProtocolError(f"awareness state of client {client_id} is not a JSON object")
        entries.append(AwarenessEntry(client_id, clock, state))
    return entries


def encode_awareness_update(entries: Iterable[AwarenessEntry]) -> bytes:
    """Encode awareness entries the way `y-protocols/awareness` does (compact JSON)."""
    entries = list(entries)
    parts = [write_var_uint(len(entries))]
    for entry in entries:
        parts.append(write_var_uint(entry.client_id))
        parts.append(write_var_uint(entry.clock))
        parts.append(write_var_string(json.dumps(entry.state, separators=(",", ":"))))
    return b"".join(parts)
