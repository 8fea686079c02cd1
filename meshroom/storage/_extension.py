"""`StorageExtension`: the server hooks that load, log and snapshot every document.

What happens to an update the server accepted:

1. it is appended to the document's log (fsynced on a local folder) *before*
   the server relays it to anyone: each document the server loads gets a
   journal (`LiveDocument.journal`), and the server holds an update until the
   journal wrote it, with every other update that arrived meanwhile in the same
   write (group commit). So an update any client has received survives a kill
   -9. With a `journal` (a remote store) that write goes to the local journal,
   and what it holds is uploaded to the provider within `flush_interval`
   (default 50 ms). Changes that reach `on_change` without a server-loaded
   document (a `StorageExtension` driven by hand), or whose provider does not
   outlive the process (memory://), are buffered instead and appended within
   `flush_interval`;
2. a snapshot is scheduled `debounce` seconds (default 1 s) after the last
   change, but no later than `max_delay` (default 10 s) after the first unsaved
   one, so a document under constant editing is still compacted regularly;
3. compaction encodes the document's full state and hands it to the provider,
   which writes it atomically and then drops the log it covers.

A failing write is logged and retried with exponential backoff (from
`retry_initial` to `retry_max`); buffered updates are never dropped, and
`on_store_document` raises while a document still holds unwritten changes, so
the server keeps the room open until they are safe.
"""

from __future__ import annotations

import contextlib
import enum
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio

from .._exceptions import StorageError
from .._retry import Backoff
from ..server._hooks import (
    ChangePayload,
    DeleteDocumentPayload,
    DocumentInfo,
    Extension,
    ListDocumentsPayload,
    LoadDocumentPayload,
    StoreDocumentPayload,
)
from ._journal import LocalJournal
from ._tracked import STORAGE_ORIGIN, TrackedDocument, apply_all
from ._writes import DocumentWrites

if TYPE_CHECKING:
    from anyio.abc import TaskGroup
    from pycrdt import Doc

    from ._provider import StorageProvider

__all__ = ["STORAGE_ORIGIN", "StorageExtension"]

logger = logging.getLogger("meshroom.storage")


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPENED = "opened"
    CLOSED = "closed"


