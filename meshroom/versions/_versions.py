"""`Versions`: save, list, read, compare and restore the versions of documents.

One object for every way in (Python, the CLI, HTTP, agent tools), so each applies the
same rules. With a `server`, the state of "now" is the live document's (what every client
sees, unsaved edits included) and a restore is an edit of the live document; without one
(``meshroom version --storage`` while no server runs) both go through the provider's
snapshot and log.

```py
versions = Versions(FsspecStorage("./rooms"), server=server)
saved = await versions.save("team", "notes/plan.md", "before the review", author="ann")
changes = await versions.diff("team", "notes/plan.md", saved.id)     # against now
restored = await versions.restore("team", "notes/plan.md", saved.id, author="ann")
await versions.restore("team", "notes/plan.md", restored.before.id)  # undoes the restore
```
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
from pycrdt import merge_updates

from meshdoc import MeshDocument
from meshdoc.diff import DocumentDiff, diff_documents, render_document

from ..protocol._names import validate_path, validate_room
from ._model import Reason, Version, new_version_id, state_digest
from ._restore import DEFAULT_ROOTS, revert_update
from ._retention import Retention
from ._store import VersionNotFound, version_store

__all__ = ["RestoreOrigin", "Restored", "Versions"]

logger = logging.getLogger("meshroom.versions")

#: What a version reference may say besides an id, a prefix of one or a name.
LATEST = "latest"
NOW = "now"


@dataclass(frozen=True)
class RestoreOrigin:
    """The transaction origin of a restore: observers and undo managers know it by this."""

    version: str
    author: str | None = None


@dataclass(frozen=True)
class Restored:
    """What a restore did."""

    #: The version the document was brought back to.
    version: Version
    #: The automatic version of the document just before: restore it to undo the restore.
    before: Version
    #: Bytes of the forward edit that did it.
    update_bytes: int


class Versions:
    """The versions of every document of a storage provider (see the module docstring).

    Args:
        store: a provider with the `VersionStore` methods (`FsspecStorage` has them).
        server: the running `Server` whose live documents "now" and restores use; None
            to work on stored documents only (no server may be writing them).
        retention: how automatic versions are thinned after each new one (None: never).
        fragment: the documents' root fragment name (what editors bind to).

    Raises:
        VersionsUnsupported: `store` keeps no versions.
    """

    def __init__(
        self,
        store: Any,
        *,
        server: Any = None,
        retention: Retention | None = None,
        fragment: str = "default",
    ) -> None:
        self.store = version_store(store)
        self.provider = store
        self.server = server
        self.retention = retention
        self.fragment = fragment
        self._locks: dict[tuple[str, str], anyio.Lock] = {}
        #: The digest of each document's newest version, once known (skips unchanged ones).
        self._latest: dict[tuple[str, str], str] = {}

    @property
    def roots(self) -> Mapping[str, type]:
        if self.fragment == "default":
            return DEFAULT_ROOTS
        values = list(DEFAULT_ROOTS.values())
        return {self.fragment: values[0], f"{self.fragment}:attributes": values[1]}

    def _lock(self, room: str, path: str) -> anyio.Lock:
        return self._locks.setdefault((room, path), anyio.Lock())

    # -- reading ---------------------------------------------------------------------------

    async def list(self, room: str, path: str) -> list[Version]:
        """The document's versions, oldest first (an unreadable record is skipped, logged).

        Raises:
            RoomNameError: bad room name or path.
        """
        validate_room(room)
        validate_path(path)
        found = []
        for version_id, meta in await self.store.list_versions(room, path):
            try:
                found.append(Version.decode(room, path, version_id, meta))
            except ValueError as error:
                logger.warning("%s/%s: version %s is unreadable: %s", room, path, version_id, error)
        found.sort(key=lambda version: (version.time, version.id))
        if found:
            self._latest[(room, path)] = found[-1].digest
        return found

    async def get(self, room: str, path: str, ref: str) -> Version:
        """The version `ref` names: an id, a unique prefix of one, a name (its newest
        version), or ``latest``.

        Raises:
            VersionNotFound: none matches, or a prefix matches several.
        """
        versions = await self.list(room, path)
        if not versions:
            raise VersionNotFound(f"{room}/{path} has no versions")
        if ref == LATEST:
            return versions[-1]
        for version in versions:
            if version.id == ref:
                return version
        named = [version for version in versions if version.name == ref]
        if named:
            return named[-1]
        matches = [version for version in versions if version.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise VersionNotFound(f"{ref!r} names {len(matches)} versions of {room}/{path}")
        raise VersionNotFound(f"{room}/{path} has no version {ref!r}")

    async def read(self, room: str, path: str, ref: str) -> tuple[Version, bytes]:
        """The version `ref` names and its state (a Yjs v1 update).

        Raises:
            VersionNotFound: no such version.
        """
        version = await self.get(room, path, ref)
        try:
            return version, await self.store.read_version(room, path, version.id)
        except FileNotFoundError:
            raise VersionNotFound(f"{room}/{path}: version {version.id} is gone") from None

    async def document(self, room: str, path: str, ref: str, schema: Any = None) -> MeshDocument:
        """The version `ref` names (or ``now``) as a `MeshDocument` (a copy: edits stay in it)."""
        if ref == NOW:
            state = await self.current_state(room, path)
        else:
            _, state = await self.read(room, path, ref)
        return MeshDocument.from_update(schema, state, fragment=self.fragment)

    async def markdown(self, room: str, path: str, ref: str) -> str:
        """The version `ref` names (or ``now``) as Markdown."""
        return render_document(await self.document(room, path, ref))

    async def current_state(self, room: str, path: str) -> bytes:
        """The document's state now: the live one with a server, else the stored one."""
        validate_room(room)
        validate_path(path)
        if self.server is not None:
            async with self.server.open_document(room, path) as live:
                return live.get_update()
        return await self._stored_state(room, path)

    async def _stored_state(self, room: str, path: str) -> bytes:
        snapshot = await self.provider.read_snapshot(room, path)
        records = await self.provider.read_log(room, path)
        parts = ([snapshot] if snapshot else []) + list(records)
        if not parts:
            return MeshDocument(None, fragment=self.fragment).get_update()
        return merge_updates(*parts) if len(parts) > 1 else parts[0]

    # -- saving ----------------------------------------------------------------------------

    async def save(
        self,
        room: str,
        path: str,
        name: str | None = None,
        *,
        author: str | None = None,
        reason: Reason = "named",
        detail: str | None = None,
        state: bytes | None = None,
        skip_unchanged: bool = False,
    ) -> Version | None:
        """Save the document's state (now, or `state`) as a version; return it.

        Durable when it returns: a crash afterwards keeps it, a crash before keeps no
        part of it. Automatic versions (`reason` other than ``named``) thin out older
        ones by `retention` afterwards.

        Args:
            name: what to call it (automatic versions get one saying why).
            skip_unchanged: save nothing (return None) if the state is the newest
                version's (the automatic versions of a document nobody edited).

        Raises:
            StorageError: the store could not write it (nothing is listed).
        """
        validate_room(room)
        validate_path(path)
        if state is None:
            state = await self.current_state(room, path)
        digest = await anyio.to_thread.run_sync(state_digest, state)
        key = (room, path)
        async with self._lock(room, path):
            if skip_unchanged:
                if key not in self._latest:
                    await self.list(room, path)
                if self._latest.get(key) == digest:
                    return None
            version = Version(
                id=new_version_id(),
                room=room,
                path=path,
                name=name or _automatic_name(reason, detail),
                time=time.time(),
                reason=reason,
                author=author,
                bytes=len(state),
                digest=digest,
                detail=detail,
            )
            await self.store.write_version(room, path, version.id, version.encode(), state)
            self._latest[key] = digest
        self._record(room, "version.saved", path=path, version=version.id, reason=reason)
        if version.automatic and self.retention is not None:
            try:
                await self.prune(room, path)
            except Exception:
                logger.exception("%s/%s: thinning old versions failed", room, path)
        return version

    async def prune(self, room: str, path: str, *, now: float | None = None) -> list[Version]:
        """Delete the automatic versions `retention` no longer keeps; return them."""
        if self.retention is None:
            return []
        versions = await self.list(room, path)
        doomed = self.retention.expired(versions, time.time() if now is None else now)
        for version in doomed:
            await self.store.delete_version(room, path, version.id)
        unlisted = getattr(self.store, "list_unlisted_versions", None)
        if unlisted is not None:  # state files a crash left without their metadata
            listed = {version.id for version in versions}
            for version_id in await unlisted(room, path):
                if version_id not in listed:
                    await self.store.delete_version(room, path, version_id)
        return doomed

    # -- comparing -------------------------------------------------------------------------

    async def diff(self, room: str, path: str, a: str, b: str = NOW) -> DocumentDiff:
        """What changed from version `a` to version `b` (default: the document now)."""
        before = await self.document(room, path, a)
        after = await self.document(room, path, b)
        names = (
            a if a == NOW else (await self.get(room, path, a)).id,
            b if b == NOW else (await self.get(room, path, b)).id,
        )
        return await anyio.to_thread.run_sync(
            lambda: diff_documents(before, after, before_name=names[0], after_name=names[1])
        )

    # -- restoring -------------------------------------------------------------------------

    async def restore(
        self, room: str, path: str, ref: str, *, author: str | None = None
    ) -> Restored:
        """Bring the document back to version `ref`, by a forward edit.

        First the state now is saved as a ``before-restore`` version (restore that one to
        undo this). The edit then reverts exactly that state: every edit the document had
        when the restore began is undone; edits that reach it while the restore is
        computed, or from clients that had not seen it yet, are kept and merge on top.
        With a server, the edit goes to the live document (origin `RestoreOrigin`) and
        every client converges without reloading; without one, it is appended to the
        stored log.

        Raises:
            VersionNotFound: no such version.
            StorageError: the state now could not be saved (nothing was changed).
        """
        version, target = await self.read(room, path, ref)
        origin = RestoreOrigin(version.id, author)
        if self.server is not None:
            async with self.server.open_document(room, path, fragment=self.fragment) as live:
                current = live.get_update()
                before = await self._save_before(room, path, current, version, author)
                update = await anyio.to_thread.run_sync(revert_update, current, target, self.roots)
                live.apply_update(update, origin=origin)
        else:
            current = await self._stored_state(room, path)
            before = await self._save_before(room, path, current, version, author)
            update = await anyio.to_thread.run_sync(revert_update, current, target, self.roots)
            await self.provider.append_updates(room, path, [update])
        self._record(room, "version.restored", path=path, version=version.id, before=before.id)
        return Restored(version, before, len(update))

    async def _save_before(
        self, room: str, path: str, state: bytes, version: Version, author: str | None
    ) -> Version:
        saved = await self.save(
            room, path, author=author, reason="before-restore", detail=version.id, state=state
        )
        assert saved is not None
        return saved

    def _record(self, room: str, type: str, **fields: Any) -> None:
        if self.server is not None and hasattr(self.server, "record_activity"):
            self.server.record_activity(room, type, **fields)


def _automatic_name(reason: Reason, detail: str | None) -> str:
    if reason == "session-end":
        return "end of session"
    if reason == "agent-run":
        return f"before {detail}'s edits" if detail else "before an agent's edits"
    if reason == "interval":
        return "while editing"
    if reason == "before-restore":
        return f"before restoring {detail}" if detail else "before a restore"
    return "version"
