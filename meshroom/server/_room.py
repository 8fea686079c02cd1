"""A room: its live documents, its presence document, and the change pipeline to extensions.

A room is provisioned by the server on first use and kept while anything holds
it (a connection, a server-side `open_document`). On opening, it asks the
extensions which documents are stored (`on_list_documents`) for the room
document's `documents` map (`_directory`); the room document's first sync waits
for that list briefly, document connections not at all. Each document is loaded once
(`on_load_document`, in priority order) however many clients race to open it:
the first opener loads, the others wait on the same event. Accepted changes
are queued and handed to `on_change` hooks in order by the room's own task, so
a slow hook never delays the relay to clients.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import anyio
from anyio.abc import TaskStatus

from .._exceptions import MeshroomError
from ._activity import agent_event_of, new_session_id
from ._calls import RoomCalls
from ._deadlines import CallDeadlines
from ._directory import Directory
from ._document import LiveDocument
from ._hooks import (
    ChangePayload,
    DeleteDocumentPayload,
    DocumentInfo,
    Extension,
    ListDocumentsPayload,
    LoadDocumentPayload,
    StoreDocumentPayload,
)
from ._presence import Presence
from ._threads import RoomThreads

if TYPE_CHECKING:
    from ._activity import ActivityFeed
    from ._hooks import Access
    from ._peer import Peer
    from ._stats import ServerStats

__all__ = ["Room"]

log = logging.getLogger("meshroom.server")

StoreReason = Literal["room-close", "shutdown", "explicit"]

#: Seconds `store` waits for held updates to be written before it gives up (and the
#: server retries later, keeping the room open).
DURABLE_WAIT = 10.0
#: Seconds the room document's first sync waits for the list of stored documents, so that
#: a client reading `documents` right after its sync sees them (a slow store: later).
LISTING_WAIT = 2.0


def _listens(extension: Extension, hook_name: str = "on_change") -> bool:
    """Whether `extension` has a hook of its own (not the base class's no-op)."""
    hook = getattr(extension, hook_name, None)
    return getattr(hook, "__func__", None) is not getattr(Extension, hook_name)


class Room:
    """Live documents and presence of one room, in one server process."""

    def __init__(
        self,
        name: str,
        *,
        extensions: Sequence[Extension],
        max_messages: int,
        call_deadlines: CallDeadlines | None = None,
    ) -> None:
        self.name = name
        self._extensions = extensions
        self.documents: dict[str, LiveDocument] = {}
        self._loaded: dict[str, anyio.Event] = {}
        self._load_errors: dict[str, BaseException] = {}
        self.presence_document = LiveDocument(name, "", self._queue_change)
        self.presence = Presence(self.presence_document.doc, max_messages=max_messages)
        self.presence_document.start_relaying()
        #: The room document's `documents` map: stored and open documents, who has them.
        self.directory = Directory(self.presence)
        self._listed = anyio.Event()
        #: Toolkits offered in the room and the tool calls routed between participants.
        self.calls = RoomCalls(self.presence, deadlines=call_deadlines)
        self.calls.threads = RoomThreads(name, self.record)
        #: Connections and server-side handles keeping the room open.
        self.holders = 0
        #: How many times a holder let go (each release restarts the grace period).
        self.releases = 0
        self.closed = False
        #: This stay of the room in this process: the session its activity is logged in.
        self.session = new_session_id()
        #: Where the room's activity events go (`watch`; None: nowhere).
        self.activity: ActivityFeed | None = None
        #: Counters for a metrics exporter (the server sets them when one asks).
        self.stats: ServerStats | None = None
        self._watching: Any = None
        #: Extensions that implement `on_change`: with none, changes are not queued at all
        #: (no payload, no stream, no task wake-up per update).
        self._change_hooks = [extension for extension in extensions if _listens(extension)]
        send, receive = anyio.create_memory_object_stream[ChangePayload](math.inf)
        self._changes_send = send
        self._changes_receive = receive
        self._pending_changes = 0
        self._changes_idle = anyio.Event()
        self._changes_idle.set()
        #: Documents whose held updates wait for a journal write (see `LiveDocument.commit`).
        commits_send, commits_receive = anyio.create_memory_object_stream[LiveDocument](math.inf)
        self._commits_send = commits_send
        self._commits_receive = commits_receive

    # -- introspection ---------------------------------------------------------------------

    @property
    def sessions(self) -> list[Peer]:
        """Every open connection, over all documents of the room."""
        result = list(self.presence_document.sessions)
        for document in self.documents.values():
            result.extend(document.sessions)
        return result

    def participants(self) -> dict[str, dict[str, Any]]:
        """Participant id → {name, kind, joinedAt, attributes}, as clients see it."""
        return self.presence.snapshot()

    def document_paths(self) -> list[str]:
        return sorted(self.documents)

    def __repr__(self) -> str:
        return f"<Room {self.name!r} documents={len(self.documents)} holders={self.holders}>"

    # -- documents -------------------------------------------------------------------------

    async def open_document(self, path: str) -> LiveDocument:
        """The live document at `path` (``""``: the presence document), loaded once.

        Raises:
            Exception: whatever an `on_load_document` hook raised (nothing is kept;
                the next open tries again).
        """
        if path == "":
            with anyio.move_on_after(LISTING_WAIT):
                await self._listed.wait()
            return self.presence_document
        document = self.documents.get(path)
        if document is not None:
            await self._loaded[path].wait()
            if path in self.documents:
                return document
            raise self._load_errors.get(path) or RuntimeError(f"{path!r} failed to load")
        document = LiveDocument(self.name, path, self._queue_change)
        document.stats = self.stats
        document.report = self.record
        document.request_commit = self._commits_send.send_nowait
        loaded = anyio.Event()
        self.documents[path] = document
        self._loaded[path] = loaded
        try:
            payload = LoadDocumentPayload(
                room=self.name,
                path=path,
                doc=document.doc,
                document=document,
                saved=functools.partial(self.directory.saved, path),
            )
            for extension in self._extensions:
                await extension.on_load_document(payload)
        except BaseException as error:
            del self.documents[path]
            self._load_errors[path] = error
            raise
        finally:
            loaded.set()
        self._load_errors.pop(path, None)
        document.start_relaying()
        if self.activity is not None and self.activity.enabled:
            size = len(document.doc.get_update())
            kind = "document.created" if size <= 2 else "document.opened"
            self.record(kind, path=path, bytes=size)
        self.directory.loaded(path)
        log.debug("room %r: document %r loaded", self.name, path)
        return document

    async def list_stored(self) -> None:
        """Ask the extensions which documents are stored for this room; list them.

        Run once when the room opens (by the server, in a task of its own). A failing
        extension is logged and lists nothing: the room still opens.
        """
        self.directory.listing_started()
        infos: list[DocumentInfo] = []
        try:
            for extension in self._extensions:
                if not _listens(extension, "on_list_documents"):
                    continue
                try:
                    found = await extension.on_list_documents(ListDocumentsPayload(self.name))
                except Exception:
                    log.exception(
                        "on_list_documents of %s failed for %r", type(extension).__name__, self.name
                    )
                    continue
                infos.extend(found or ())
            if not self.closed:
                self.directory.stored(infos)
        finally:
            self._listed.set()

    async def wait_listed(self) -> None:
        """Wait until `list_stored` listed the stored documents (or gave up)."""
        await self._listed.wait()

    async def delete_document(self, path: str) -> None:
        """Remove `path`: from the extensions (`on_delete_document`), the room, `documents`.

        Raises:
            MeshroomError: someone has it open (a connection or a server-side handle).
            Exception: whatever an `on_delete_document` hook raised (the document stays
                listed; storage may hold it still).
        """
        holders = self.directory.holders(path)
        if holders:
            raise MeshroomError(
                f"document {path!r} of room {self.name!r} is open ({', '.join(holders)})"
            )
        document = self.documents.get(path)
        if document is not None:
            await self._loaded[path].wait()
            await document.durable()
        await self.drain_changes()  # a queued change would hand storage the old state
        payload = DeleteDocumentPayload(room=self.name, path=path)
        for extension in self._extensions:
            await extension.on_delete_document(payload)
        if self.directory.holders(path):
            # opened while the hooks ran: its live state stays (and is stored again)
            raise MeshroomError(f"document {path!r} of room {self.name!r} was opened meanwhile")
        document = self.documents.pop(path, None)
        self._loaded.pop(path, None)
        if document is not None:
            document.close()
        self.directory.deleted(path)
        log.info("room %r: document %r deleted", self.name, path)

    # -- activity --------------------------------------------------------------------------

    def watch(self, activity: ActivityFeed) -> None:
        """Report this room's activity to `activity`: joins, leaves, messages to agents."""
        self.activity = activity
        if not activity.enabled:
            return
        self.record("room.opened", process=activity.process)
        self.presence.on_participant = self._participant_changed
        self._watching = self.presence.messages.observe(self._messages_added)

    def record(self, type: str, **fields: Any) -> None:
        """Record an activity event of this room's session (nothing without a feed)."""
        if self.activity is not None:
            self.activity.record(self.name, type, session=self.session, **fields)

    def _participant_changed(self, access: Access, joined: bool) -> None:
        assert self.activity is not None
        self.record(
            "participant.joined" if joined else "participant.left",
            participant=access.participant_id,
            name=access.name,
            kind=access.kind,
            process=self.activity.process,
        )

    def _messages_added(self, event: Any) -> None:
        # Runs inside the room document's commit: must never raise.
        try:
            participants = self.presence.entries("participants")
            for part in event.delta:
                for item in part.get("insert", ()):
                    message = item.to_py() if hasattr(item, "to_py") else item
                    if isinstance(message, dict):
                        found = agent_event_of(message, participants)
                        if found is not None:
                            self.record(found[0], **found[1])
        except Exception:  # pragma: no cover - defensive: activity never breaks a write
            log.exception("reading the messages of room %r for activity failed", self.name)

    # -- changes ---------------------------------------------------------------------------

    def _queue_change(self, document: LiveDocument, update: bytes, origin: Any) -> None:
        if document.path == "" or not self._change_hooks:
            return  # the presence document is never stored; nobody listens
        payload = ChangePayload(
            room=self.name, path=document.path, doc=document.doc, update=update, origin=origin
        )
        self._pending_changes += 1
        if self._changes_idle.is_set():
            self._changes_idle = anyio.Event()
        self._changes_send.send_nowait(payload)

    async def run_changes(
        self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Until the room closes: journal writes as documents ask, and the `on_change` hooks.

        With no `on_change` hook there is nothing to run: no extension stores documents
        (storage listens to changes), so no document has a journal either.
        """
        if not self._change_hooks:
            self._changes_receive.close()
            self._commits_receive.close()
            task_status.started()
            return
        async with anyio.create_task_group() as group:
            group.start_soon(self._run_commits)
            task_status.started()
            await self._run_change_hooks()
            group.cancel_scope.cancel()

    async def _run_commits(self) -> None:
        """One commit task per document with held updates (documents write in parallel)."""
        async with self._commits_receive, anyio.create_task_group() as group:
            async for document in self._commits_receive:
                group.start_soon(document.commit)

    async def _run_change_hooks(self) -> None:
        """Hand queued changes to the `on_change` hooks, in order."""
        async with self._changes_receive:
            async for payload in self._changes_receive:
                for extension in self._change_hooks:
                    try:
                        await extension.on_change(payload)
                    except Exception:
                        log.exception(
                            "on_change of %s failed for %r/%r",
                            type(extension).__name__,
                            self.name,
                            payload.path,
                        )
                self._pending_changes -= 1
                if self._pending_changes == 0:
                    self._changes_idle.set()

    async def drain_changes(self) -> None:
        """Wait until every queued change went through the `on_change` hooks."""
        await self._changes_idle.wait()

    async def store(self, reason: StoreReason) -> None:
        """Store every document through `on_store_document`, in priority order.

        Raises:
            Exception: the first hook failure (the caller keeps the room and retries).
        """
        with anyio.fail_after(DURABLE_WAIT):  # storage down: the caller retries later
            for document in list(self.documents.values()):
                await document.durable()
        await self.drain_changes()
        for path, document in list(self.documents.items()):
            if not self._loaded[path].is_set():
                continue  # still loading: storing its empty state would overwrite the stored one
            payload = StoreDocumentPayload(
                room=self.name, path=path, doc=document.doc, reason=reason
            )
            for extension in self._extensions:
                await extension.on_store_document(payload)

    def close(self) -> None:
        """Stop the change pipeline and forget documents (after they were stored).

        Each document drops its `pycrdt.Doc` now (`LiveDocument.close`): the closed
        room's objects are only freed by the cyclic collector, which would keep every
        loaded document's native memory until its next full collection.
        """
        self.closed = True
        self._changes_send.close()
        self._commits_send.close()
        for path, document in self.documents.items():
            if self.activity is not None and self.activity.enabled:
                self.record("document.closed", path=path, bytes=len(document.doc.get_update()))
            document.close()
        if self._watching is not None:
            self.presence.messages.unobserve(self._watching)
            self._watching = None
        self.presence_document.stop_relaying()
        self.presence.close()
