"""Following the streams of every open document: one reader task per process.

The reader ``XREAD``s from the last id seen of every followed document (and its
awareness stream) and applies the other processes' entries with `REDIS_ORIGIN`,
so the document's observer relays them to local clients and `on_change` does not
publish them again. Between reads it expires awareness and republishes the full
state of documents whose updates could not all be published.

Streams are compacted without ever losing state: a process that has read a
stream up to id L appends its full document state (which holds every entry up
to L) and only then trims the entries up to L (``XTRIM MINID``). Entries after
L, from anyone, stay. Two processes compacting at once are both safe, and a
writer that has not read the trimmed entries yet reads the state standing for
them instead, so trimming never waits for storage.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import anyio

from ..server._document import unsettled_of
from ._followed import REDIS_ORIGIN, Followed
from ._stream_reads import StreamReads
from ._streams import KIND_COMPACTED, after, decode_entry, encode_entry

if TYPE_CHECKING:
    from pycrdt import Doc

    from ._awareness import AwarenessRelay

__all__ = ["StreamReader"]

log = logging.getLogger("meshroom.cluster")


class StreamReader:
    """Applies the other processes' entries to this process's open documents."""

    def __init__(
        self,
        client: Any,
        followed: dict[str, Followed],
        *,
        wake_key: str,
        block: float,
        compact_after: int,
    ) -> None:
        self._client = client
        self._followed = followed
        self._wake_key = wake_key
        self._reads = StreamReads(client, block=block, what="streams")
        self.compact_after = compact_after

    def apply(
        self, followed: Followed, doc: Doc, entry_id: bytes, fields: dict[bytes, bytes]
    ) -> None:
        """Integrate one entry (a bad one is logged and skipped)."""
        entry = decode_entry(entry_id, fields)
        if entry is None:
            return
        unsettled = unsettled_of(doc)
        try:
            with followed.relaying_at_once(), doc.transaction(origin=REDIS_ORIGIN):
                unsettled.integrate(doc, entry.update)
        except Exception:
            log.error("cluster: skipping entry %r of %r: not a Yjs update", entry_id, followed.key)
        if unsettled:
            # Not as REDIS_ORIGIN: what waited may have come from this process's clients
            # (never published while it waited), so it is published, logged and relayed.
            with doc.transaction():
                unsettled.settle(doc)

    def prune(self) -> None:
        """Forget documents whose room closed."""
        for key, followed in list(self._followed.items()):
            if followed.doc() is None:
                del self._followed[key]

    async def run(self) -> None:
        while True:
            self.prune()
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
            for key, entries in await self._reads.read(streams):
                if key == self._wake_key:
                    continue
                if key in relays:
                    self._relay_awareness(*relays[key], entries)
                    continue
                await self._read_entries(following[key], streams[key], entries)

    async def _read_entries(self, followed: Followed, read_from: Any, entries: list[Any]) -> None:
        """Apply a document's new entries (a method, so that no loop variable keeps its doc)."""
        doc = followed.doc()
        if doc is None or self._followed.get(followed.key) is not followed:
            return  # closed or reopened meanwhile (a reopened one replayed)
        if followed.last_id != read_from:
            return  # should not happen: one reader; be safe against duplicates
        for entry_id, fields in entries:
            followed.last_id = entry_id
            if fields.get(b"s") != followed.token:  # ours were counted when written
                followed.since_compaction += 1
                followed.active_at = anyio.current_time()
                self.apply(followed, doc, entry_id, fields)
        if followed.since_compaction >= self.compact_after:
            try:
                await self.compact(followed, doc)
            except Exception:
                log.exception("cluster: compacting %r failed", followed.key)

    def publish_failed(self, key: str) -> None:
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
                await self._client.xadd(
                    followed.key, encode_entry(state, followed.token, KIND_COMPACTED)
                )
            except Exception:
                log.warning("cluster: republishing %r failed; retrying", followed.key)
                await anyio.sleep(1)
                return
            followed.republish = False

    def _relay_awareness(
        self, followed: Followed, relay: AwarenessRelay, entries: list[Any]
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

    async def compact(self, followed: Followed, doc: Doc) -> None:
        """Append the full state, then trim what it covers (entries up to `last_id`)."""
        covered = followed.last_id
        if covered == b"0-0":
            return
        length = await self._client.xlen(followed.key)
        if length < 2:
            followed.since_compaction = 0
            return
        # with what waits for a gap: the entries trimmed below may be all that held it
        state = unsettled_of(doc).encode(doc)
        await self._client.xadd(followed.key, encode_entry(state, followed.token, KIND_COMPACTED))
        trimmed = await self._client.xtrim(followed.key, minid=after(covered), approximate=False)
        followed.since_compaction = 0
        log.debug("cluster: compacted %r (%d entries trimmed)", followed.key, trimmed)
