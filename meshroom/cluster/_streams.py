"""Redis key names and stream entry fields shared by every process of a cluster.

One stream per document. An entry holds one Yjs v1 update (``u``), the token of
the live document that wrote it (``s``: a reader skips only its own document's
entries, so a document reopened in the same process still replays them), and
its kind (``k``): ``u`` for an accepted update, ``c`` for a compacted state that
stands for every entry trimmed before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote

__all__ = [
    "Entry",
    "after",
    "awareness_key",
    "calls_channel",
    "decode_entry",
    "document_key",
    "encode_entry",
    "lease_key",
    "member_of",
    "parse_member",
    "room_messages_key",
    "room_views_key",
    "views_channel",
    "writers_key",
]

KIND_UPDATE = b"u"
KIND_COMPACTED = b"c"


def member_of(room: str, path: str) -> str:
    """`room`/`path` as one word: percent-encoded so no name can collide with another."""
    return f"{quote(room, safe='')}/{quote(path, safe='/')}"


def parse_member(member: str) -> tuple[str, str]:
    """(room, path) back from `member_of` (the room never holds a raw ``/``)."""
    room, _, path = member.partition("/")
    return unquote(room), unquote(path)


def document_key(prefix: str, room: str, path: str) -> str:
    """The stream of `room`/`path`."""
    return f"{prefix}:doc:{member_of(room, path)}"


def awareness_key(prefix: str, room: str, path: str) -> str:
    """The capped stream of `room`/`path`'s awareness updates."""
    return f"{prefix}:awareness:{quote(room, safe='')}/{quote(path, safe='/')}"


def writers_key(prefix: str) -> str:
    """The sorted set of documents that have or need a writer (member -> lease end, ms)."""
    return f"{prefix}:writers"


def lease_key(prefix: str, member: str) -> str:
    """The lease naming the one process that writes `member` (a `member_of`) to storage."""
    return f"{prefix}:writer:{member}"


def room_views_key(prefix: str, room: str) -> str:
    """The hash of what each process serving `room` lists (field: process id)."""
    return f"{prefix}:room:{quote(room, safe='')}"


def room_messages_key(prefix: str, room: str) -> str:
    """The capped stream of `room`'s messages, from every process."""
    return f"{prefix}:messages:{quote(room, safe='')}"


def views_channel(prefix: str) -> str:
    """The channel on which a process says its view of a room changed."""
    return f"{prefix}:rooms"


def calls_channel(prefix: str, process: str) -> str:
    """The channel on which `process` receives room calls forwarded to it."""
    return f"{prefix}:calls:{process}"


@dataclass(frozen=True)
class Entry:
    """One decoded stream entry."""

    id: bytes
    update: bytes
    sender: bytes
    kind: bytes


def encode_entry(update: bytes, sender: bytes, kind: bytes = KIND_UPDATE) -> dict[bytes, bytes]:
    return {b"u": update, b"s": sender, b"k": kind}


def decode_entry(entry_id: bytes, fields: dict[bytes, bytes]) -> Entry | None:
    """The entry, or None when it was not written by meshroom (it is then ignored)."""
    update = fields.get(b"u")
    if update is None:
        return None
    return Entry(entry_id, update, fields.get(b"s", b""), fields.get(b"k", KIND_UPDATE))


def after(entry_id: bytes) -> bytes:
    """The smallest stream id greater than `entry_id` (for an exact ``XTRIM MINID``)."""
    millis, _, sequence = entry_id.partition(b"-")
    return millis + b"-" + str(int(sequence or b"0") + 1).encode()
