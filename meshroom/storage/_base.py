"""The fsspec plumbing shared by documents and files: paths, threads, atomic writes.

Every filesystem call is blocking (local, memory) or sync-wrapped (s3fs), so it
runs in a worker thread; failures come back as `StorageError` naming the room
and document, except `FileNotFoundError`, which callers act on.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread
import fsspec
from fsspec.core import url_to_fs

from .._exceptions import StorageError
from ._names import encode_component

__all__ = ["FsspecBase"]

T = TypeVar("T")

#: Filesystems whose single-object write replaces the object atomically.
_ATOMIC_PUT = {"memory", "s3", "s3a", "gs", "gcs", "abfs", "abfss", "az", "adl", "oss"}


class FsspecBase:
    """A root folder on an fsspec filesystem, with one folder per room."""

    def __init__(self, url: str, *, fsync: bool, **storage_options: Any) -> None:
        self.url = url
        fs, root = url_to_fs(url, **storage_options)
        self.fs: fsspec.AbstractFileSystem = fs
        self.root = root.rstrip("/") or "/"
        self.protocols = {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)
        self._local = bool(self.protocols & {"file", "local"})
        self._atomic_put = bool(self.protocols & _ATOMIC_PUT)
        self.fsync = fsync

    def _room_dir(self, room: str) -> str:
        return f"{self.root}/{encode_component(room)}"

    async def _run(self, what: str, func: Callable[..., T], *args: Any) -> T:
        """Run blocking filesystem work in a thread; wrap its failure in `StorageError`."""
        try:
            return await anyio.to_thread.run_sync(functools.partial(func, *args))
        except (StorageError, FileNotFoundError):
            raise
        except Exception as error:
            raise StorageError(f"{what} failed on {self.url}: {error!r}", path=what) from error

    def _ls_names(self, directory: str) -> list[str]:
        """Base names in `directory` ([] if it does not exist), bypassing listing caches."""
        self.fs.invalidate_cache(directory)
        try:
            entries = self.fs.ls(directory, detail=False)
        except FileNotFoundError:
            return []
        names = []
        for entry in entries:
            name = entry.rstrip("/").rsplit("/", 1)[-1]
            if name:
                names.append(name)
        return names

    def _put_atomic(self, target: str, data: bytes, tmp: str) -> None:
        """Write `data` to `target` so a reader sees the old or the new content, whole.

        Local folders (and filesystems of unknown kind) write `tmp` first and rename
        it over `target`; object stores replace an object atomically with one PUT.
        """
        parent = target.rsplit("/", 1)[0]
        if self._local:
            os.makedirs(parent, exist_ok=True)
            os.makedirs(tmp.rsplit("/", 1)[0], exist_ok=True)
            try:
                with open(tmp, "wb") as file:
                    file.write(data)
                    if self.fsync:
                        file.flush()
                        os.fsync(file.fileno())
                os.replace(tmp, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            if self.fsync:
                _fsync_dir(parent)
        elif self._atomic_put:
            self.fs.pipe_file(target, data)
        else:
            self.fs.makedirs(parent, exist_ok=True)
            self.fs.pipe_file(tmp, data)
            self.fs.mv(tmp, target)


def _fsync_dir(directory: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
