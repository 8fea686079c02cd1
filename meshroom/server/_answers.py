"""`AnswerStreams`: answers that appear in the room while they are written.

An agent streams its answer with room calls (docs/room-document.md)::

    -> {"type": "stream", "id": MESSAGE_ID, "text": TEXT_SO_FAR, "to": ID?, "thread": T?}
    -> {"type": "stream", "id": MESSAGE_ID, "text": WHOLE_TEXT, "done": true, ...}

Until it is done the answer is an entry of the room document's `streams` map under its
message id (``{from, to, thread, text, time}``), replaced as it grows, so any Yjs
client shows it growing; when done it becomes an ordinary room message with that id
and the entry goes. A stream whose writer leaves first is posted as it stands: what
was written is never lost. The sender is the connection's participant, never a field.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._presence import MAX_MESSAGE_ID, MAX_MESSAGE_TEXT, _now_ms

if TYPE_CHECKING:
    from ._peer import CallPeer
    from ._presence import Presence

__all__ = ["AnswerStreams"]

STREAMS = "streams"
#: Answers one participant may be writing at once.
MAX_OPEN_STREAMS = 8


class AnswerStreams:
    """The answers being written in one room (see the module docstring)."""

    def __init__(self, presence: Presence) -> None:
        self._presence = presence
        #: Message id -> (writer, entry) of each open stream.
        self._open: dict[str, tuple[CallPeer, dict[str, Any]]] = {}

    def handle(self, peer: CallPeer, call: dict[str, Any], size: int) -> None:
        problem = self._check(peer, call)
        if problem is not None:
            peer.send_room_call({"type": "error", "error": problem, "request": call.get("id")})
            return
        message_id = call["id"]
        entry = {
            "from": peer.access.participant_id,
            "to": call.get("to"),
            "thread": call.get("thread"),
            "text": call["text"],
            "time": self._open[message_id][1]["time"] if message_id in self._open else _now_ms(),
        }
        if call.get("done"):
            self._open.pop(message_id, None)
            self._post(entry, message_id)
            return
        self._open[message_id] = (peer, entry)
        self._presence.set_entry(STREAMS, message_id, entry)

    def _check(self, peer: CallPeer, call: dict[str, Any]) -> str | None:
        if not peer.access.may_message:
            return "your grants do not allow posting messages"
        message_id, text = call.get("id"), call.get("text")
        if not isinstance(message_id, str) or not 0 < len(message_id) <= MAX_MESSAGE_ID:
            return f"a stream needs an 'id' of 1 to {MAX_MESSAGE_ID} characters"
        if not isinstance(text, str) or len(text) > MAX_MESSAGE_TEXT:
            return f"a stream's 'text' is a string of at most {MAX_MESSAGE_TEXT} characters"
        for key in ("to", "thread"):
            value = call.get(key)
            if value is not None and (not isinstance(value, str) or not value):
                return f"'{key}' must be a non-empty string or null"
        opened = self._open.get(message_id)
        if opened is not None and opened[0] is not peer:
            return f"stream {message_id!r} is someone else's"
        mine = sum(1 for writer, _ in self._open.values() if writer is peer)
        if opened is None and mine >= MAX_OPEN_STREAMS and not call.get("done"):
            return f"at most {MAX_OPEN_STREAMS} answers at once"
        return None

    def _post(self, entry: dict[str, Any], message_id: str) -> None:
        self._presence.remove_entry(STREAMS, message_id)
        if entry["text"]:
            self._presence.append(
                entry["from"], text=entry["text"], to=entry["to"], thread=entry["thread"],
                id=message_id,
            )  # fmt: skip

    def peer_left(self, peer: CallPeer) -> None:
        """Post what `peer` was still writing, as it stands."""
        for message_id, (writer, entry) in list(self._open.items()):
            if writer is peer:
                del self._open[message_id]
                self._post(entry, message_id)
