"""Presence and messages as a peer writes them: room messages, the ones waiting, awareness.

Apart from the client because it changes with the shape of the room document and of
awareness states (which browsers read too), not with the sockets: what a message holds
and how its content is checked, which messages wait while the room's socket is down
(the room document restarts from the server's copy on every reconnection, so they are
appended after the next handshake), and what awareness fields may hold.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from pycrdt import Array, Awareness, Doc

from ._link import DocumentLink

__all__ = ["MessageOutbox", "check_awareness_fields", "merge_awareness", "room_message"]


def room_message(
    sender: str, content: str | Any, to: str | None, thread: str | None = None
) -> dict[str, Any]:
    """A room message from `sender`: {from, to, text or json, time, id, thread?}.

    Raises:
        ValueError: `to` or `thread` is empty, or `content` is not JSON-serialisable.
    """
    if to is not None and (not isinstance(to, str) or not to):
        raise ValueError(f"'to' must be a participant id or None, got {to!r}")
    if thread is not None and (not isinstance(thread, str) or not 0 < len(thread) <= 128):
        raise ValueError(f"'thread' must be a string of 1 to 128 characters, got {thread!r}")
    message: dict[str, Any] = {"from": sender, "to": to, "id": uuid.uuid4().hex[:16]}
    if thread is not None:
        message["thread"] = thread
    if isinstance(content, str):
        message["text"] = content
    else:
        try:
            json.dumps(content, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise ValueError(f"message content is not JSON: {error}") from None
        message["json"] = content
    message["time"] = int(time.time() * 1000)
    return message


class MessageOutbox:
    """Room messages waiting for the room's socket to sync."""

    def __init__(self) -> None:
        self._pending: list[dict[str, Any]] = []

    def post(self, room: DocumentLink | None, message: dict[str, Any]) -> None:
        """Append `message` to the room's messages now if `room` is synced, else after it is."""
        if room is not None and room.connected:
            room.doc.get("messages", type=Array).append(message)
        else:
            self._pending.append(message)

    def flush(self, doc: Doc) -> None:
        """Append the waiting messages to the room document `doc`, in one transaction."""
        pending, self._pending = self._pending, []
        if pending:
            messages = doc.get("messages", type=Array)
            with doc.transaction():
                for message in pending:
                    messages.append(message)


def check_awareness_fields(fields: dict[str, Any]) -> None:
    """Check that `fields` is a dict of JSON values.

    Raises:
        ValueError: it is not.
    """
    if not isinstance(fields, dict):
        raise ValueError(f"awareness fields must be a dict, got {type(fields).__name__}")
    try:
        json.dumps(fields, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"awareness fields are not JSON: {error}") from None


def merge_awareness(awareness: Awareness, fields: dict[str, Any]) -> None:
    """Merge `fields` into our state in `awareness`, keeping the fields not named."""
    state = dict(awareness.get_local_state() or {})
    state.update(fields)
    awareness.set_local_state(state)
