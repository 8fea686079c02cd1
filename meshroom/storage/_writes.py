"""`DocumentWrites`: how `StorageExtension` writes one tracked document.

One writer task per changed document: it appends buffered updates to the log within
`flush_interval`, snapshots (compacts) after `debounce` but no later than `max_delay`, and
retries a failed write by the storage's `Backoff` without ever dropping what it holds.
Kept apart from the hooks (`_extension`) that decide which documents are tracked.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Any

import anyio
from pycrdt import merge_updates

from .._exceptions import StorageError
from ..server._document import unsettled_of
from ._tracked import TrackedDocument

if TYPE_CHECKING:
    from .._retry import Backoff
    from ._provider import StorageProvider

__all__ = ["DocumentWrites"]

logger = logging.getLogger("meshroom.storage")


class DocumentWrites:
    """The write side of `StorageExtension` (a base class: the settings live there)."""

    provider: StorageProvider
    debounce: float
    max_delay: float
    flush_interval: float
    store_attempts: int
    _backoff_policy: Backoff
    #: The server whose activity log hears of saves and failures (`attach_server`).
    _server: Any = None

    def _record(self, room: str, type: str, **fields: Any) -> None:
        """Record an activity event of `room` on the attached server (if any)."""
        if self._server is not None:
            self._server.record_activity(room, type, **fields)

    def _snapshot_due(self, document: TrackedDocument) -> float:
        if not document.dirty:
            return math.inf
        assert document.first_unsaved_at is not None
        return min(
            document.last_change_at + self.debounce,
            document.first_unsaved_at + self.max_delay,
        )

    async def _writer(self, document: TrackedDocument) -> None:
        """Flush the log when due and start snapshots when due, for one document.

        A snapshot runs in its own task, so log appends go on while it is written.
        """
        while not document.closed:
            log_due = math.inf
            if document.pending_since is not None:
                log_due = max(document.pending_since + self.flush_interval, document.log_retry_at)
            snapshot_due = math.inf
            if not document.compacting:
                snapshot_due = self._snapshot_due(document)
                if snapshot_due != math.inf:
                    snapshot_due = max(snapshot_due, document.snapshot_retry_at)
            due = min(log_due, snapshot_due)
            wake = document.wake = anyio.Event()
            if due == math.inf:
                await wake.wait()
                continue
            with anyio.move_on_after(due - anyio.current_time()):
                await wake.wait()
            if document.closed:
                return
            now = anyio.current_time()
            if now >= snapshot_due and not document.compacting:
                document.compacting = True
                assert self._tg is not None
                self._tg.start_soon(self._background_compact, document)
            if now >= log_due:
                try:
                    await self._flush(document)
                except Exception as error:
                    document.log_failures += 1
                    document.log_retry_at = self._backoff(document, "log", error)
                else:
                    if document.log_failures:
                        self._record(
                            document.room,
                            "storage.recovered",
                            path=document.path,
                            what="log",
                            after=document.log_failures,
                        )
                    document.log_failures = 0
                    document.log_retry_at = 0.0

    async def _background_compact(self, document: TrackedDocument) -> None:
        try:
            await self._compact(document)
        except Exception as error:
            document.snapshot_failures += 1
            document.snapshot_retry_at = self._backoff(document, "snapshot", error)
        else:
            if document.snapshot_failures:
                self._record(
                    document.room,
                    "storage.recovered",
                    path=document.path,
                    what="snapshot",
                    after=document.snapshot_failures,
                )
            document.snapshot_failures = 0
            document.snapshot_retry_at = 0.0
        finally:
            document.compacting = False
            document.wake.set()

    def _backoff(self, document: TrackedDocument, what: str, error: Exception) -> float:
        """Log a failed write; return when to try again."""
        failures = document.log_failures if what == "log" else document.snapshot_failures
        delay = self._backoff_policy.delay(failures)
        logger.warning(
            "storage: writing the %s of %s/%s failed (attempt %d, retry in %.2fs, "
            "%d updates buffered): %s",
            what,
            document.room,
            document.path,
            failures,
            delay,
            len(document.pending),
            error,
        )
        self._record(
            document.room,
            "storage.failed",
            path=document.path,
            what=what,
            attempt=failures,
            error=str(error).splitlines()[0][:200] if str(error) else type(error).__name__,
            buffered=len(document.pending),
        )
        return anyio.current_time() + delay

    async def _flush(self, document: TrackedDocument) -> None:
        journal = self.journal if document.journaled else None
        async with document.flush_lock:
            async with document.journal_lock:
                if not document.pending:
                    return
                if journal is not None:  # later appends go to segments this upload keeps
                    kept_from = await journal.rotate(document.room, document.path)
                batch, since = document.pending, document.pending_since
                document.pending, document.pending_since = [], None
            try:
                await self.provider.append_updates(
                    document.room, document.path, [update for _, update in batch]
                )
            except BaseException:
                document.pending[:0] = batch
                document.pending_since = since
                raise
            if journal is not None:
                await journal.drop(document.room, document.path, kept_from)

    async def _compact(self, document: TrackedDocument) -> None:
        async with document.compact_lock:
            if not document.dirty:
                return
            stored: list[bytes] = []
            if not document.loaded:
                stored = await self._read_stored(document)
            covered = document.changes
            size = 0

            unsettled = unsettled_of(document.doc)

            def encode() -> bytes:
                nonlocal covered, size
                covered = document.changes
                # with what waits for a gap: no change (so no log record) carried it yet
                state = unsettled.encode(document.doc)
                snapshot = merge_updates(*stored, state) if stored else state
                size = len(snapshot)
                return snapshot

            started = anyio.current_time()
            written: list[int] = []

            def measured() -> bytes:
                snapshot = encode()
                written.append(len(snapshot))
                return snapshot

            await self.provider.compact(document.room, document.path, measured)
            self._record(
                document.room,
                "document.saved",
                path=document.path,
                bytes=sum(written),
                ms=round((anyio.current_time() - started) * 1000, 2),
            )
            if document.saved is not None and not document.closed:
                document.saved(size, time.time())
            document.stored_changes = max(document.stored_changes, covered)
            # Buffered updates the snapshot covers need no log write any more.
            document.pending = [(n, u) for n, u in document.pending if n > covered]
            if not document.pending:
                document.pending_since = None
            document.first_unsaved_at = anyio.current_time() if document.dirty else None

    async def _read_stored(self, document: TrackedDocument) -> list[bytes]:
        """What is stored for a document that was never loaded (merged into its snapshot)."""
        stored = await self.provider.read_snapshot(document.room, document.path)
        records = await self.provider.read_log(document.room, document.path)
        return ([stored] if stored else []) + records

    async def _store_with_retries(self, document: TrackedDocument) -> None:
        for attempt in range(1, self.store_attempts + 1):
            try:
                await self._compact(document)
                document.snapshot_failures = 0
                document.snapshot_retry_at = 0.0
                return
            except Exception as error:
                document.snapshot_failures += 1
                document.snapshot_retry_at = self._backoff(document, "snapshot", error)
                if attempt == self.store_attempts:
                    raise StorageError(
                        f"could not store {document.room}/{document.path} "
                        f"after {attempt} attempts: {error}",
                        path=f"{document.room}/{document.path}",
                    ) from error
                await anyio.sleep(self._backoff_policy.delay(attempt))
