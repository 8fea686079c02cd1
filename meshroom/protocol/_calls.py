"""Room calls on the wire: one JSON object per message of type 5 (see docs/room-document.md).

Offering toolkits, calling tools and work queues travel as room calls on the room
document's connection. The body is a lib0 var-string holding a JSON object with a
``type``; decoding never trusts it (depth, UTF-8, object shape).

```py
from meshroom.protocol._calls import decode_room_call, encode_room_call

message = encode_room_call({"type": "withdraw", "toolkit": "ui"})
assert decode_room_call(message[1:]) == {"type": "withdraw", "toolkit": "ui"}
```
"""

from __future__ import annotations

import json
from typing import Any

from .._exceptions import ProtocolError
from ._messages import MessageType, _read_json, _Reader, write_var_string

__all__ = ["decode_room_call", "encode_room_call"]

_PREFIX = bytes((MessageType.ROOM_CALL,))


def encode_room_call(call: dict[str, Any]) -> bytes:
    """A whole room-call message (type byte included) carrying `call`.

    Raises:
        TypeError, ValueError: `call` is not JSON-serialisable.
    """
    text = json.dumps(call, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return _PREFIX + write_var_string(text)


def decode_room_call(body: bytes) -> dict[str, Any]:
    """The JSON object in a room call's body (after the type byte).

    Raises:
        ProtocolError: not a var-string, not JSON, nested too deep, or not an object
            with a string ``type``.
    """
    call = _read_json(_Reader(body).var_string(), "a room call")
    if not isinstance(call, dict) or not isinstance(call.get("type"), str):
        raise ProtocolError("a room call must be a JSON object with a string 'type'")
    return call
