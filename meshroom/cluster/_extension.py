"""`RedisExtension`: several server processes serve the same documents through Redis Streams.

Like y-redis and Hocuspocus' Redis extension, any process can serve any room:

- every update a process accepts from its own clients (or its own server-side
  edits) is appended (``XADD``) to the document's stream;
- one reader task per process follows the streams of every open document
  (``XREAD`` from the last id seen) and applies the other processes' entries
  with `REDIS_ORIGIN`, so the document's observer relays them to local clients
  and `on_change` does not publish them again;
- a document opened late replays its whole stream, so a process that joins, or
  restarts after a crash, catches up;
- awareness travels in a second, capped stream per document (see `_awareness`);
- streams are compacted without ever losing state: a process that has read a
  stream up to id L appends its full document state (which holds every entry up
  to L) and only then trims the entries up to L (``XTRIM MINID``). Entries after
  L, from anyone, stay. Two processes compacting at once are both safe.

Storage assumes one writer per document: with ``storage_writer=True`` the
process takes a cluster-wide lease at startup (refused with `ClusterError`
while another live process holds it), so only one process of the cluster may
be given ``--storage``.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from ..server._document import unsettled_of
from ..server._hooks import ChangePayload, Extension, LoadDocumentPayload, StoreDocumentPayload
from ._awareness import AwarenessRelay
from ._lease import keep_lease, release_lease, take_lease
from ._publisher import UpdatePublisher
from ._streams import (
    KIND_COMPACTED,
    after,
    awareness_key,
    decode_entry,
    document_key,
    encode_entry,
)

if TYPE_CHECKING:
    from anyio.abc import TaskGroup
    from pycrdt import Doc

__all__ = ["REDIS_ORIGIN", "RedisExtension"]

log = logging.getLogger("meshroom.cluster")


class _RedisOrigin:
    """Transaction origin of updates applied from Redis (never published again)."""

    def __repr__(self) -> str:
        return "REDIS_ORIGIN"


REDIS_ORIGIN: Any = _RedisOrigin()


@dataclass
class _Followed:
    """An open document whose stream this process follows."""

    key: str
    doc: weakref.ref[Doc]
    last_id: bytes
    token: bytes = field(default_factory=lambda: uuid.uuid4().hex.encode())
    since_compaction: int = 0
    awareness: AwarenessRelay | None = None
    #: An update could not be published: publish the full state once Redis answers.
    republish: bool = False


class RedisExtension(Extension):
    """Share every document's updates with the other server processes through Redis Streams.

    ```py
    server = Server(extensions=[RedisExtension("redis://127.0.0.1:6379/0")])
    ```

    Args:
        url: a ``redis://`` URL.
        stream_prefix: prefix of every key, so clusters can share one Redis.
        compact_after: entries in a document's stream past which a process compacts it.
        block: seconds one ``XREAD`` waits before the reader looks at its documents again
            (expiring awareness, republishing); a newly opened document wakes it at once.
        storage_writer: this process is the cluster's one storage writer (a lease).
        lease: seconds the writer lease lasts without renewal (renewed every third).
        awareness_timeout: seconds after which another process's client that stopped
            renewing its awareness (y-websocket renews every 15 s) counts as gone.
        awareness_maxlen: entries kept (about) in a document's awareness stream.
    """

    priority = 500  # after storage (1000) loaded the stored state, before other extensions

    def __init__(
        self,
        url: str,
        *,
        stream_prefix: str = "meshroom",
        compact_after: int = 1000,
        block: float = 0.25,
        storage_writer: bool = False,
        lease: float = 10.0,
        awareness_timeout: float = 30.0,
        awareness_maxlen: int = 1000,
    ) -> None:
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"not a Redis URL (redis://, rediss://, unix://): {url!r}")
        if not stream_prefix or any(char in stream_prefix for char in " \n\r\t"):
            raise ValueError(f"stream_prefix must be a non-empty word, got {stream_prefix!r}")
        if compact_after < 1:
            raise ValueError(f"compact_after must be >= 1, got {compact_after}")
        if block <= 0 or lease <= 0 or awareness_timeout <= 0 or awareness_maxlen < 1:
            raise ValueError("block, lease, awareness_timeout and awareness_maxlen must be > 0")
        self.url = url
        self.stream_prefix = stream_prefix
        self.compact_after = compact_after
        self.block = block
        self.storage_writer = storage_writer
        self.lease = lease
        self.awareness_timeout = awareness_timeout
        self.awareness_maxlen = awareness_maxlen
        self._token = uuid.uuid4().hex
        self._wake_key = f"{stream_prefix}:wake:{self._token}"
        self._redis: Any = None
        self._followed: dict[str, _Followed] = {}
        self._group: TaskGroup | None = None
        self._exit_stack: contextlib.AsyncExitStack | None = None
        self._outbox_send, self._outbox = anyio.create_memory_object_stream[
            tuple[str, bytes, bytes]
        ](10_000)
        self._outbox_drained = anyio.Event()
        self._publisher: UpdatePublisher | None = None

    # -- introspection ---------------------------------------------------------------------

    def stream_key(self, room: str, path: str) -> str:
        """The Redis stream holding `room`/`path`'s updates."""
        return document_key(self.stream_prefix, room, path)

    @property
    def followed(self) -> list[str]:
        """Stream keys this process follows now (documents open here)."""
        self._prune()
        return sorted(self._followed)

    # -- lifecycle -------------------------------------------------------------------------

    async def on_startup(self) -> None:
        """Connect, take the writer lease if asked, start the reader.

        Raises:
            ClusterError: another live process holds the storage writer lease.
            redis.exceptions.ConnectionError: Redis cannot be reached.
        """
        import redis.asyncio as redis

        self._redis = redis.Redis.from_url(self.url)
        try:
            await self._redis.ping()
            if self.storage_writer:
                await take_lease(self._redis, self.stream_prefix, self._token, self.lease)
        except BaseException:
            await self._redis.aclose()
            self._redis = None
            raise
        async with contextlib.AsyncExitStack() as stack:
            self._group = await stack.enter_async_context(anyio.create_task_group())
            self._exit_stack = stack.pop_all()
        self._publisher = UpdatePublisher(self._redis, self._publish_failed)
        self._group.start_soon(self._publisher.run)
        self._group.start_soon(self._read_forever)
        self._group.start_soon(self._publish_awareness)
        if self.storage_writer:
            self._group.start_soon(
                keep_lease, self._redis, self.stream_prefix, self._token, self.lease
            )
        log.info("cluster: joined %s (prefix %r)", self.url, self.stream_prefix)

    async def on_shutdown(self) -> None:
        """Stop following, release the writer lease, disconnect."""
        if self._group is not None and self._exit_stack is not None:
            # Removals of this process's clients (their sockets just closed) reach the
            # other processes now rather than after `awareness_timeout`.
            self._outbox_send.close()
            with anyio.move_on_after(5):
                await self._outbox_drained.wait()
                if self._publisher is not None:
                    await self._publisher.drain()
            self._group.cancel_scope.cancel()
            await self._exit_stack.aclose()
            self._group = self._exit_stack = None
        if self._redis is not None:
            with anyio.CancelScope(shield=True):
                if self.storage_writer:
                    with contextlib.suppress(Exception):
                        await release_lease(self._redis, self.stream_prefix, self._token)
                with contextlib.suppress(Exception):
                    await self._redis.delete(self._wake_key)
                await self._redis.aclose()
            self._redis = None
        self._followed.clear()

    # -- hooks -----------------------------------------------------------------------------

    async def on_load_document(self, payload: LoadDocumentPayload) -> None:
        """Replay the document's stream into `payload.doc` and follow it from there.

        Raises:
            redis.exceptions.RedisError: the stream cannot be read (the document is not
                served rather than served without the other processes' edits).
        """
        key = self.stream_key(payload.room, payload.path)
        stored = payload.doc.get_state() != b"\x00"
        last_id = b"0-0"
        start = "-"
        while True:
            entries = await self._redis.xrange(key, min=start, max="+", count=1000)
            for entry_id, fields in entries:
                last_id = entry_id
                self._apply(payload.doc, key, entry_id, fields)
            if len(entries) < 1000:
                break
            start = b"(" + last_id
        followed = _Followed(key, weakref.ref(payload.doc), last_id)
        # What storage loaded may be missing from the stream (stored before the cluster
        # existed, or Redis lost it): the writer publishes it for the other processes.
        followed.republish = self.storage_writer and stored
        if payload.document is not None:
            followed.awareness = await self._follow_awareness(payload, followed.token)
        self._followed[key] = followed
        # Wake the reader now (its XREAD may block up to `block`) so it follows this one.
        await self._redis.xadd(self._wake_key, {b"w": b""}, maxlen=1)
        await self._redis.expire(self._wake_key, 3600)

    async def on_change(self, payload: ChangePayload) -> None:
        """Publish an update accepted here (not one that came from Redis)."""
        if payload.origin is REDIS_ORIGIN or not payload.update:
            return
        key = self.stream_key(payload.room, payload.path)
        followed = self._followed.get(key)
        if followed is None or followed.doc() is not payload.doc:
            return  # a document of a closed room: its successor replays the stream
        assert self._publisher is not None
        self._publisher.put(key, bytes(payload.update), followed.token)
        followed.since_compaction += 1

    async def on_store_document(self, payload: StoreDocumentPayload) -> None:
        """Compact the stream while the document is complete in memory (cheap, never raises)."""
        followed = self._followed.get(self.stream_key(payload.room, payload.path))
        if followed is not None and followed.doc() is payload.doc and followed.since_compaction:
            try:
                await self._compact(followed, payload.doc)
            except Exception:
                log.exception("cluster: compacting %r failed", followed.key)

    # -- internals -------------------------------------------------------------------------

    async def _follow_awareness(self, payload: LoadDocumentPayload, token: bytes) -> AwarenessRelay:
        """Apply the other processes' recent awareness, then relay it both ways."""
        key = awareness_key(self.stream_prefix, payload.room, payload.path)
        seconds, microseconds = await self._redis.time()
        start = int(seconds * 1000 + microseconds // 1000 - self.awareness_timeout * 1000)
        recent = await self._redis.xrange(key, min=str(start), max="+")
        last_id = recent[-1][0] if recent else f"{start}-0".encode()

        def publish(stream: str, update: bytes) -> None:
            try:
                self._outbox_send.send_nowait((stream, update, token))
            except anyio.WouldBlock:
                log.warning("cluster: awareness outbox full; dropping an update of %r", stream)

        relay = AwarenessRelay(payload.document, key, last_id, publish, self.awareness_timeout)
        for _, fields in recent:
            if b"u" in fields:
                relay.apply_remote(fields[b"u"])
        return relay

    async def _publish_awareness(self) -> None:
        async with self._outbox:
            await self._publish_outbox()
        self._outbox_drained.set()

    async def _publish_outbox(self) -> None:
        async for key, update, token in self._outbox:
            try:
                await self._redis.xadd(
                    key,
                    encode_entry(update, token),
                    maxlen=self.awareness_maxlen,
                    approximate=True,
                )
            except Exception:
                log.exception("cluster: publishing awareness to %r failed", key)

    def _apply(self, doc: Doc, key: str, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        entry = decode_entry(entry_id, fields)
        if entry is None:
            return
        unsettled = unsettled_of(doc)
        try:
            with doc.transaction(origin=REDIS_ORIGIN):
                unsettled.integrate(doc, entry.update)
        except Exception:
            log.error("cluster: skipping entry %r of %r: not a Yjs update", entry_id, key)
        if unsettled:
            # Not as REDIS_ORIGIN: what waited may have come from this process's clients
            # (never published while it waited), so it is published, logged and relayed.
            with doc.transaction():
                unsettled.settle(doc)

    def _prune(self) -> None:
        for key, followed in list(self._followed.items()):
            if followed.doc() is None:
                del self._followed[key]

    async def _read_forever(self) -> None:
        block_ms = max(1, int(self.block * 1000))
        while True:
            self._prune()
            self._expire_awareness()
            await self._republish()
            following = dict(self._followed)
            streams = {key: followed.last_id for key, followed in following.items()}
            relays = {
                followed.awareness.key: (followed, followed.awareness)
                for followed in following.values()
                if followed.awareness is not None
            }
            streams.update({key: relay.last_id for key, (_, relay) in relays.items()})
            streams[self._wake_key] = "$"
            try:
                answer = await self._redis.xread(streams, count=500, block=block_ms)
            except Exception:
                log.exception("cluster: reading streams failed; retrying")
                await anyio.sleep(1)
                continue
            for raw_key, entries in answer or []:
                key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
                if key == self._wake_key:
                    continue
                if key in relays:
                    self._relay_awareness(*relays[key], entries)
                    continue
                await self._read_entries(following[key], streams[key], entries)

    async def _read_entries(self, followed: _Followed, read_from: Any, entries: list[Any]) -> None:
        """Apply a document's new entries (a method, so that no loop variable keeps its doc)."""
        doc = followed.doc()
        if doc is None or self._followed.get(followed.key) is not followed:
            return  # closed or reopened meanwhile (a reopened one replayed)
        if followed.last_id != read_from:
            return  # should not happen: one reader; be safe against duplicates
        for entry_id, fields in entries:
            followed.last_id = entry_id
            if fields.get(b"s") != followed.token:  # ours were counted by on_change
                followed.since_compaction += 1
                self._apply(doc, followed.key, entry_id, fields)
        if followed.since_compaction >= self.compact_after:
            try:
                await self._compact(followed, doc)
            except Exception:
                log.exception("cluster: compacting %r failed", followed.key)

    def _publish_failed(self, key: str) -> None:
        followed = self._followed.get(key)
        if followed is not None:
            followed.republish = True  # the reader publishes the whole state when it can

    async def _republish(self) -> None:
        """Publish the full state of documents whose updates could not all be published."""
        for followed in list(self._followed.values()):
            doc = followed.doc()
            if not followed.republish or doc is None:
                continue
            try:
                state = unsettled_of(doc).encode(doc)  # with what waits for a gap
                await self._redis.xadd(
                    followed.key, encode_entry(state, followed.token, KIND_COMPACTED)
                )
            except Exception:
                log.warning("cluster: republishing %r failed; retrying", followed.key)
                await anyio.sleep(1)
                return
            followed.republish = False

    def _relay_awareness(
        self, followed: _Followed, relay: AwarenessRelay, entries: list[Any]
    ) -> None:
        if self._followed.get(followed.key) is not followed:
            return
        for entry_id, fields in entries:
            relay.last_id = entry_id
            if fields.get(b"s") != followed.token and b"u" in fields:
                relay.apply_remote(fields[b"u"])

    def _expire_awareness(self) -> None:
        for followed in list(self._followed.values()):
            if followed.awareness is not None:
                followed.awareness.expire()

    async def _compact(self, followed: _Followed, doc: Doc) -> None:
        """Append the full state, then trim what it covers (entries up to `last_id`)."""
        covered = followed.last_id
        if covered == b"0-0":
            return
        length = await self._redis.xlen(followed.key)
        if length < 2:
            followed.since_compaction = 0
            return
        # with what waits for a gap: the entries trimmed below may be all that held it
        state = unsettled_of(doc).encode(doc)
        await self._redis.xadd(followed.key, encode_entry(state, followed.token, KIND_COMPACTED))
        trimmed = await self._redis.xtrim(followed.key, minid=after(covered), approximate=False)
        followed.since_compaction = 0
        log.debug("cluster: compacted %r (%d entries trimmed)", followed.key, trimmed)
