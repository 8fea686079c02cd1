"""How room names, document paths and file names become storage keys.

Room names and document paths come from URLs, so they may hold any character.
A room name becomes one folder name, and each segment of a document path one
folder name, by percent-encoding what is unsafe in a file or object name:
``%``, ``/``, ``\\``, control characters, the characters Windows or glob
patterns reserve (``: * ? " < > | [ ]``), a leading ``.`` (so nothing is named
``.``, ``..`` or hidden) and a trailing ``.`` or space. Everything else,
Unicode included, stays readable. Decoding is the exact inverse, which is what
lets `list_rooms` and `list_documents` give back the original names.

A document's own folder ends in ``.ydoc`` (``notes/plan.md`` is stored under
``notes/plan.md.ydoc/``); a path segment that itself ends in ``.ydoc`` has that
dot encoded, so the documents ``a`` and ``a.ydoc/b`` can never share a folder.

User files keep their own names (people browse them in the bucket), so they are
validated instead: relative (no leading ``/``), ``/``-separated, no empty,
``.`` or ``..`` segment, no backslash or control character.
"""

from __future__ import annotations

from urllib.parse import unquote

from .._exceptions import RoomNameError

__all__ = [
    "DOC_SUFFIX",
    "decode_component",
    "decode_document_path",
    "encode_component",
    "encode_document_path",
    "validate_file_name",
]

#: Suffix of a document's own folder.
DOC_SUFFIX = ".ydoc"
#: Most filesystems cap one path component at 255 bytes; ".ydoc" takes 5 of them.
MAX_COMPONENT_BYTES = 250
_UNSAFE = set('%/\\:*?"<>|[]')


def _quote(char: str) -> str:
    return "".join(f"%{byte:02X}" for byte in char.encode())


def encode_component(name: str, *, kind: str = "room name") -> str:
    """Encode a room name or one document path segment as a safe folder name.

    ```py
    assert encode_component("team a/b") == "team a%2Fb"
    assert encode_component("..") == "%2E%2E"
    ```

    Raises:
        RoomNameError: the name is empty, holds a NUL, or is too long once encoded.
    """
    if not isinstance(name, str) or not name:
        raise RoomNameError(f"a {kind} must be a non-empty string", name=str(name))
    if "\x00" in name:
        raise RoomNameError(f"a {kind} must not contain NUL", name=name)
    chars = [
        _quote(ch) if ch in _UNSAFE or ord(ch) < 32 or 127 <= ord(ch) < 160 else ch for ch in name
    ]
    if chars[0] == ".":
        chars[0] = "%2E"
    if chars[-1] in (".", " "):
        chars[-1] = _quote(chars[-1])
    encoded = "".join(chars)
    if encoded.lower().endswith(DOC_SUFFIX):
        encoded = encoded[: -len(DOC_SUFFIX)] + "%2E" + encoded[-len(DOC_SUFFIX) + 1 :]
    if len(encoded.encode()) > MAX_COMPONENT_BYTES:
        raise RoomNameError(
            f"{kind} is too long to store ({len(encoded.encode())} bytes encoded, "
            f"at most {MAX_COMPONENT_BYTES})",
            name=name,
        )
    return encoded


def decode_component(encoded: str) -> str:
    """Invert `encode_component`."""
    return unquote(encoded)


def encode_document_path(path: str) -> str:
    """The relative folder of a document: encoded segments, the last one + ``.ydoc``.

    ```py
    assert encode_document_path("notes/plan.md") == "notes/plan.md.ydoc"
    ```

    Raises:
        RoomNameError: the path is empty or has an empty, ``.`` or ``..`` segment.
    """
    if not isinstance(path, str) or not path:
        raise RoomNameError("a document path must be a non-empty string", name=str(path))
    segments = path.split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        raise RoomNameError(f"document path {path!r} has an empty, '.' or '..' segment", name=path)
    encoded = [encode_component(segment, kind="document path segment") for segment in segments]
    return "/".join(encoded) + DOC_SUFFIX


def decode_document_path(folder: str) -> str:
    """Invert `encode_document_path` (``notes/plan.md.ydoc`` → ``notes/plan.md``)."""
    if not folder.endswith(DOC_SUFFIX):
        raise ValueError(f"{folder!r} is not a document folder")
    return "/".join(decode_component(s) for s in folder[: -len(DOC_SUFFIX)].split("/"))


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
