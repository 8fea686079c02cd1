"""`FsspecActivityArea`: each room session's activity log, beside the room's documents.

Layout under the root URL, one folder per session (its id sorts by start time)::

    {root}/{room}/activity/{session}/{seq}.alog    append-only segments of events

A segment holds records in the update log's format (`_log`: length, checksum, payload),
each one event as UTF-8 JSON, so a process killed mid-write leaves a torn tail that
reading skips, as it does for a document's log. Where the filesystem can append (a
local folder, ``memory://``), a process appends to one segment per session, fsynced
when asked; an object store gets one object per batch. A process never appends after
another one's (possibly torn) tail: it starts a segment of its own.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Sequence
from typing import Any

from .._exceptions import RoomNameError
from ._base import FsspecBase
from ._log import decode_records, encode_records

__all__ = ["FsspecActivityArea", "validate_session"]

_SUFFIX = ".alog"
_SESSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z_.-]{0,99}")
_sync_data = getattr(os, "fdatasync", os.fsync)


def validate_session(session: str) -> str:
    """Check a session id names one folder (letters, digits, ``-_.``), and return it.

    Raises:
        RoomNameError: it does not.
    """
    if not isinstance(session, str) or _SESSION.fullmatch(session) is None:
        raise RoomNameError(f"{session!r} is not a session id", name=session)
    return session


class FsspecActivityArea(FsspecBase):
    """Activity logs of room sessions on an fsspec filesystem (see the module docstring)."""

    def __init__(self, url: str, *, fsync: bool, **storage_options: Any) -> None:
        super().__init__(url, fsync=fsync, **storage_options)
        self._activity_lock = threading.Lock()
        #: (room, session) -> (segment number, open local file or None) this process writes.
        self._activity_segments: dict[tuple[str, str], tuple[int, Any]] = {}

    def _session_dir(self, room: str, session: str) -> str:
        return f"{self._room_dir(room)}/activity/{validate_session(session)}"

    def _activity_segments_of(self, folder: str) -> list[int]:
        return sorted(
            int(name[: -len(_SUFFIX)])
            for name in self._ls_names(folder)
            if name.endswith(_SUFFIX) and name[: -len(_SUFFIX)].isdigit()
        )

    async def append_activity(self, room: str, session: str, events: Sequence[bytes]) -> None:
        """Append events (UTF-8 JSON, one each) to the session's log, durably, as one batch.

        If this raises, none, some or all of the batch may be stored (the records
        written before a failure stay readable).
        """
        if not events:
            return
        folder = self._session_dir(room, session)
        data = encode_records(events)

        def append() -> None:
            key = (room, session)
            with self._activity_lock:
                current = self._activity_segments.get(key)
                appendable = bool(self.protocols & {"file", "local", "memory"})
                if current is None or not appendable:
                    existing = self._activity_segments_of(folder)
                    seq = (existing[-1] if existing else 0) + 1
                    current = (seq, None)
                    if appendable:
                        self._activity_segments[key] = current
                seq, file = current
                target = f"{folder}/{seq:012d}{_SUFFIX}"
                try:
                    if not appendable:
                        self.fs.pipe_file(target, data)
                    elif self._local:
                        if file is None:
                            os.makedirs(folder, exist_ok=True)
                            file = open(target, "ab")  # noqa: SIM115 (kept for the session)
                            self._activity_segments[key] = (seq, file)
                        file.write(data)
                        file.flush()
                        if self.fsync:
                            _sync_data(file.fileno())
                    else:
                        self.fs.makedirs(folder, exist_ok=True)
                        with self.fs.open(target, "ab") as remote:
                            remote.write(data)
                except BaseException:
                    # the segment may end in a torn record now: never append after it
                    dropped = self._activity_segments.pop(key, None)
                    if dropped is not None and dropped[1] is not None:
                        dropped[1].close()
                    raise

        await self._run(f"{room}: append to activity log {session}", append)

    def close_activity(self, room: str, session: str) -> None:
        """Close the session's open segment (its room closed); later appends start another."""
        with self._activity_lock:
            dropped = self._activity_segments.pop((room, session), None)
        if dropped is not None and dropped[1] is not None:
            dropped[1].close()

    async def read_activity(self, room: str, session: str) -> list[bytes]:
        """The session's intact events, in order ([] for an unknown session)."""
        folder = self._session_dir(room, session)

        def read() -> list[bytes]:
            records: list[bytes] = []
            for seq in self._activity_segments_of(folder):
                try:
                    data = self.fs.cat_file(f"{folder}/{seq:012d}{_SUFFIX}")
                except FileNotFoundError:
                    continue
                records.extend(decode_records(data).records)
            return records

        return await self._run(f"{room}: read activity log {session}", read)

    async def list_activity(self, room: str) -> list[str]:
        """The room's logged session ids, oldest first."""
        folder = f"{self._room_dir(room)}/activity"
        names = await self._run(f"{room}: list activity logs", self._ls_names, folder)
        return sorted(name for name in names if _SESSION.fullmatch(name))

    async def delete_activity(self, room: str, session: str) -> None:
        """Remove the session's log (no error if there is none)."""
        folder = self._session_dir(room, session)
        self.close_activity(room, session)

        def delete() -> None:
            self.fs.invalidate_cache(folder)
            if self.fs.exists(folder):
                self.fs.rm(folder, recursive=True)

        await self._run(f"{room}: delete activity log {session}", delete)
