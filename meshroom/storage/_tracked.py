"""The write state the storage extension keeps per open document, and log replay."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio
from pycrdt import Doc

from .._exceptions import StorageError
from ..server._document import unsettled_of

__all__ = ["STORAGE_ORIGIN", "TrackedDocument", "apply_all"]

logger = logging.getLogger("meshroom.storage")

#: Transaction origin of the updates `on_load_document` replays into a document.
STORAGE_ORIGIN = "meshroom.storage"


@dataclass(eq=False)
class TrackedDocument:
    """Write state of one open document."""

    room: str
    path: str
    doc: Doc
    #: False when changes arrived without `on_load_document`: snapshots then merge
    #: with what is stored instead of replacing it.
    loaded: bool
    #: (change number, update) not yet appended to the log.
    pending: list[tuple[int, bytes]] = field(default_factory=list)
    pending_since: float | None = None
    changes: int = 0
    stored_changes: int = 0
    first_unsaved_at: float | None = None
    last_change_at: float = 0.0
    log_failures: int = 0
    log_retry_at: float = 0.0
    snapshot_failures: int = 0
    snapshot_retry_at: float = 0.0
    compacting: bool = False
    #: The server writes its updates through `StorageExtension.journal` before relaying
    #: them, so `on_change` only schedules snapshots.
    journaled: bool = False
    closed: bool = False
    #: ``saved(size, modified)`` from the server (`LoadDocumentPayload.saved`): told after
    #: each snapshot, so the room document lists the document as stored, with its size.
    saved: Callable[[int, float], None] | None = None
    wake: anyio.Event = field(default_factory=anyio.Event)
    flush_lock: anyio.Lock = field(default_factory=anyio.Lock)
    #: Held while an update goes into the local journal and `pending` together, and while
    #: an upload rotates the journal and takes `pending`: the two never disagree.
    journal_lock: anyio.Lock = field(default_factory=anyio.Lock)
    compact_lock: anyio.Lock = field(default_factory=anyio.Lock)

    @property
    def dirty(self) -> bool:
        return self.changes != self.stored_changes


def apply_all(doc: Doc, snapshot: bytes | None, records: list[bytes], where: str) -> None:
    """Apply snapshot + log in one transaction; skip (and log) a record Yjs rejects.

    One by one rather than `merge_updates` first: merging 10k updates costs
    seconds, applying them in one transaction tens of milliseconds.

    Raises:
        StorageError: the snapshot is not a Yjs update. Loading stops with the
            document unchanged: serving it empty would let the next snapshot
            overwrite whatever the damaged file still holds.
    """
    if snapshot is None and not records:
        return
    if snapshot is not None:
        probe = Doc()
        try:
            probe.apply_update(snapshot)
        except Exception as error:
            raise StorageError(
                f"the snapshot of {where} is not a Yjs update ({error}); "
                "refusing to load it (nothing was changed)",
                path=where,
            ) from error
    # Through the doc's `Unsettled`: a snapshot can hold structs that waited for a gap
    # when it was taken; they wait again (and are applied as soon as the gap fills).
    unsettled = unsettled_of(doc)
    with doc.transaction(origin=STORAGE_ORIGIN):
        if snapshot is not None:
            unsettled.integrate(doc, snapshot)
        for index, update in enumerate(records):
            try:
                unsettled.integrate(doc, update)
            except Exception as error:
                logger.warning(
                    "storage: %s: skipped unreadable log record #%d: %s", where, index, error
                )
        unsettled.settle(doc)
