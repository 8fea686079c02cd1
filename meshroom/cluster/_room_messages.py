"""Room messages across processes: one capped stream per room, followed by one reader.

A message appended to a room's ``messages`` here (by a client, an embedded agent or
`Server.send_message`) is added to the room's stream with this process's id; every
other process serving the room appends it to its own room document as it is (its
``from`` and ``time`` kept), under `ROOM_ORIGIN`, which is never published again, so
each message reaches every process once. The stream is capped near the room's own
bound (`Limits.room_messages`). A process that opens a room replays the stream's last
messages first, before any it already holds, so a late process shows the same history.

A y-websocket client that reconnects sends its copy of the room document, its own
messages included; on a process it moves to (its own died), those are copies of
messages that came through the stream already. A message equal to one of the room's
recent ones (same sender, time and content) is therefore never published again, so a
client moving between processes does not make every process show its messages twice.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from ._stream_reads import StreamReads

if TYPE_CHECKING:
    from ..server._room import Room
    from ._room_outbox import RoomOutbox

__all__ = ["ROOM_ORIGIN", "RoomMessages"]

#: Transaction origin of the messages appended from other processes (never published).
ROOM_ORIGIN = "meshroom-cluster-room"

log = logging.getLogger("meshroom.cluster")


@dataclass(eq=False)
class _Followed:
    """One room whose messages stream this process follows."""

    room: Room
    key: str
    last_id: bytes = b"0-0"
    #: False until the history was replayed; local messages wait in `waiting` meanwhile.
    ready: bool = False
    waiting: list[dict[str, Any]] = field(default_factory=list)
    subscription: Any = None
    #: Fingerprints of the room's recent messages (published or received), oldest first.
    known: OrderedDict[str, None] = field(default_factory=OrderedDict)

    def remember(self, message: dict[str, Any]) -> bool:
        """Note `message`; False if it was known already (a copy sent again)."""
        print_ = _fingerprint(message)
        if print_ in self.known:
            return False
        self.known[print_] = None
        while len(self.known) > 2 * self.room.presence.max_messages:
            self.known.popitem(last=False)
        return True


class RoomMessages:
    """Publishes each followed room's local messages and applies the others' (see above)."""

    def __init__(self, client: Any, outbox: RoomOutbox, *, process: str, block: float) -> None:
        self._client = client
        self._outbox = outbox
        self._process = process.encode()
        self._reads = StreamReads(client, block=block, what="room messages")
        self._block = block
        self._rooms: dict[str, _Followed] = {}

    def follow(self, room: Room, key: str) -> None:
        """Publish `room`'s messages from now on (those already here too, once replayed)."""
        followed = _Followed(room, key)
        followed.waiting = [m for m in room.presence.messages.to_py() or [] if isinstance(m, dict)]
        followed.subscription = room.presence.messages.observe(
            lambda event: self._observed(followed, event)
        )
        self._rooms[key] = followed

    def unfollow(self, key: str) -> None:
        """Stop following (the room closed): its observer goes, so its document can."""
        followed = self._rooms.pop(key, None)
        if followed is not None and followed.subscription is not None:
            followed.room.presence.messages.unobserve(followed.subscription)
            followed.subscription = None

    async def replay(self, key: str) -> None:
        """Put the stream's recent messages before the room's own, then publish those.

        Raises:
            redis.exceptions.RedisError: the stream cannot be read (tried again later).
        """
        followed = self._rooms.get(key)
        if followed is None or followed.ready:
            return
        presence = followed.room.presence
        entries = await self._client.xrevrange(key, "+", "-", count=presence.max_messages)
        if self._rooms.get(key) is not followed:
            return
        entries.reverse()
        history = [message for _, fields in entries if (message := _decode(fields)) is not None]
        history = [message for message in history if followed.remember(message)]
        if entries:
            followed.last_id = entries[-1][0]
        presence.add_messages(history, origin=ROOM_ORIGIN, at_start=True)
        followed.ready = True
        waiting, followed.waiting = followed.waiting, []
        for message in waiting:
            if followed.remember(message):
                self._publish(followed, message)

    def _observed(self, followed: _Followed, event: Any) -> None:
        # Runs inside the room document's commit: must never raise.
        try:
            if event.transaction.origin == ROOM_ORIGIN:
                return
            for part in event.delta:
                for item in part.get("insert", ()):
                    message = item.to_py() if hasattr(item, "to_py") else item
                    if not isinstance(message, dict):
                        continue
                    if followed.ready:
                        if followed.remember(message):
                            self._publish(followed, message)
                    elif len(followed.waiting) < followed.room.presence.max_messages:
                        followed.waiting.append(message)
        except Exception:  # pragma: no cover - defensive: publishing never breaks a write
            log.exception("cluster: reading the messages of %r failed", followed.key)

    def _publish(self, followed: _Followed, message: dict[str, Any]) -> None:
        try:
            data = json.dumps(message, separators=(",", ":"), allow_nan=False).encode()
        except (TypeError, ValueError):
            return
        fields = {b"p": self._process, b"m": data}
        self._outbox.xadd(followed.key, fields, followed.room.presence.max_messages)

    async def run(self) -> None:
        """Until cancelled: append the other processes' new messages to the rooms here."""
        while True:
            following = {key: f for key, f in self._rooms.items() if f.ready}
            if not following:
                await anyio.sleep(self._block)
                continue
            streams = {key: f.last_id for key, f in following.items()}
            for key, entries in await self._reads.read(streams):
                self._apply(following[key], streams[key], entries)

    def _apply(self, followed: _Followed, read_from: bytes, entries: list[Any]) -> None:
        if self._rooms.get(followed.key) is not followed or followed.last_id != read_from:
            return  # closed or reopened meanwhile (a reopened room replayed)
        arrived = []
        for entry_id, fields in entries:
            followed.last_id = entry_id
            if fields.get(b"p") != self._process:
                message = _decode(fields)
                if message is not None and followed.remember(message):
                    arrived.append(message)
        if arrived:
            followed.room.presence.add_messages(arrived, origin=ROOM_ORIGIN)


def _decode(fields: dict[bytes, bytes]) -> dict[str, Any] | None:
    try:
        message = json.loads(fields[b"m"])
    except (KeyError, ValueError):
        return None
    return message if isinstance(message, dict) else None


def _fingerprint(message: dict[str, Any]) -> str:
    return json.dumps(message, sort_keys=True, separators=(",", ":"), default=str)
