"""The room document: participants and room messages, as shared types any Yjs client reads.

Layout of the room document (path ``""``, never stored)::

    participants: Map   participant id -> {"name", "kind", "joinedAt", "attributes"}
    messages:     Array [{"from", "to", "text" | "json", "time"}, ...]   (bounded)

The server owns `participants`: a participant appears with their first
connection to any document of the room and disappears with their last. Clients
may only append messages, signed with their own participant id. A client update
is first checked on a scratch copy of the document: one that deletes messages or
adds other shared types is refused and never touches the live document. One that
writes participants or appends messages it may not (a forgery, or the stale room
document a client kept across a server restart) is applied and repaired in the
same transaction, so nobody ever sees the forged state and the client's later
updates, which build on it, still apply.

```js
// In a browser, with the unmodified y-websocket provider:
const provider = new WebsocketProvider("ws://127.0.0.1:8765", "my room", roomDoc)
roomDoc.getMap("participants").toJSON()   // {"alice": {name: "Alice", kind: "person", ...}}
roomDoc.getArray("messages").push([{from: "alice", to: null, text: "hi", time: Date.now()}])
```
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pycrdt import Array, Doc, Map

from ._hooks import Access

__all__ = ["Presence", "check_message"]

#: Transaction origin of the server's own edits to the room document.
SERVER_ORIGIN = "meshroom-server"
_MESSAGE_KEYS = {"from", "to", "text", "json", "time"}
#: Longest message text accepted, in characters (room messages are chat, not documents).
MAX_MESSAGE_TEXT = 64 * 1024


def _now_ms() -> int:
    return int(time.time() * 1000)


def check_message(message: Any, *, sender: str | None = None) -> str | None:
    """Return why `message` is not a well-formed room message, or None if it is."""
    if not isinstance(message, dict):
        return "a room message must be an object"
    extra = set(message) - _MESSAGE_KEYS
    if extra:
        return f"unknown room message fields: {sorted(extra)}"
    if not isinstance(message.get("from"), str):
        return "a room message needs 'from' (the sender's participant id)"
    if sender is not None and message["from"] != sender:
        return f"a room message from {sender!r} may not claim to be from {message['from']!r}"
    if message.get("to") is not None and not isinstance(message["to"], str):
        return "'to' must be a participant id or null (everyone)"
    has_text = message.get("text") is not None
    has_json = message.get("json") is not None
    if has_text == has_json:
        return "a room message carries exactly one of 'text' or 'json'"
    if has_text and not isinstance(message["text"], str):
        return "'text' must be a string"
    if has_text and len(message["text"]) > MAX_MESSAGE_TEXT:
        return f"'text' is longer than {MAX_MESSAGE_TEXT} characters"
    if not isinstance(message.get("time"), (int, float)) or isinstance(message["time"], bool):
        return "'time' must be a number (milliseconds since the epoch)"
    return None


def _added(old: list[Any], new: list[Any]) -> list[tuple[int, Any]] | None:
    """Items of `new` not in `old`, with their index; None if `old` is not kept in order."""
    added = []
    position = 0
    for index, item in enumerate(new):
        if position < len(old) and item == old[position]:
            position += 1
        else:
            added.append((index, item))
    return added if position == len(old) else None


class Presence:
    """Maintains `participants` and `messages` in a room document."""

    def __init__(self, doc: Doc, *, max_messages: int) -> None:
        self.doc = doc
        self.max_messages = max_messages
        self.participants = doc.get("participants", type=Map)
        self.messages = doc.get("messages", type=Array)
        self._connections: dict[str, int] = {}
        #: The authoritative participant entries (what `participants` must hold).
        self._entries: dict[str, dict[str, Any]] = {}

    def join(self, access: Access) -> None:
        """Count one more connection of this participant; publish them on the first."""
        count = self._connections.get(access.participant_id, 0)
        self._connections[access.participant_id] = count + 1
        if count == 0:
            entry = {
                "name": access.name or access.participant_id,
                "kind": access.kind,
                "joinedAt": _now_ms(),
                "attributes": dict(access.attributes),
            }
            self._entries[access.participant_id] = entry
            with self.doc.transaction(origin=SERVER_ORIGIN):
                self.participants[access.participant_id] = entry

    def leave(self, access: Access) -> None:
        """Count one connection less; remove the participant with their last one."""
        count = self._connections.get(access.participant_id, 0) - 1
        if count > 0:
            self._connections[access.participant_id] = count
            return
        self._connections.pop(access.participant_id, None)
        self._entries.pop(access.participant_id, None)
        with self.doc.transaction(origin=SERVER_ORIGIN):
            if access.participant_id in self.participants:
                del self.participants[access.participant_id]

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Participants as plain data."""
        return self.participants.to_py() or {}

    def append(
        self,
        from_: str,
        *,
        text: str | None = None,
        json: Any = None,
        to: str | None = None,
    ) -> dict[str, Any]:
        """Append a room message from the server side and trim to the bound.

        Raises:
            ValueError: the message is not well-formed (both or neither of text/json…).
        """
        message: dict[str, Any] = {"from": from_, "to": to, "time": _now_ms()}
        if text is not None:
            message["text"] = text
        if json is not None:
            message["json"] = json
        problem = check_message(message)
        if problem is not None:
            raise ValueError(problem)
        with self.doc.transaction(origin=SERVER_ORIGIN):
            self.messages.append(message)
        self.trim()
        return message

    def trim(self) -> None:
        """Drop the oldest messages beyond `max_messages`."""
        extra = len(self.messages) - self.max_messages
        if extra > 0:
            with self.doc.transaction(origin=SERVER_ORIGIN):
                del self.messages[0:extra]

    def check_client_update(self, update: bytes, sender: str) -> str | None:
        """Return what is wrong with a client's update to the room document, or None."""
        return self.classify_client_update(update, sender)[0]

    def classify_client_update(self, update: bytes, sender: str) -> tuple[str | None, bool]:
        """Check a client's update on a scratch copy: ``(problem, repairable)``.

        ``(None, False)``: apply as is. ``(problem, True)``: apply with
        `apply_repaired` (participants written, messages not signed by `sender`).
        ``(problem, False)``: refuse (not a Yjs update, another shared type,
        messages deleted or changed). The live document is untouched either way.
        """
        scratch = Doc()
        scratch.apply_update(self.doc.get_update())
        participants = scratch.get("participants", type=Map)
        messages = scratch.get("messages", type=Array)
        before_participants = participants.to_py() or {}
        before_messages = messages.to_py() or []
        before_roots = set(scratch.keys())
        try:
            scratch.apply_update(update)
        except ValueError as error:
            return f"not a Yjs update: {error}", False
        if set(scratch.keys()) != before_roots:
            return "the room document only has 'participants' and 'messages'", False
        after_messages = messages.to_py() or []
        added = _added(before_messages, after_messages)
        if added is None:
            return "room messages can only be appended", False
        if (participants.to_py() or {}) != before_participants:
            return "participants are maintained by the server", True
        for _, message in added:
            problem = check_message(message, sender=sender)
            if problem is not None:
                return problem, True
        return None, False

    def apply_repaired(self, apply: Callable[[], None], sender: str) -> None:
        """Run `apply` (which applies a client update) and undo its forgeries, in one transaction.

        Others receive one update whose net effect is only the valid part.
        """
        before = self.messages.to_py() or []
        with self.doc.transaction():
            apply()
            current = self.participants.to_py() or {}
            for key in current:
                if key not in self._entries:
                    del self.participants[key]
            for key, entry in self._entries.items():
                if current.get(key) != entry:
                    self.participants[key] = entry
            added = _added(before, self.messages.to_py() or []) or []
            for index, message in reversed(added):
                if check_message(message, sender=sender) is not None:
                    del self.messages[index]