class StorageExtension(DocumentWrites, Extension):
    """Persist every document of the server through a `StorageProvider`.

    ```py
    server = Server(extensions=[StorageExtension(FsspecStorage("./rooms"))])
    ```

    Use it as an async context manager when driving it without a server
    (``async with StorageExtension(provider) as storage:``).

    Args:
        provider: where snapshots and logs go (`FsspecStorage` or your own).
        debounce: seconds of quiet after the last change before a snapshot
            (default 1.0: one write per burst of typing).
        max_delay: longest time a change waits for its snapshot under constant
            editing (default 10.0: bounds the log's length and load time).
        flush_interval: longest time an update that was not written before it was
            relayed waits before it is appended to the provider's log (default 0.05):
            how often what a `journal` holds is uploaded, and how long changes wait
            that reach `on_change` without a server-loaded document, or whose provider
            is not durable (memory://). A server-loaded document's updates on a
            durable provider are in its log before anyone sees them, whatever this is.
        retry_initial: first backoff after a failed write (default 0.1 s), doubling
        retry_max: up to this many seconds between attempts (default 5.0).
        store_attempts: attempts `on_store_document` makes before it raises
            (default 3; the server retries later and keeps the room open).
        journal: a `LocalJournal` for a remote store: updates are made durable on the
            local disk before they are relayed and uploaded in the background; what
            was not uploaded when the process stopped is uploaded at the next start.
    """

    priority = 1000  # load documents before other extensions see them

    def __init__(
        self,
        provider: StorageProvider,
        *,
        debounce: float = 1.0,
        max_delay: float = 10.0,
        flush_interval: float = 0.05,
        retry_initial: float = 0.1,
        retry_max: float = 5.0,
        store_attempts: int = 3,
        journal: LocalJournal | None = None,
    ) -> None:
        if not 0 <= debounce <= max_delay:
            raise ValueError(f"need 0 <= debounce <= max_delay, got {debounce} and {max_delay}")
        if flush_interval < 0 or retry_initial <= 0 or retry_max < retry_initial:
            raise ValueError("flush_interval >= 0 and 0 < retry_initial <= retry_max are required")
        if store_attempts < 1:
            raise ValueError("store_attempts must be at least 1")
        self.provider = provider
        self.debounce = debounce
        self.max_delay = max_delay
        self.flush_interval = flush_interval
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self._backoff_policy = Backoff(initial=retry_initial, maximum=retry_max, jitter=0.0)
        self.store_attempts = store_attempts
        self.journal = journal
        self._docs: dict[tuple[str, str], TrackedDocument] = {}
        self._state = _State.UNOPENED
        self._exit_stack: contextlib.AsyncExitStack | None = None
        self._tg: TaskGroup | None = None

    # -- lifecycle -------------------------------------------------------------

    async def __aenter__(self) -> StorageExtension:
        await self.on_startup()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.on_shutdown()

    async def on_startup(self) -> None:
        """Open the task group that owns every document's writer task."""
        if self._state is not _State.UNOPENED:
            raise RuntimeError("a StorageExtension cannot be started more than once")
        if self.journal is not None:
            await self._upload_journal(self.journal)
        async with contextlib.AsyncExitStack() as stack:
            self._tg = await stack.enter_async_context(anyio.create_task_group())
            self._exit_stack = stack.pop_all()
        self._state = _State.OPENED

    async def on_shutdown(self) -> None:
        """Write every document that still holds changes, then stop the writers.

        Raises:
            StorageError: some documents could not be written (after retries).
        """
        if self._state is not _State.OPENED:
            return
        failed = []
        for document in list(self._docs.values()):
            try:
                await self._store_with_retries(document)
            except StorageError as error:
                failed.append(f"{document.room}/{document.path}: {error}")
        self._state = _State.CLOSED
        kept = sum(len(d.pending) for d in self._docs.values() if d.journaled)
        for document in self._docs.values():
            document.closed = True
            document.wake.set()
        self._docs.clear()
        assert self._exit_stack is not None and self._tg is not None
        self._tg.cancel_scope.cancel()
        await self._exit_stack.aclose()
        if self.journal is not None:
            self.journal.close()
            if failed:
                logger.warning(
                    "storage: %d updates could not be uploaded (%s); they are kept in the "
                    "journal %s and uploaded at the next start",
                    kept,
                    "; ".join(failed),
                    self.journal.folder,
                )
                return
        if failed:
            logger.error("storage: unwritten documents at shutdown: %s", "; ".join(failed))
            raise StorageError("could not write documents at shutdown: " + "; ".join(failed))

    # -- hooks -----------------------------------------------------------------

    async def on_load_document(self, payload: LoadDocumentPayload) -> None:
        """Replay the stored snapshot and log into `payload.doc`.

        Raises:
            StorageError: storage cannot be read; the document must not be served
                (an empty document would later overwrite the stored one).
        """
        self._check_open()
        key = (payload.room, payload.path)
        previous = self._docs.get(key)
        if previous is not None and previous.doc is not payload.doc:
            await self._store_with_retries(previous)
            self._forget(previous)
        snapshot = await self.provider.read_snapshot(payload.room, payload.path)
        records = await self.provider.read_log(payload.room, payload.path)
        apply_all(payload.doc, snapshot, records, f"{payload.room}/{payload.path}")
        document = self._track(payload.room, payload.path, payload.doc, loaded=True)
        document.saved = payload.saved
        live = payload.document
        durable = getattr(self.provider, "durable", True)  # memory://: nothing to wait for
        if durable and live is not None and hasattr(live, "journal"):
            document.journaled = True
            if self.journal is not None:
                live.journal = self._journal_locally(document, self.journal)
            else:
                live.journal = self._journal(payload.room, payload.path)
        if records:
            # Fold the replayed log into a snapshot at the next quiet moment.
            self._mark_changed(document)

    async def on_change(self, payload: ChangePayload) -> None:
        """Buffer the update for the log and schedule the snapshot (never blocks)."""
        self._check_open()
        if payload.origin == STORAGE_ORIGIN or not payload.update:
            return
        key = (payload.room, payload.path)
        document = self._docs.get(key)
        if document is None or document.doc is not payload.doc:
            document = self._track(payload.room, payload.path, payload.doc, loaded=False)
        if document.journaled:
            self._mark_changed(document)  # already in the log: only a snapshot is due
            return
        if not document.pending:
            document.pending_since = anyio.current_time()
        self._mark_changed(document)
        document.pending.append((document.changes, bytes(payload.update)))

    async def on_store_document(self, payload: StoreDocumentPayload) -> None:
        """Write the document now (room close, shutdown or an explicit save).

        Raises:
            StorageError: the write failed `store_attempts` times; the changes stay
                buffered and the writer keeps retrying in the background.
        """
        self._check_open()
        document = self._docs.get((payload.room, payload.path))
        if document is None or document.doc is not payload.doc:
            return
        await self._store_with_retries(document)
        if payload.reason != "explicit":
            self._forget(document)

    async def on_list_documents(self, payload: ListDocumentsPayload) -> list[DocumentInfo]:
        """The room's stored documents, with their sizes and last writes where the
        provider can tell (`FsspecStorage.stat_documents`; any provider lists paths).

        Raises:
            StorageError: the store cannot be listed (the room opens; nothing is listed).
        """
        stat = getattr(self.provider, "stat_documents", None)
        if stat is not None:
            return list(await stat(payload.room))
        paths = await self.provider.list_documents(payload.room)
        return [DocumentInfo(path) for path in paths]

    async def on_delete_document(self, payload: DeleteDocumentPayload) -> None:
        """Drop what is buffered for the document and remove its snapshot and log.

        Waits for a write in flight first, so that it cannot bring the document back.

        Raises:
            StorageError: the provider could not delete it.
        """
        self._check_open()
        document = self._docs.get((payload.room, payload.path))
        if document is not None:
            self._forget(document)
            async with document.compact_lock, document.flush_lock, document.journal_lock:
                document.pending.clear()
        if self.journal is not None:  # edits not uploaded yet would come back at the next start
            before = await self.journal.rotate(payload.room, payload.path)
            await self.journal.drop(payload.room, payload.path, before)
        await self.provider.delete(payload.room, payload.path)

    # -- public helpers ----------------------------------------------------------

    def attach_server(self, server: Any) -> None:
        """Report saves and storage failures to `server`'s activity (the server calls it)."""
        self._server = server

    def pending_bytes(self) -> int:
        """Bytes of updates buffered and not yet in a log (a metrics gauge)."""
        return sum(len(update) for doc in self._docs.values() for _, update in doc.pending)

    async def flush(self) -> None:
        """Append every buffered update to its log now (tests, benchmarks, checkpoints)."""
        for document in list(self._docs.values()):
            await self._flush(document)

    def unsaved(self) -> list[tuple[str, str]]:
        """(room, path) of every document holding changes not yet in a snapshot."""
        return [key for key, doc in self._docs.items() if doc.dirty or doc.pending]

    def _journal(self, room: str, path: str) -> Callable[[list[bytes]], Awaitable[None]]:
        """Append a batch of a server-loaded document's updates to its log, durably."""
        provider = self.provider

        async def journal(updates: list[bytes]) -> None:
            await provider.append_updates(room, path, updates)

        return journal

    def _journal_locally(
        self, document: TrackedDocument, journal: LocalJournal
    ) -> Callable[[list[bytes]], Awaitable[None]]:
        """Append to the local journal, durably; the writer uploads it later."""

        async def write(updates: list[bytes]) -> None:
            async with document.journal_lock:
                await journal.append(document.room, document.path, updates)
                if not document.pending:
                    document.pending_since = anyio.current_time()
                self._mark_changed(document)
                document.pending.extend((document.changes, update) for update in updates)

        return write

    async def _upload_journal(self, journal: LocalJournal) -> None:
        """Write what a previous process left in the journal to the store, then drop it.

        Raises:
            StorageError: the store refused it; serving now could show documents
                without those edits, so the server does not start.
        """
        for room, path, updates in await journal.pending():
            before = await journal.rotate(room, path)
            try:
                await self.provider.append_updates(room, path, updates)
            except Exception as error:
                raise StorageError(
                    f"{len(updates)} journaled updates of {room}/{path} could not be "
                    f"written to storage (they stay in {journal.folder}): {error}",
                    path=f"{room}/{path}",
                ) from error
            await journal.drop(room, path, before)
            logger.info("storage: uploaded %d journaled updates of %s/%s", len(updates), room, path)

    # -- internals ---------------------------------------------------------------

    def _check_open(self) -> None:
        if self._state is not _State.OPENED:
            raise RuntimeError(
                "StorageExtension is not running: the server calls on_startup(), "
                "or use `async with StorageExtension(provider):`"
            )

    def _track(self, room: str, path: str, doc: Doc, *, loaded: bool) -> TrackedDocument:
        previous = self._docs.get((room, path))
        if previous is not None:
            self._forget(previous)
        document = TrackedDocument(room, path, doc, loaded=loaded)
        self._docs[(room, path)] = document
        assert self._tg is not None
        self._tg.start_soon(self._writer, document)
        return document

    def _forget(self, document: TrackedDocument) -> None:
        document.closed = True
        document.wake.set()
        if self._docs.get((document.room, document.path)) is document:
            del self._docs[(document.room, document.path)]

    def _mark_changed(self, document: TrackedDocument) -> None:
        now = anyio.current_time()
        if not document.dirty:
            document.first_unsaved_at = now
        document.changes += 1
        document.last_change_at = now
        document.wake.set()
