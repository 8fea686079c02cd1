"""The storage contract: what a provider must do so no accepted edit is lost.

A document is stored as a *snapshot* (one Yjs update, v1 encoding, holding the
document's full state) plus an append-only *log* of the updates accepted since
that snapshot. Loading replays snapshot + log; Yjs updates are idempotent, so a
record that is both in the snapshot and in the log is harmless. That is what
makes compaction safe without a transaction across two files: write the new
snapshot atomically first, then drop the log records it covers. A crash between
the two leaves both, and replaying both gives the same document.

For one document, `StorageExtension` never runs two appends, or two
compactions, at the same time; but an append may run while a compaction is in
progress (so a slow snapshot never delays the log). That is why `compact` takes
a function that encodes the snapshot: the provider first fixes which log
records it will drop (everything appended before that point), then calls
``snapshot()``, which returns a state that covers all of them; records
appended afterwards are kept.

One process writes a document at a time: two server processes storing the
same document into the same place would interleave their logs and each
compact away the other's records. When rooms are spread over processes, let
only the process that owns a room store it.

A custom provider (a database table, a bucket layout of your own) is any class
with these methods; ``examples/sqlite_storage.py`` is one. The server waits for
`append_updates` before it relays an edit; a provider whose writes do not outlive
the process (memory) sets ``durable = False`` so that it does not wait.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, Union, runtime_checkable

__all__ = ["FileStore", "SnapshotSource", "StorageProvider"]

#: A snapshot, or a function returning one. Call the function on the event loop
#: (it reads the live document), after fixing the log records to drop.
SnapshotSource = Union[bytes, Callable[[], bytes]]  # noqa: UP007 (a runtime alias)


@runtime_checkable
class StorageProvider(Protocol):
    """Snapshots and update logs of documents, addressed by room and document path."""

    async def read_snapshot(self, room: str, path: str) -> bytes | None:
        """Return the last snapshot written for the document, or None if there is none."""
        ...

    async def write_snapshot(self, room: str, path: str, snapshot: bytes) -> None:
        """Replace the snapshot atomically: a reader sees the old one or the new one, whole.

        The log is left as it is (use `compact` to fold it in).
        """
        ...

    async def append_updates(self, room: str, path: str, updates: Sequence[bytes]) -> None:
        """Append updates (Yjs v1) to the document's log, durably, in order, as one batch.

        If this raises, none, some or all of the batch may be stored; the caller
        appends the whole batch again later (duplicates are harmless), so a provider
        must keep records written after a failure readable.
        """
        ...

    async def read_log(self, room: str, path: str) -> list[bytes]:
        """Return the intact log records in append order; skip (never raise on) a torn tail."""
        ...

    async def compact(self, room: str, path: str, snapshot: SnapshotSource) -> None:
        """Replace the snapshot and drop the log records it covers.

        In this order: note where the log ends now; get the snapshot bytes (call
        `snapshot` if it is a function); write them atomically; only then drop the
        records appended before the noted point. Records appended meanwhile stay.
        A crash at any step leaves a snapshot + log that replays to the same state.
        """
        ...

    async def list_rooms(self) -> list[str]:
        """Names of the rooms that have stored documents or files."""
        ...

    async def list_documents(self, room: str) -> list[str]:
        """Paths of the room's stored documents."""
        ...

    async def delete(self, room: str, path: str) -> None:
        """Remove the document's snapshot and log (no error if it does not exist)."""
        ...


@runtime_checkable
class FileStore(Protocol):
    """A room's own file area (uploads, exports, agent outputs), apart from its documents.

    Names are relative ``/``-separated paths; ``..`` and absolute names are refused
    with `RoomNameError`, so a room can never read or write outside its area, and
    listing never shows document snapshots or logs.
    """

    async def list_files(self, room: str, prefix: str = "") -> list[str]:
        """Names of the room's files (recursively), optionally only those under `prefix`."""
        ...

    async def read_file(self, room: str, name: str) -> bytes:
        """Return the file's bytes; raise `FileNotFoundError` if there is none."""
        ...

    async def write_file(self, room: str, name: str, data: bytes) -> None:
        """Create or replace the file atomically."""
        ...

    async def delete_file(self, room: str, name: str) -> None:
        """Remove the file; raise `FileNotFoundError` if there is none."""
        ...
