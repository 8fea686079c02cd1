"""Errors raised by meshroom.

The tree, so callers can catch a whole family::

    MeshroomError
    ├── ProtocolError          a peer sent bytes that are not y-websocket
    ├── RoomNameError          a room name or document path is not allowed
    ├── AuthenticationError    a connection is refused (carries the close code)
    ├── ClientError            the Python client cannot reach or stay in a room
    └── StorageError           a storage provider failed to read or write
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "ClientError",
    "MeshroomError",
    "ProtocolError",
    "RoomNameError",
    "StorageError",
]


class MeshroomError(Exception):
    """Base class of every meshroom error."""


class ProtocolError(MeshroomError):
    """A message does not follow the y-websocket protocol (truncated, unknown sync step…)."""


class RoomNameError(MeshroomError, ValueError):
    """A room name or document path breaks the naming rules (empty segment, `..`, too long)."""

    def __init__(self, message: str, *, name: str) -> None:
        super().__init__(message)
        self.name = name


class AuthenticationError(MeshroomError):
    """A connection is refused; the server closes the socket with `code` and `reason`."""

    def __init__(self, reason: str, *, code: int = 4401) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class ClientError(MeshroomError):
    """The Python client could not connect, or the connection was closed by the server."""

    def __init__(self, message: str, *, code: int | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class StorageError(MeshroomError):
    """A storage provider failed; `path` names the room/document it was working on."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path
