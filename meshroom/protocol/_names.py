"""Room names and document paths: what a URL may address, checked before anything opens.

A URL path ``/{room}/{document path}`` names a room and a document inside it;
``/{room}`` alone names the room document (presence). Browsers percent-encode
(``my room`` arrives as ``my%20room``), so each segment is decoded on its own:
an encoded slash (``%2F``) never smuggles in a segment.

Names end up as folder and file names in storage, so the rules keep them
portable and safe: no empty, ``.`` or ``..`` segment, no control character or
backslash, bounded lengths.

```py
from meshroom.protocol._names import parse_target

assert parse_target("/my%20room/notes/plan.md") == ("my room", "notes/plan.md")
assert parse_target("/my%20room") == ("my room", "")
```
"""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote

from .._exceptions import RoomNameError

__all__ = [
    "MAX_PATH_LENGTH",
    "MAX_SEGMENT_LENGTH",
    "parse_target",
    "validate_path",
    "validate_room",
]

#: Longest room name or path segment, in characters (most file systems allow 255 bytes).
MAX_SEGMENT_LENGTH = 120
#: Longest document path, in characters (segments joined by ``/``).
MAX_PATH_LENGTH = 1024
#: Most segments a document path may have (deep trees are a mistake, not a use).
MAX_DEPTH = 32


def _check_segment(segment: str, *, name: str, what: str) -> None:
    if segment == "":
        raise RoomNameError(f"{what} has an empty segment", name=name)
    if segment in (".", ".."):
        raise RoomNameError(f"{what} may not contain a {segment!r} segment", name=name)
    if len(segment) > MAX_SEGMENT_LENGTH:
        raise RoomNameError(
            f"{what} segment is {len(segment)} characters long (at most {MAX_SEGMENT_LENGTH})",
            name=name,
        )
    for char in segment:
        if char in "/\\":
            raise RoomNameError(f"{what} may not contain {char!r}", name=name)
        if unicodedata.category(char) in ("Cc", "Cs"):
            raise RoomNameError(
                f"{what} may not contain control character U+{ord(char):04X}", name=name
            )
    if segment != segment.strip():
        raise RoomNameError(f"{what} may not start or end with whitespace", name=name)


def validate_room(room: str) -> str:
    """Return `room` if it is a valid room name (one segment).

    Raises:
        RoomNameError: empty, ``.``/``..``, a slash or backslash, a control character,
            surrounding whitespace, or longer than `MAX_SEGMENT_LENGTH`.
    """
    if not isinstance(room, str):
        raise RoomNameError(f"room name must be a string, got {type(room).__name__}", name="")
    _check_segment(room, name=room, what="room name")
    return room


def validate_path(path: str) -> str:
    """Return `path` if it is a valid document path (``""`` is the room document).

    Raises:
        RoomNameError: a bad segment (see `validate_room`), too deep or too long.
    """
    if not isinstance(path, str):
        raise RoomNameError(f"document path must be a string, got {type(path).__name__}", name="")
    if path == "":
        return path
    if len(path) > MAX_PATH_LENGTH:
        raise RoomNameError(
            f"document path is {len(path)} characters long (at most {MAX_PATH_LENGTH})", name=path
        )
    segments = path.split("/")
    if len(segments) > MAX_DEPTH:
        raise RoomNameError(
            f"document path has {len(segments)} segments (at most {MAX_DEPTH})", name=path
        )
    for segment in segments:
        _check_segment(segment, name=path, what="document path")
    return path


def parse_target(raw_path: str) -> tuple[str, str]:
    """Split a raw (still percent-encoded) URL path into ``(room, document path)``.

    Raises:
        RoomNameError: the path names no room, or breaks the rules above.
    """
    stripped = raw_path[1:] if raw_path.startswith("/") else raw_path
    if stripped == "":
        raise RoomNameError(
            "the URL names no room: use /{room} or /{room}/{document path}", name=""
        )
    raw_segments = stripped.split("/")
    try:
        segments = [unquote(segment, errors="strict") for segment in raw_segments]
    except UnicodeDecodeError:
        raise RoomNameError(
            "the URL path is not valid percent-encoded UTF-8", name=raw_path
        ) from None
    room = validate_room(segments[0])
    if len(segments) == 1:
        return room, ""
    if len(segments) - 1 > MAX_DEPTH:
        raise RoomNameError(
            f"document path has {len(segments) - 1} segments (at most {MAX_DEPTH})", name=raw_path
        )
    for segment in segments[1:]:
        _check_segment(segment, name=raw_path, what="document path")
    return room, validate_path("/".join(segments[1:]))
