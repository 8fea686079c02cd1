"""The room's file area on fsspec: ``{root}/{room}/files/{name}``, apart from documents.

Agents' storage tools and people's uploads live here. Names are validated
(`validate_file_name`), so nothing can reach outside the room's ``files/``
folder, and listing never shows document snapshots or logs.
"""

from __future__ import annotations

import uuid

from ._base import FsspecBase
from ._names import validate_file_name

__all__ = ["FsspecFileArea"]


class FsspecFileArea(FsspecBase):
    """The `FileStore` methods of `FsspecStorage`."""

    def _files_dir(self, room: str) -> str:
        return f"{self._room_dir(room)}/files"

    async def list_files(self, room: str, prefix: str = "") -> list[str]:
        base = self._files_dir(room)
        if prefix:
            prefix = validate_file_name(prefix.rstrip("/")) + ("/" if prefix.endswith("/") else "")

        def find() -> list[str]:
            self.fs.invalidate_cache(base)
            try:
                found = self.fs.find(base)
            except FileNotFoundError:
                return []
            stripped = self.fs._strip_protocol(base).rstrip("/") + "/"
            names = []
            for entry in found:
                entry = self.fs._strip_protocol(entry)
                if entry.startswith(stripped):
                    names.append(entry[len(stripped) :])
            return sorted(n for n in names if n.startswith(prefix))

        return await self._run(f"{room}: list files", find)

    async def read_file(self, room: str, name: str) -> bytes:
        target = f"{self._files_dir(room)}/{validate_file_name(name)}"
        return await self._run(f"{room}: read file {name}", self.fs.cat_file, target)

    async def write_file(self, room: str, name: str, data: bytes) -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"file data must be bytes, not {type(data).__name__}")
        target = f"{self._files_dir(room)}/{validate_file_name(name)}"
        tmp = f"{self._room_dir(room)}/tmp/{uuid.uuid4().hex}.tmp"
        await self._run(f"{room}: write file {name}", self._put_atomic, target, bytes(data), tmp)

    async def delete_file(self, room: str, name: str) -> None:
        target = f"{self._files_dir(room)}/{validate_file_name(name)}"

        def delete() -> None:
            self.fs.invalidate_cache(target.rsplit("/", 1)[0])
            if not self.fs.isfile(target):
                raise FileNotFoundError(f"no file {name!r} in room {room!r}")
            self.fs.rm_file(target)

        await self._run(f"{room}: delete file {name}", delete)
