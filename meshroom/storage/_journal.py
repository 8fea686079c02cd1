"""`LocalJournal`: a write-ahead journal on the local disk, in front of a remote store.

An update must be on disk before the server relays it. On a local folder the
document's own log is that disk; an object store (S3) answers a write in tens of
milliseconds, which every edit would then wait for. With a journal, the server
appends the update to a local file (fsynced) and relays it at once; the storage
extension uploads journaled updates to the store in the background, with its
usual batching and retries, and only then deletes them from the journal. If the
process dies, or stops while the store is unreachable, what was not uploaded is
still in the journal, and the next start uploads it before serving anything.

Layout: one folder per document under the journal's folder, named by a hash of
(room, path), holding a ``doc.json`` naming it and numbered segments of log
records (`_log`'s format: length, checksum, payload, so a torn tail is found).
An upload rotates to a new segment first, so the segments it covers never grow
while it runs; once the store took them, they are deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from ._log import decode_records, encode_records

__all__ = ["LocalJournal"]

_SEGMENT = ".wal"
#: fdatasync where the system has it (data and size, not every timestamp).
_sync_data = getattr(os, "fdatasync", os.fsync)


class LocalJournal:
    """Journal files of documents under `folder` (see the module docstring).

    Args:
        folder: a local folder; created if missing. Give the same one at every start
            of the same server, so that it finds what the last one left.
        fsync: flush every append to the disk (on by default: what the journal is for).
    """

    def __init__(self, folder: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.folder = Path(folder).expanduser().resolve()
        self.fsync = fsync
        self._lock = threading.Lock()
        #: Per document key: (open segment number, its file).
        self._open: dict[str, tuple[int, Any]] = {}

    def __repr__(self) -> str:
        return f"LocalJournal({str(self.folder)!r})"

    # -- writing ---------------------------------------------------------------------------

    async def append(self, room: str, path: str, updates: Sequence[bytes]) -> None:
        """Append `updates` to the document's current segment, durably."""
        if updates:
            data = encode_records(updates)
            await anyio.to_thread.run_sync(self._append, room, path, data)

    def _append(self, room: str, path: str, data: bytes) -> None:
        key = _key(room, path)
        with self._lock:
            opened = self._open.get(key)
            if opened is None:
                folder = self.folder / key
                folder.mkdir(parents=True, exist_ok=True)
                name = folder / "doc.json"
                if not name.exists():
                    _write_synced(name, json.dumps({"room": room, "path": path}).encode())
                seq = max(_segments(folder), default=0) + 1
                opened = self._open[key] = (seq, open(folder / f"{seq:012d}{_SEGMENT}", "ab"))  # noqa: SIM115
            file = opened[1]
            file.write(data)
            file.flush()
            if self.fsync:
                _sync_data(file.fileno())

    async def rotate(self, room: str, path: str) -> int:
        """Start a new segment for later appends; return the first segment number kept."""
        return await anyio.to_thread.run_sync(self._rotate, room, path)

    def _rotate(self, room: str, path: str) -> int:
        key = _key(room, path)
        with self._lock:
            opened = self._open.pop(key, None)
            if opened is not None:
                opened[1].close()
                return opened[0] + 1
            return max(_segments(self.folder / key), default=0) + 1

    async def drop(self, room: str, path: str, before: int) -> None:
        """Delete the document's segments numbered below `before` (the store has them)."""
        await anyio.to_thread.run_sync(self._drop, room, path, before)

    def _drop(self, room: str, path: str, before: int) -> None:
        folder = self.folder / _key(room, path)
        for seq in _segments(folder):
            if seq < before:
                (folder / f"{seq:012d}{_SEGMENT}").unlink(missing_ok=True)

    # -- reading ---------------------------------------------------------------------------

    async def read(self, room: str, path: str) -> list[bytes]:
        """The document's journaled updates, oldest first ([] when it has none).

        What a stopped server left here is part of the document until the next start
        uploads it: a tool reading the store alone (`meshroom doc export`) adds these.
        """
        return await anyio.to_thread.run_sync(self._read, room, path)

    def _read(self, room: str, path: str) -> list[bytes]:
        folder = self.folder / _key(room, path)
        updates: list[bytes] = []
        for seq in _segments(folder):
            updates.extend(decode_records((folder / f"{seq:012d}{_SEGMENT}").read_bytes()).records)
        return updates

    async def pending(self) -> list[tuple[str, str, list[bytes]]]:
        """(room, path, updates) of every document with journaled updates, oldest first."""
        return await anyio.to_thread.run_sync(self._pending)

    def _pending(self) -> list[tuple[str, str, list[bytes]]]:
        if not self.folder.is_dir():
            return []
        found = []
        for folder in sorted(self.folder.iterdir()):
            seqs = _segments(folder)
            if not seqs:
                continue
            names = json.loads((folder / "doc.json").read_text())
            updates: list[bytes] = []
            for seq in seqs:
                updates.extend(
                    decode_records((folder / f"{seq:012d}{_SEGMENT}").read_bytes()).records
                )
            found.append((names["room"], names["path"], updates))
        return found

    def close(self) -> None:
        """Close the open segment files (appends after this reopen new segments)."""
        with self._lock:
            for _, file in self._open.values():
                file.close()
            self._open.clear()


def _key(room: str, path: str) -> str:
    return hashlib.sha256(json.dumps([room, path]).encode()).hexdigest()[:32]


def _segments(folder: Path) -> list[int]:
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    return sorted(
        int(n[: -len(_SEGMENT)]) for n in names if n.endswith(_SEGMENT) and n[:-4].isdigit()
    )


def _write_synced(target: Path, data: bytes) -> None:
    tmp = target.with_suffix(".tmp")
    with open(tmp, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, target)
