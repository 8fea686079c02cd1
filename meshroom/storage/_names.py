"""How room names, document paths and file names become storage keys.

Room names and document paths come from URLs, so they may hold any character.
Each one becomes exactly one folder name: every byte outside ``[A-Za-z0-9-_.~]``
is percent-encoded (``/`` included, so ``notes/plan.md`` stays one folder and two
documents can never collide), and a leading ``.`` is encoded too, so no room can
be named ``.``, ``..`` or hide itself. Decoding is the exact inverse, which is
what lets `list_rooms` and `list_documents` give back the original names.

User files keep their own names (people browse them in the bucket), so they are
validated instead: relative (no leading ``/``), ``/``-separated, no empty, ``.`` or ``..`` segment,
no backslash or control character.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

from .._exceptions import RoomNameError

__all__ = ["decode_component", "encode_component", "validate_file_name"]

_SAFE = "-_.~"
#: Most filesystems cap one path component at 255 bytes; keep room for suffixes.
MAX_COMPONENT_BYTES = 240


def encode_component(name: str, *, kind: str = "room name") -> str:
    """Encode a room name or document path as one safe folder name.

    ```py
    assert encode_component("team/plan") == "team%2Fplan"
    assert encode_component("..") == "%2E."
    ```

    Raises:
        RoomNameError: the name is empty, holds a NUL, or is too long once encoded.
    """
    if not isinstance(name, str) or not name:
        raise RoomNameError(f"a {kind} must be a non-empty string", name=str(name))
    if "\x00" in name:
        raise RoomNameError(f"a {kind} must not contain NUL", name=name)
    encoded = quote(name, safe=_SAFE)
    if encoded.startswith("."):
        encoded = "%2E" + encoded[1:]
    if len(encoded.encode()) > MAX_COMPONENT_BYTES:
        raise RoomNameError(
            f"{kind} is too long to store ({len(encoded)} bytes encoded, "
            f"at most {MAX_COMPONENT_BYTES})",
            name=name,
        )
    return encoded


def decode_component(encoded: str) -> str:
    """Invert `encode_component`."""
    return unquote(encoded)


def validate_file_name(name: str) -> str:
    """Check a user file name (``reports/q3.pdf``) and return it.

    Raises:
        RoomNameError: the name is empty or absolute, escapes the file area (``..``),
            or holds a backslash, NUL or control character.
    """
    if not isinstance(name, str):
        raise RoomNameError("a file name must be a string", name=str(name))
    if not name:
        raise RoomNameError("a file name must not be empty", name=name)
    if name.startswith("/"):
        raise RoomNameError(f"file name {name!r} must be relative to the room", name=name)
    stripped = name
    if "\\" in stripped or any(ord(ch) < 32 or ord(ch) == 127 for ch in stripped):
        raise RoomNameError(
            "a file name must not contain backslashes or control characters", name=name
        )
    for segment in stripped.split("/"):
        if segment in ("", ".", ".."):
            raise RoomNameError(
                f"file name {name!r} has an empty, '.' or '..' segment "
                "(files cannot leave the room's file area)",
                name=name,
            )
        if len(segment.encode()) > 255:
            raise RoomNameError("a file name segment is longer than 255 bytes", name=name)
    return stripped
