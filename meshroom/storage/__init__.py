"""Storage for meshroom documents: providers and the server extension that uses them.

``FsspecStorage`` keeps snapshots and update logs on any fsspec filesystem;
``StorageExtension`` plugs a provider into the server so that every accepted
update is in the document's log before it is relayed, and folded into a
snapshot when the document is quiet, when the room closes and when the server
shuts down; ``LocalJournal`` puts a local write-ahead journal in front of a
remote store, so edits wait for the local disk only. ``probe_storage``
checks a URL stores at all before a server trusts it with edits.
"""

from __future__ import annotations

from ._extension import StorageExtension as StorageExtension
from ._fsspec import FsspecStorage as FsspecStorage
from ._journal import LocalJournal as LocalJournal
from ._log import decode_records as decode_records
from ._log import encode_record as encode_record
from ._names import validate_file_name as validate_file_name
from ._probe import open_storage as open_storage
from ._probe import probe_storage as probe_storage
from ._probe import storage_url as storage_url
from ._provider import FileStore as FileStore
from ._provider import SnapshotSource as SnapshotSource
from ._provider import StorageProvider as StorageProvider
from ._tracked import STORAGE_ORIGIN as STORAGE_ORIGIN

__all__ = [
    "STORAGE_ORIGIN",
    "FileStore",
    "FsspecStorage",
    "LocalJournal",
    "SnapshotSource",
    "StorageExtension",
    "StorageProvider",
    "decode_records",
    "encode_record",
    "open_storage",
    "probe_storage",
    "storage_url",
    "validate_file_name",
]
