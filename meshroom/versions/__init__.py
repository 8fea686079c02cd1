"""Versions of documents: named and automatic checkpoints, diffs, restores.

A version is a full state of one document (a Yjs v1 update) with a name, a time, an
author and a reason, kept by the storage provider beside the document (`VersionStore`;
`FsspecStorage` has it). `Versions` saves, lists, reads, compares and restores them;
`VersionsExtension` makes the server save them by itself (a room session's end, before an
agent's edits, every few minutes of editing) and thins old automatic ones (`Retention`);
`version_routes` serves them over HTTP to holders of the room's admin grant. A restore is
a forward edit by `RestoreOrigin`: live clients converge without reloading, and the
``before-restore`` version it saves first undoes it.
"""

from __future__ import annotations

from ._client import VersionsClient
from ._extension import VersionsExtension
from ._http import version_routes
from ._model import Version, new_version_id
from ._restore import revert_update
from ._retention import Retention
from ._store import VersionNotFound, VersionStore, VersionsUnsupported, version_store
from ._versions import Restored, RestoreOrigin, Versions

__all__ = [
    "RestoreOrigin",
    "Restored",
    "Retention",
    "Version",
    "VersionNotFound",
    "VersionStore",
    "Versions",
    "VersionsClient",
    "VersionsExtension",
    "VersionsUnsupported",
    "new_version_id",
    "revert_update",
    "version_routes",
    "version_store",
]
