"""`FsspecStorage`: snapshots, update logs and room files on any fsspec filesystem.

Layout under the root URL (``./rooms`` by default), one folder per room::

    {root}/{room}/docs/{document path}.ydoc/snapshot.yjs     full state, one Yjs v1 update
    {root}/{room}/docs/{document path}.ydoc/log/{seq}.ylog   update log segments
    {root}/{room}/files/{user file name}                     the room's file area (`_files`)
    {root}/{room}/tmp/                                       temp files of file writes
    {root}/{room}/activity/{session}/{seq}.alog              activity log of each room session
    {root}/{room}/versions/{document path}.ydoc/{id}.yjs     saved versions (`_versions`)

``{room}`` is one folder name and each segment of ``{document path}`` one
folder, with unsafe characters percent-encoded (see `_names`): the document
``notes/plan.md`` of room ``team`` lives in ``team/docs/notes/plan.md.ydoc/``.

The log is a series of numbered segments of length-prefixed, checksummed
records (`_log`). Where the filesystem can append (a local folder,
``memory://``), a process appends to one segment until the next compaction,
then starts the next. Object stores cannot append, so there every flushed
batch is its own numbered object (a PUT is atomic, so a torn record cannot
exist there). Either way a process always starts a fresh segment rather than
appending after a possibly torn tail, and compaction writes the snapshot
before it deletes the segments it covers.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, Literal

from ..server._hooks import DocumentInfo
from ._activity import FsspecActivityArea
from ._files import FsspecFileArea
from ._log import decode_records, encode_records
from ._names import (
    DOC_SUFFIX,
    decode_component,
    decode_document_path,
    encode_document_path,
)
from ._provider import SnapshotSource
from ._versions import FsspecVersionArea

__all__ = ["FsspecStorage"]

logger = logging.getLogger("meshroom.storage")

SNAPSHOT_NAME = "snapshot.yjs"
SEGMENT_SUFFIX = ".ylog"
#: Filesystems that can append to a file in place.
_APPENDABLE = {"file", "local", "memory"}
LogMode = Literal["auto", "append", "objects"]
#: Flush a file's data (and its size) to the disk: fdatasync where the system has it.
_sync_data = getattr(os, "fdatasync", os.fsync)


class FsspecStorage(FsspecVersionArea, FsspecActivityArea, FsspecFileArea):
    """A `StorageProvider` and `FileStore` on any fsspec URL.

    ```py
    storage = FsspecStorage("memory://rooms")
    await storage.write_snapshot("team", "notes/plan.md", doc.get_update())
    ```

    Args:
        url: where rooms live: a folder (``./rooms``), ``memory://rooms``,
            ``s3://bucket/prefix`` (needs ``meshdoc[s3]``) or any fsspec URL.
        log_mode: ``"append"`` (one growing segment per compaction cycle),
            ``"objects"`` (one object per flushed batch) or ``"auto"``: append where
            the filesystem can (local, memory), objects elsewhere.
        fsync: on a local folder, fsync log appends and snapshot renames, so an
            acknowledged edit survives a power cut as well as a killed process.
        **storage_options: passed to fsspec (e.g. ``endpoint_url=``, ``key=`` for s3).
    """

    def __init__(
        self,
        url: str = "./rooms",
        *,
        log_mode: LogMode = "auto",
        fsync: bool = True,
        **storage_options: Any,
    ) -> None:
        if log_mode not in ("auto", "append", "objects"):
            raise ValueError(f"log_mode must be 'auto', 'append' or 'objects', not {log_mode!r}")
        super().__init__(url, fsync=fsync, **storage_options)
        if log_mode == "auto":
            log_mode = "append" if self.protocols & _APPENDABLE else "objects"
        self.log_mode: LogMode = log_mode
        #: Whether a write outlives this process: not in memory://, so the server need
        #: not wait for those writes before it relays an edit (see `StorageExtension`).
        self.durable = "memory" not in self.protocols
        #: Next segment number per document, learned from a listing on first use.
        self._next_seq: dict[tuple[str, str], int] = {}
        #: The segment this process appends to, per document (append mode only).
        self._open_segment: dict[tuple[str, str], int] = {}
        #: Guards segment numbering per document (appends may overlap a compaction).
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        #: The open file of each local segment this process appends to: every update is
        #: written before it is relayed, so an append costs a write and an fsync, not
        #: also a directory check, an open and a close.
        self._files: dict[tuple[str, str], tuple[int, Any]] = {}

    def __repr__(self) -> str:
        return f"FsspecStorage({self.url!r}, log_mode={self.log_mode!r})"

    # -- paths ---------------------------------------------------------------

    def _doc_dir(self, room: str, path: str) -> str:
        return f"{self._room_dir(room)}/docs/{encode_document_path(path)}"

    def _segment_path(self, doc_dir: str, seq: int) -> str:
        return f"{doc_dir}/log/{seq:020d}{SEGMENT_SUFFIX}"

    # -- helpers -------------------------------------------------------------

    def _segments(self, doc_dir: str) -> list[int]:
        seqs = []
        for name in self._ls_names(f"{doc_dir}/log"):
            stem = name[: -len(SEGMENT_SUFFIX)]
            if name.endswith(SEGMENT_SUFFIX) and stem.isdigit():
                seqs.append(int(stem))
        return sorted(seqs)

    def _snapshot_paths(self, room: str, path: str) -> tuple[str, str]:
        # One writer per document at a time, so a fixed temp name is safe, and a
        # temp file left by a killed process is simply overwritten next time.
        doc_dir = self._doc_dir(room, path)
        return f"{doc_dir}/{SNAPSHOT_NAME}", f"{doc_dir}/{SNAPSHOT_NAME}.tmp"

    # -- documents -----------------------------------------------------------

    async def read_snapshot(self, room: str, path: str) -> bytes | None:
        target = f"{self._doc_dir(room, path)}/{SNAPSHOT_NAME}"

        def read() -> bytes | None:
            try:
                return self.fs.cat_file(target)
            except FileNotFoundError:
                return None

        return await self._run(f"{room}/{path}: read snapshot", read)

    async def write_snapshot(self, room: str, path: str, snapshot: bytes) -> None:
        target, tmp = self._snapshot_paths(room, path)
        await self._run(
            f"{room}/{path}: write snapshot", self._put_atomic, target, bytes(snapshot), tmp
        )

    def _allocate(self, key: tuple[str, str], doc_dir: str) -> tuple[int, bool]:
        """Pick the segment for the next append: (seq, append to it rather than create it)."""
        with self._lock(key):
            if key not in self._next_seq:
                existing = self._segments(doc_dir)
                self._next_seq[key] = existing[-1] + 1 if existing else 1
            if self.log_mode == "append" and key in self._open_segment:
                return self._open_segment[key], True
            seq = self._next_seq[key]
            self._next_seq[key] = seq + 1
            if self.log_mode == "append":
                self._open_segment[key] = seq
            return seq, False

    def _lock(self, key: tuple[str, str]) -> threading.Lock:
        return self._locks.setdefault(key, threading.Lock())

    async def append_updates(self, room: str, path: str, updates: Sequence[bytes]) -> None:
        if not updates:
            return
        key = (room, path)
        doc_dir = self._doc_dir(room, path)
        data = encode_records(updates)

        def append() -> None:
            seq, _existing = self._allocate(key, doc_dir)
            segment = self._segment_path(doc_dir, seq)
            if self.log_mode == "objects":
                self.fs.pipe_file(segment, data)
                return
            try:
                if self._local:
                    self._append_local(key, seq, segment, data)
                else:
                    self.fs.makedirs(f"{doc_dir}/log", exist_ok=True)
                    with self.fs.open(segment, "ab") as file:
                        file.write(data)
            except BaseException:
                # The segment may now end in a torn record: never append after it.
                with self._lock(key):
                    if self._open_segment.get(key) == seq:
                        del self._open_segment[key]
                    self._close_file(key)
                raise

        await self._run(f"{room}/{path}: append to log", append)

    def _append_local(self, key: tuple[str, str], seq: int, segment: str, data: bytes) -> None:
        """Append to a local segment through its cached file, fsynced when asked."""
        with self._lock(key):
            cached = self._files.get(key)
            if cached is None or cached[0] != seq:
                self._close_file(key)
                os.makedirs(os.path.dirname(segment), exist_ok=True)
                cached = self._files[key] = (seq, open(segment, "ab"))  # noqa: SIM115
            file = cached[1]
            file.write(data)
            file.flush()
            if self.fsync:
                _sync_data(file.fileno())
            if self._open_segment.get(key) != seq:
                self._close_file(key)  # a compaction rotated meanwhile: never reopened

    def _close_file(self, key: tuple[str, str]) -> None:
        """Close the cached segment file of `key` (call with its lock held)."""
        cached = self._files.pop(key, None)
        if cached is not None:
            cached[1].close()

    async def read_log(self, room: str, path: str) -> list[bytes]:
        doc_dir = self._doc_dir(room, path)

        def read() -> list[bytes]:
            paths = [self._segment_path(doc_dir, seq) for seq in self._segments(doc_dir)]
            if not paths:
                return []
            contents = self.fs.cat(paths, on_error="omit") if len(paths) > 1 else {}
            records: list[bytes] = []
            for segment in paths:
                data = contents[segment] if segment in contents else _cat_or_empty(self, segment)
                decoded = decode_records(data)
                if decoded.damage:
                    logger.warning(
                        "%s/%s: skipped %d damaged bytes (%s) at the end of log segment %s",
                        room,
                        path,
                        decoded.skipped_bytes,
                        decoded.damage,
                        segment.rsplit("/", 1)[-1],
                    )
                records.extend(decoded.records)
            return records

        return await self._run(f"{room}/{path}: read log", read)

    async def compact(self, room: str, path: str, snapshot: SnapshotSource) -> None:
        key = (room, path)
        doc_dir = self._doc_dir(room, path)
        target, tmp = self._snapshot_paths(room, path)

        def rotate() -> int:
            # Appends from now on go to segments >= boundary, which are kept.
            with self._lock(key):
                if key not in self._next_seq:
                    existing = self._segments(doc_dir)
                    self._next_seq[key] = existing[-1] + 1 if existing else 1
                self._open_segment.pop(key, None)
                self._close_file(key)
                return self._next_seq[key]

        def write_then_drop(boundary: int, data: bytes) -> None:
            self._put_atomic(target, data, tmp)
            covered = [seq for seq in self._segments(doc_dir) if seq < boundary]
            if covered:
                self.fs.rm([self._segment_path(doc_dir, seq) for seq in covered])

        boundary = await self._run(f"{room}/{path}: compact", rotate)
        data = snapshot() if callable(snapshot) else snapshot
        await self._run(f"{room}/{path}: compact", write_then_drop, boundary, bytes(data))

    async def list_rooms(self) -> list[str]:
        names = await self._run("list rooms", self._ls_names, self.root)
        return sorted(decode_component(name) for name in names)

    async def list_documents(self, room: str) -> list[str]:
        docs = f"{self._room_dir(room)}/docs"

        def find() -> list[str]:
            self.fs.invalidate_cache(docs)
            try:
                found = self.fs.find(docs)
            except FileNotFoundError:
                return []
            base = self.fs._strip_protocol(docs).rstrip("/") + "/"
            paths = set()
            for entry in found:
                relative = self.fs._strip_protocol(entry)[len(base) :]
                segments = relative.split("/")
                for depth, segment in enumerate(segments[:-1]):
                    if segment.endswith(DOC_SUFFIX):
                        paths.add(decode_document_path("/".join(segments[: depth + 1])))
                        break
            return sorted(paths)

        return await self._run(f"{room}: list documents", find)

    async def stat_documents(self, room: str) -> list[DocumentInfo]:
        """The room's stored documents with the bytes they take (snapshot and log) and the
        time of their last write, in one listing: what the room document's `documents`
        map shows before anyone opens them (`StorageExtension.on_list_documents`)."""
        docs = f"{self._room_dir(room)}/docs"

        def find() -> list[DocumentInfo]:
            self.fs.invalidate_cache(docs)
            try:
                found = self.fs.find(docs, detail=True)
            except FileNotFoundError:
                return []
            base = self.fs._strip_protocol(docs).rstrip("/") + "/"
            sizes: dict[str, int] = {}
            modified: dict[str, float | None] = {}
            for entry, info in found.items():
                relative = self.fs._strip_protocol(entry)[len(base) :]
                segments = relative.split("/")
                for depth, segment in enumerate(segments[:-1]):
                    if segment.endswith(DOC_SUFFIX):
                        path = decode_document_path("/".join(segments[: depth + 1]))
                        if segments[-1].endswith(".tmp"):
                            break  # a snapshot being written (or left by a killed process)
                        sizes[path] = sizes.get(path, 0) + int(info.get("size") or 0)
                        written = _modified(info)
                        previous = modified.get(path)
                        if written is not None and (previous is None or written > previous):
                            modified[path] = written
                        else:
                            modified.setdefault(path, previous)
                        break
            return [DocumentInfo(path, sizes[path], modified[path]) for path in sorted(sizes)]

        return await self._run(f"{room}: list documents", find)

    def forget(self, room: str, path: str) -> None:
        """Forget what this process knows of a document's log (its next segment number,
        the segment it appends to), so that the next write lists the log again.

        A cluster calls it before this process becomes a document's writer: another
        process may have written the document since, and reusing a stale number could
        append to, or overwrite, one of that process's segments.
        """
        key = (room, path)
        with self._lock(key):
            self._open_segment.pop(key, None)
            self._next_seq.pop(key, None)
            self._close_file(key)

    async def delete(self, room: str, path: str) -> None:
        key = (room, path)
        doc_dir = self._doc_dir(room, path)

        def delete() -> None:
            with self._lock(key):
                self._open_segment.pop(key, None)
                self._next_seq.pop(key, None)
                self._close_file(key)
            self.fs.invalidate_cache(doc_dir)
            if self.fs.exists(doc_dir):
                self.fs.rm(doc_dir, recursive=True)

        await self._run(f"{room}/{path}: delete", delete)


def _modified(info: dict[str, Any]) -> float | None:
    """Unix time of a file's last write from an fsspec listing entry (each filesystem
    names it its own way: ``mtime`` locally, ``created`` in memory, ``LastModified`` on s3)."""
    for key in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = info.get(key)
        if value is None:
            continue
        if isinstance(value, datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=timezone.utc)
            return value.timestamp()
        if isinstance(value, (int, float)):
            return float(value)
    return None


def _cat_or_empty(storage: FsspecStorage, segment: str) -> bytes:
    try:
        return storage.fs.cat_file(segment)
    except FileNotFoundError:
        return b""
