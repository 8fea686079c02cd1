"""`VersionStore`: what versions need of a storage provider, and the error without it.

`FsspecStorage` has these methods (``{root}/{room}/versions/``, beside the room's
documents); a custom provider (a database) adds them to keep versions. They are optional:
a provider without them serves documents as before, and asking it for versions raises
`VersionsUnsupported`, which says which methods are missing.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from .._exceptions import MeshroomError, StorageError

__all__ = ["VersionNotFound", "VersionStore", "VersionsUnsupported", "version_store"]

METHODS = ("write_version", "read_version", "list_versions", "delete_version")


class VersionsUnsupported(StorageError):
    """The storage provider keeps no versions (it lacks the `VersionStore` methods)."""


@runtime_checkable
class VersionStore(Protocol):
    """Saved versions of documents: a state and a small metadata record each."""

    async def write_version(
        self, room: str, path: str, version_id: str, meta: bytes, state: bytes
    ) -> None:
        """Store a version durably and atomically: once this returns it is listed and
        readable whole; a crash before leaves no version listed (never a partial one)."""
        ...

    async def read_version(self, room: str, path: str, version_id: str) -> bytes:
        """The version's state; raise `FileNotFoundError` if there is no such version."""
        ...

    async def list_versions(self, room: str, path: str) -> list[tuple[str, bytes]]:
        """(id, metadata) of every version of the document, oldest id first."""
        ...

    async def delete_version(self, room: str, path: str, version_id: str) -> None:
        """Remove the version (no error if there is none)."""
        ...


def version_store(provider: Any) -> VersionStore:
    """`provider` as a `VersionStore`.

    Raises:
        VersionsUnsupported: it lacks some of the methods (named in the message).
    """
    missing = [name for name in METHODS if not callable(getattr(provider, name, None))]
    if missing:
        raise VersionsUnsupported(
            f"the storage provider {type(provider).__name__} keeps no versions: it has no "
            f"{', '.join(missing)} (the VersionStore methods; see docs/versions.md)"
        )
    return provider  # type: ignore[no-any-return]


class VersionNotFound(MeshroomError, LookupError):
    """No version of the document matches what was asked for (an id, a prefix, a name)."""
