"""`RedisExtension`: several server processes serve the same documents through Redis Streams.

Like y-redis and Hocuspocus' Redis extension, any process can serve any room:

- every document has a stream; a process that opens a document late replays it,
  and one reader task per process follows the streams of every open document
  (see `_reader`), so a process that joins, or restarts after a crash, catches up;
- an update accepted here is durable before anyone sees it: a process that does
  not write the document to storage appends it to the stream first (`_journal`);
  the document's writer logs it to storage first and publishes it right after;
- every document edited anywhere is written to storage by one process with
  storage, chosen per document and taken over when it dies (`_writer`, `_lease`);
- awareness travels in a second, capped stream per document (see `_awareness`);
- each room's participants, toolkits, documents and messages are shared (`_rooms`).

Longer than 400 lines: this is the one object that wires the cluster's parts to the
server's hooks and holds its options; each hook is short, the work is in the modules
named above.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
import weakref
from typing import TYPE_CHECKING, Any

import anyio

from ..server._hooks import (
    ChangePayload,
    ConnectionPayload,
    Extension,
    LoadDocumentPayload,
    StoreDocumentPayload,
)
from ._awareness_outbox import AwarenessOutbox
from ._followed import REDIS_ORIGIN, Followed
from ._journal import StreamJournal
from ._lease import Leases
from ._publisher import UpdatePublisher
from ._reader import StreamReader
from ._rooms import RoomSharing
from ._streams import awareness_key, document_key, member_of
from ._writer import WriterRole

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from ..storage import StorageExtension

__all__ = ["REDIS_ORIGIN", "RedisExtension"]

log = logging.getLogger("meshroom.cluster")


class RedisExtension(Extension):
    """Share every document's updates with the other server processes through Redis Streams.

    ```py
    server = Server(extensions=[RedisExtension("redis://127.0.0.1:6379/0")])
    # a process that stores documents: give it the storage, not the server
    storage = StorageExtension(FsspecStorage("./rooms"))
    server = Server(extensions=[RedisExtension("redis://127.0.0.1:6379/0", storage=storage)])
    ```

    Args:
        url: a ``redis://`` URL.
        storage: this process's storage. The cluster decides which process writes each
            document (any process given storage may), so the storage extension is
            driven from here rather than by the server.
        stream_prefix: prefix of every key, so clusters can share one Redis.
        compact_after: entries in a document's stream past which a process compacts it.
        block: seconds one ``XREAD`` waits before the reader looks at its documents again
            (expiring awareness, republishing); a newly opened document wakes it at once.
        lease: seconds a document's writer lease lasts without renewal (renewed every
            third): how long a dead writer's documents wait for another writer.
        claim_interval: seconds between looks for documents that need a writer.
        writer_idle: seconds a document claimed from the cluster stays open here after
            its last change (then it is stored, its room closes and the lease is given back).
        shutdown_timeout: longest wait at shutdown for queued updates to reach Redis.
        awareness_timeout: seconds after which another process's client that stopped
            renewing its awareness (y-websocket renews every 15 s) counts as gone.
        awareness_maxlen: entries kept (about) in a document's awareness stream.
        heartbeat: seconds between two writes of this process's view of each room
            (participants, toolkits, documents), besides one on every change.
        liveness_timeout: seconds after which another process whose views stopped being
            renewed counts as gone: its participants, toolkits and open documents leave
            the rooms, and calls pending on its toolkits end with ``offerer-left``.
    """

    priority = 500  # after other loaders, before other extensions (1000 with storage)

    def __init__(
        self,
        url: str,
        *,
        storage: StorageExtension | None = None,
        stream_prefix: str = "meshroom",
        compact_after: int = 1000,
        block: float = 0.25,
        lease: float = 10.0,
        claim_interval: float = 0.5,
        writer_idle: float = 30.0,
        shutdown_timeout: float = 10.0,
        awareness_timeout: float = 30.0,
        awareness_maxlen: int = 1000,
        heartbeat: float = 1.0,
        liveness_timeout: float = 5.0,
        **removed: Any,
    ) -> None:
        if "storage_writer" in removed:
            raise TypeError(
                "RedisExtension(storage_writer=) is gone: pass the StorageExtension as "
                "RedisExtension(url, storage=...) instead of to the Server"
            )
        if removed:
            raise TypeError(f"unexpected arguments: {', '.join(sorted(removed))}")
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"not a Redis URL (redis://, rediss://, unix://): {url!r}")
        if not stream_prefix or any(char in stream_prefix for char in " \n\r\t"):
            raise ValueError(f"stream_prefix must be a non-empty word, got {stream_prefix!r}")
        if compact_after < 1:
            raise ValueError(f"compact_after must be >= 1, got {compact_after}")
        timings = (block, lease, claim_interval, writer_idle, awareness_timeout, heartbeat)
        if min(timings) <= 0 or awareness_maxlen < 1 or shutdown_timeout < 0:
            raise ValueError(
                "block, lease, claim_interval, writer_idle, awareness_timeout, heartbeat and "
                "awareness_maxlen must be > 0"
            )
        if liveness_timeout <= heartbeat:
            raise ValueError("liveness_timeout must be longer than heartbeat")
        self.url = url
        self.storage = storage
        if storage is not None:
            self.priority = max(self.priority, storage.priority)  # storage loads first
        self.stream_prefix = stream_prefix
        self.compact_after = compact_after
        self.block = block
        self.lease = lease
        self.claim_interval = claim_interval
        self.writer_idle = writer_idle
        self.shutdown_timeout = shutdown_timeout
        self.awareness_timeout = awareness_timeout
        self.awareness_maxlen = awareness_maxlen
        self.heartbeat = heartbeat
        self.liveness_timeout = liveness_timeout
        self._token = uuid.uuid4().hex
        self._wake_key = f"{stream_prefix}:wake:{self._token}"
        self._redis: Any = None
        self._followed: dict[str, Followed] = {}
        self._server: Any = None
        self._group: TaskGroup | None = None
        self._exit_stack: contextlib.AsyncExitStack | None = None
        self._awareness: AwarenessOutbox | None = None
        self._publisher: UpdatePublisher | None = None
        self._journal: StreamJournal | None = None
        self._leases: Leases | None = None
        self._reader: StreamReader | None = None
        self._writer: WriterRole | None = None
        self._sharing: RoomSharing | None = None

    # -- introspection ---------------------------------------------------------------------

    def stream_key(self, room: str, path: str) -> str:
        """The Redis stream holding `room`/`path`'s updates."""
        return document_key(self.stream_prefix, room, path)

    @property
    def followed(self) -> list[str]:
        """Stream keys this process follows now (documents open here)."""
        self._prune()
        return sorted(self._followed)

    @property
    def writing(self) -> list[tuple[str, str]]:
        """(room, path) of the open documents this process writes to storage now."""
        self._prune()
        return sorted((f.room, f.path) for f in self._followed.values() if f.writer)

    @property
    def token(self) -> str:
        """This process's name in the cluster (the value of the leases it holds)."""
        return self._token

    def attach_server(self, server: Any) -> None:
        """Called by the `Server` this extension is given to: claimed documents open there."""
        self._server = server
        if self.storage is not None and self.storage in getattr(server, "extensions", ()):
            raise ValueError(
                "give the StorageExtension to the RedisExtension only, not also to the Server"
            )
        if self._writer is not None:
            self._writer.server = server
        if self._sharing is not None:
            self._sharing.server = server
        attach = getattr(self.storage, "attach_server", None)
        if attach is not None:  # saves and storage failures go to this server's activity
            attach(server)

    # -- lifecycle -------------------------------------------------------------------------

    async def on_startup(self) -> None:
        """Connect, start the reader, the journal and (with storage) the writer role.

        Raises:
            redis.exceptions.ConnectionError: Redis cannot be reached.
        """
        import redis.asyncio as redis

        self._redis = redis.Redis.from_url(self.url)
        try:
            await self._redis.ping()
        except BaseException:
            await self._redis.aclose()
            self._redis = None
            raise
        if self.storage is not None:
            await self.storage.on_startup()
        async with contextlib.AsyncExitStack() as stack:
            self._group = await stack.enter_async_context(anyio.create_task_group())
            self._exit_stack = stack.pop_all()
        self._leases = Leases(self._redis, self.stream_prefix, self._token, self.lease)
        self._journal = StreamJournal(self._redis, self._leases)
        self._reader = StreamReader(
            self._redis,
            self._followed,
            wake_key=self._wake_key,
            block=self.block,
            compact_after=self.compact_after,
        )
        self._publisher = UpdatePublisher(self._redis, self._reader.publish_failed)
        self._awareness = AwarenessOutbox(
            self._redis, maxlen=self.awareness_maxlen, timeout=self.awareness_timeout
        )
        self._group.start_soon(self._journal.run)
        self._group.start_soon(self._publisher.run)
        self._group.start_soon(self._reader.run)
        self._group.start_soon(self._awareness.run)
        self._sharing = RoomSharing(
            self._redis,
            prefix=self.stream_prefix,
            process=self._token,
            heartbeat=self.heartbeat,
            timeout=self.liveness_timeout,
            block=self.block,
        )
        self._sharing.server = self._server
        self._group.start_soon(self._sharing.run)
        if self.storage is not None:
            self._writer = WriterRole(
                client=self._redis,
                prefix=self.stream_prefix,
                storage=self.storage,
                leases=self._leases,
                journal=self._journal,
                followed=self._followed,
                claim_interval=self.claim_interval,
                idle=self.writer_idle,
            )
            self._writer.server = self._server
            self._group.start_soon(self._writer.run_claims, self._group)
            self._group.start_soon(self._writer.run_renewals, self.lease)
        log.info(
            "cluster: joined %s (prefix %r) as %s%s",
            self.url,
            self.stream_prefix,
            self._token,
            ", writing documents to storage" if self.storage is not None else "",
        )

    async def on_shutdown(self) -> None:
        """Publish what is queued, stop following, store, give leases back, disconnect."""
        if self._sharing is not None:
            with anyio.move_on_after(5):
                await self._sharing.outbox.drain()  # results and messages queued
                await self._sharing.close()
        if self._group is not None and self._exit_stack is not None:
            await self._drain()
            self._group.cancel_scope.cancel()
            await self._exit_stack.aclose()
            self._group = self._exit_stack = None
        if self.storage is not None:
            try:
                await self.storage.on_shutdown()
            except Exception:
                log.exception("cluster: storing documents at shutdown failed")
        if self._redis is not None:
            with anyio.CancelScope(shield=True):
                if self._writer is not None and self._leases is not None:
                    for member in sorted(self._leases.held):
                        with contextlib.suppress(Exception):
                            await self._leases.release(member)
                with contextlib.suppress(Exception):
                    await self._redis.delete(self._wake_key)
                await self._redis.aclose()
            self._redis = None
        self._followed.clear()

    # -- hooks -----------------------------------------------------------------------------

    async def on_load_document(self, payload: LoadDocumentPayload) -> None:
        """Load the document (from storage when this process writes it), replay its stream.

        Raises:
            redis.exceptions.RedisError: the stream cannot be read (the document is not
                served rather than served without the other processes' edits).
            StorageError: this process writes the document and cannot read storage.
        """
        key = self.stream_key(payload.room, payload.path)
        member = member_of(payload.room, payload.path)
        live = payload.document
        followed = Followed(
            key,
            member,
            payload.room,
            payload.path,
            weakref.ref(payload.doc),
            weakref.ref(live) if live is not None else None,
            b"0-0",
        )
        writer = self._writer is not None and await self._writer.load(payload, member)
        try:
            loaded = payload.doc.get_state()
            stored = loaded != b"\x00"
            await self._replay(followed, payload)
            followed.writer = writer
            if writer and payload.doc.get_state() != loaded:
                assert self._writer is not None  # the stream held what storage has not
                await self._writer.store_replayed(followed)
            # What storage loaded may be missing from the stream (stored before the cluster
            # existed, or Redis lost it): the writer publishes it for the other processes.
            followed.republish = writer and stored
            if not writer:
                assert self._journal is not None and self._leases is not None
                if live is not None and getattr(live, "journal", True) is None:
                    followed.as_reader(self._journal)
                await self._leases.announce(member)
            if live is not None:
                assert self._awareness is not None
                stream = awareness_key(self.stream_prefix, payload.room, payload.path)
                followed.awareness = await self._awareness.follow(live, stream, followed.token)
            self._followed[key] = followed
        finally:
            if self._writer is not None:
                self._writer.loaded(member)
        # Wake the reader now (its XREAD may block up to `block`) so it follows this one.
        await self._redis.xadd(self._wake_key, {b"w": b""}, maxlen=1)
        await self._redis.expire(self._wake_key, 3600)

    async def on_change(self, payload: ChangePayload) -> None:
        """Store (as the writer) and publish an update (unless it came from the stream)."""
        if not payload.update:
            return
        followed = self._followed.get(self.stream_key(payload.room, payload.path))
        if followed is None or followed.doc() is not payload.doc:
            return  # a document of a closed room: its successor replays the stream
        followed.active_at = anyio.current_time()
        if followed.writer and self.storage is not None:
            await self.storage.on_change(payload)
        if payload.origin is REDIS_ORIGIN or followed.published_by_journal(payload.update):
            return
        assert self._publisher is not None
        self._publisher.put(followed.key, bytes(payload.update), followed.token)
        followed.since_compaction += 1

    async def on_connect(self, payload: ConnectionPayload) -> None:
        """Share the connection's room with the other processes (from its first connection)."""
        if self._sharing is not None:
            self._sharing.track(payload.room)

    async def on_store_document(self, payload: StoreDocumentPayload) -> None:
        """Store the document (as its writer), then compact its stream.

        Raises:
            StorageError: storage could not write it (the server keeps the room, retries).
        """
        followed = self._followed.get(self.stream_key(payload.room, payload.path))
        if followed is None or followed.doc() is not payload.doc:
            return
        if followed.writer and self.storage is not None and self._writer is not None:
            await self.storage.on_store_document(payload)
            if payload.reason != "explicit":
                await self._writer.let_go(followed)
        if followed.since_compaction:
            assert self._reader is not None
            try:
                await self._reader.compact(followed, payload.doc)
            except Exception:
                log.exception("cluster: compacting %r failed", followed.key)

    # -- internals -------------------------------------------------------------------------

    async def _drain(self) -> None:
        """Send every queued update (bounded by `shutdown_timeout`), and say what was not.

        Queued updates were relayed already, so they are durable elsewhere: in this
        process's storage (it writes their documents: they are published after the
        relay). What does not reach Redis reaches the other processes when a writer
        next loads those documents and publishes what it loaded.
        """
        assert self._publisher is not None and self._awareness is not None
        with anyio.move_on_after(5):
            await self._awareness.close()
        queued = self._publisher.queued
        if queued:
            log.info("cluster: publishing %d queued updates before stopping", queued)
        with anyio.move_on_after(self.shutdown_timeout):
            await self._publisher.drain()
        left = self._publisher.queued + self._publisher.failed
        if left:
            log.warning(
                "cluster: %d updates could not be published to Redis (%s) before stopping; "
                "they are in this process's storage, and reach the other processes when "
                "their documents are next loaded",
                left,
                self.url,
            )

    def _prune(self) -> None:
        if self._reader is not None:
            self._reader.prune()

    async def _replay(self, followed: Followed, payload: LoadDocumentPayload) -> None:
        assert self._reader is not None
        start = "-"
        while True:
            entries = await self._redis.xrange(followed.key, min=start, max="+", count=1000)
            for entry_id, fields in entries:
                followed.last_id = entry_id
                self._reader.apply(followed, payload.doc, entry_id, fields)
            if len(entries) < 1000:
                break
            start = b"(" + followed.last_id
