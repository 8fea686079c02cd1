"""`FsspecVersionArea`: the saved versions of each document, beside the room's documents.

Layout under the root URL, one folder per document, apart from the document's own folder::

    {root}/{room}/versions/{document path}.ydoc/{id}.yjs    the full state, one Yjs v1 update
    {root}/{room}/versions/{document path}.ydoc/{id}.json   its name, time, author, reason

Apart, so that nothing that maintains a document touches its versions: compaction drops
log segments in ``docs/``, deleting a document removes its ``docs/`` folder, and both
leave ``versions/`` as it is (a deleted document can be brought back from a version).

A version is written state first, then its metadata, each atomically (temp file, fsync,
rename on a local folder; one PUT on an object store), and it exists once its metadata
does: a process killed between the two leaves a state file without metadata, which
listing ignores and `delete_version` (retention) removes. The state is readable by any
Yjs library as it is (``Y.applyUpdate``).
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

from .._exceptions import RoomNameError
from ._base import FsspecBase
from ._names import encode_document_path

__all__ = ["FsspecVersionArea", "validate_version_id"]

_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_.-]{0,99}")
_STATE = ".yjs"
_META = ".json"


def validate_version_id(version_id: str) -> str:
    """Check a version id names one file (letters, digits, ``-_.``), and return it.

    Raises:
        RoomNameError: it does not.
    """
    if not isinstance(version_id, str) or _ID.fullmatch(version_id) is None:
        raise RoomNameError(f"{version_id!r} is not a version id", name=str(version_id))
    return version_id


class FsspecVersionArea(FsspecBase):
    """Versions of documents on an fsspec filesystem (see the module docstring)."""

    def _versions_dir(self, room: str, path: str) -> str:
        return f"{self._room_dir(room)}/versions/{encode_document_path(path)}"

    async def write_version(
        self, room: str, path: str, version_id: str, meta: bytes, state: bytes
    ) -> None:
        """Store a version durably: once this returns, it is listed and readable, whole.

        A crash before it returns leaves no version (at most an unlisted state file).
        """
        folder = self._versions_dir(room, path)
        validate_version_id(version_id)
        tmp_dir = f"{self._room_dir(room)}/tmp"

        def write() -> None:
            self._put_atomic(
                f"{folder}/{version_id}{_STATE}", bytes(state), f"{tmp_dir}/{version_id}{_STATE}"
            )
            self._put_atomic(
                f"{folder}/{version_id}{_META}", bytes(meta), f"{tmp_dir}/{version_id}{_META}"
            )

        await self._run(f"{room}/{path}: write version {version_id}", write)

    async def read_version(self, room: str, path: str, version_id: str) -> bytes:
        """The version's state (a Yjs v1 update).

        Raises:
            FileNotFoundError: there is no such version.
        """
        folder = self._versions_dir(room, path)
        validate_version_id(version_id)

        def read() -> bytes:
            if not self.fs.exists(f"{folder}/{version_id}{_META}"):
                raise FileNotFoundError(f"{room}/{path}: no version {version_id}")
            return self.fs.cat_file(f"{folder}/{version_id}{_STATE}")

        return await self._run(f"{room}/{path}: read version {version_id}", read)

    async def list_versions(self, room: str, path: str) -> list[tuple[str, bytes]]:
        """(id, metadata) of the document's versions, oldest id first."""
        folder = self._versions_dir(room, path)

        def find() -> list[tuple[str, bytes]]:
            names = set(self._ls_names(folder))
            ids = sorted(
                name[: -len(_META)]
                for name in names
                if name.endswith(_META) and f"{name[: -len(_META)]}{_STATE}" in names
            )
            if not ids:
                return []
            paths = [f"{folder}/{version_id}{_META}" for version_id in ids]
            contents: dict[str, Any] = self.fs.cat(paths, on_error="omit")
            if len(paths) == 1 and not isinstance(contents, dict):
                contents = {paths[0]: contents}
            found = []
            for version_id, meta_path in zip(ids, paths, strict=True):
                data = contents.get(meta_path)
                if data is None:
                    data = contents.get(self.fs._strip_protocol(meta_path))
                if data is not None:
                    found.append((version_id, bytes(data)))
            return found

        return await self._run(f"{room}/{path}: list versions", find)

    async def list_unlisted_versions(self, room: str, path: str) -> list[str]:
        """Ids of state files without metadata (a write a crash interrupted)."""
        folder = self._versions_dir(room, path)

        def find() -> list[str]:
            names = set(self._ls_names(folder))
            return sorted(
                name[: -len(_STATE)]
                for name in names
                if name.endswith(_STATE) and f"{name[: -len(_STATE)]}{_META}" not in names
            )

        return await self._run(f"{room}/{path}: list versions", find)

    async def delete_version(self, room: str, path: str, version_id: str) -> None:
        """Remove a version (metadata first, so it is never listed without its state)."""
        folder = self._versions_dir(room, path)
        validate_version_id(version_id)

        def delete() -> None:
            for suffix in (_META, _STATE):
                target = f"{folder}/{version_id}{suffix}"
                with contextlib.suppress(FileNotFoundError):
                    self.fs.rm_file(target)

        await self._run(f"{room}/{path}: delete version {version_id}", delete)
