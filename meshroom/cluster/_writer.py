"""The writer role of a process with storage: store documents edited anywhere in the cluster.

Each document has one writer at a time, chosen by its lease (see `_lease`):

- a process with storage that opens a document takes its lease if nobody holds it,
  and loads it from storage; otherwise it serves it like a process without storage;
- it also polls for documents that need a writer (announced by the processes
  serving them, or left by a writer that died: an expired lease) and claims them;
  a claimed document is opened here even when none of this process's clients has
  it, so it is loaded from storage, follows its stream, and every entry read is
  appended to storage's log before it is relayed, and snapshotted as usual. A
  document open here already is taken over in place;
- leases are renewed every third of their lifetime; a document claimed from the
  cluster is let go once it was quiet for `idle` seconds (the room then closes
  and is stored like any other), and the lease is given back once it is stored.
  If entries arrived that the store did not cover, the document is announced
  again, so the next writer (maybe this one) stores them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import anyio

from ..server._hooks import ChangePayload, LoadDocumentPayload
from ._followed import Followed
from ._streams import document_key, parse_member

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from ..storage import StorageExtension
    from ._journal import StreamJournal
    from ._lease import Leases

__all__ = ["WriterRole"]

log = logging.getLogger("meshroom.cluster")

#: Longest wait for a document's in-flight storage writes before its lease is given back.
LET_GO_WAIT = 10.0


def _stream_id(value: bytes) -> tuple[int, int]:
    millis, _, sequence = value.partition(b"-")
    return int(millis or 0), int(sequence or 0)


class WriterRole:
    """Claims, holds, renews and gives back the documents this process writes."""

    def __init__(
        self,
        *,
        client: Any,
        prefix: str,
        storage: StorageExtension,
        leases: Leases,
        journal: StreamJournal,
        followed: dict[str, Followed],
        claim_interval: float,
        idle: float,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self.storage = storage
        self._leases = leases
        self._journal = journal
        self._followed = followed
        self._claim_interval = claim_interval
        self._idle = idle
        #: The server whose rooms hold claimed documents (`RedisExtension.attach_server`).
        self.server: Any = None
        #: Members claimed whose document is being opened (their lease is kept meanwhile).
        self._opening: set[str] = set()

    # -- loading and letting go --------------------------------------------------------

    async def load(self, payload: LoadDocumentPayload, member: str) -> bool:
        """Load `payload.doc` from storage if this process gets to write it.

        Raises:
            Exception: storage could not be read (the lease is given back).
        """
        self._opening.add(member)
        if not await self._leases.acquire(member):
            self._opening.discard(member)
            return False
        try:
            self._forget_cached(payload.room, payload.path)
            await self.storage.on_load_document(payload)
        except BaseException:
            self._opening.discard(member)
            with anyio.CancelScope(shield=True):
                await self._leases.release(member)
            raise
        return True

    def loaded(self, member: str) -> None:
        """The document `load` was called for is followed now (or failed to load)."""
        self._opening.discard(member)

    async def take_over(self, followed: Followed) -> None:
        """Become the writer of a document open here already (its writer died or left)."""
        doc, live = followed.doc(), followed.live() if followed.live is not None else None
        if doc is None:
            return
        self._forget_cached(followed.room, followed.path)
        # Stored state arrives as an update through the stream journal (published);
        # storage then sets its own journal on the live document.
        await self.storage.on_load_document(
            LoadDocumentPayload(room=followed.room, path=followed.path, doc=doc, document=live)
        )
        followed.writer = True
        await self.store_replayed(followed)
        log.info("cluster: took over writing %s/%s", followed.room, followed.path)

    async def store_replayed(self, followed: Followed) -> None:
        """Have storage snapshot the document: it holds entries the previous writer had
        not stored, which are only in memory and in the stream."""
        doc = followed.doc()
        if doc is None:
            return
        room, path, state = followed.room, followed.path, doc.get_update()
        await self.storage.on_change(
            ChangePayload(room=room, path=path, doc=doc, update=state, origin=None)
        )

    async def let_go(self, followed: Followed) -> None:
        """After the document was stored (its room closes): stop writing it, give it back."""
        live = followed.live() if followed.live is not None else None
        stored_id = followed.last_id
        followed.as_reader(self._journal)  # nothing reaches storage's log after this
        if live is not None:
            with anyio.move_on_after(LET_GO_WAIT) as waited:
                await live.durable()
            if waited.cancelled_caught:
                log.warning(
                    "cluster: %s/%s still writes to storage; keeping its lease",
                    followed.room,
                    followed.path,
                )
                return
        followed.stored_id = stored_id
        await self._release(followed.member, stored_id)

    async def _release(self, member: str, stored_id: bytes) -> None:
        """Give the lease back; announce the document again if its stream went further."""
        await self._leases.release(member)
        room, path = parse_member(member)
        tail = await self._client.xrevrange(document_key(self._prefix, room, path), count=1)
        if tail and _stream_id(tail[0][0]) > _stream_id(stored_id):
            await self._leases.announce(member)

    def _forget_cached(self, room: str, path: str) -> None:
        """Another process may have written the document since: re-read its log's layout."""
        forget = getattr(self.storage.provider, "forget", None)
        if forget is not None:
            forget(room, path)

    # -- background tasks --------------------------------------------------------------

    async def run_claims(self, group: TaskGroup) -> None:
        """Claim documents that need a writer and hold them open while they are edited."""
        while True:
            await anyio.sleep(self._claim_interval)
            if self.server is None:
                continue
            try:
                claimed = await self._leases.claim_due()
            except Exception:
                log.exception("cluster: looking for documents to write failed; retrying")
                continue
            for member in claimed:
                self._opening.add(member)
                group.start_soon(self._hold, member)

    async def _hold(self, member: str) -> None:
        room_name, path = parse_member(member)
        key = document_key(self._prefix, room_name, path)
        try:
            room = self.server._acquire(room_name)
        except Exception:
            self._opening.discard(member)
            await self._release(member, b"0-0")
            return
        try:
            try:
                await room.open_document(path)
                followed = self._followed.get(key)
                if followed is not None and not followed.writer:
                    await self.take_over(followed)
            except Exception:
                log.exception("cluster: opening %s/%s to write it failed", room_name, path)
                await anyio.sleep(min(self._claim_interval * 10, 5))
                return  # not followed, not opening: the renewal gives it back, announced
            finally:
                self._opening.discard(member)
            if followed is None:
                return  # not loaded through this extension: nothing to write from here
            log.debug("cluster: writing %s/%s", room_name, path)
            while (current := self._followed.get(key)) is followed and current.writer:
                remaining = current.active_at + self._idle - anyio.current_time()
                if remaining <= 0:
                    break
                await anyio.sleep(min(remaining, 1.0))
            del current, followed
        finally:
            self.server._release(room)

    async def run_renewals(self, lease: float) -> None:
        """Renew the leases held; give back those of documents no longer open here."""
        while True:
            await anyio.sleep(lease / 3)
            open_here = {
                followed.member
                for followed in list(self._followed.values())
                if followed.writer and followed.doc() is not None
            }
            for member in sorted(self._leases.held - open_here - self._opening):
                try:
                    await self._release(member, b"0-0")
                except Exception:
                    log.exception("cluster: giving back the lease of %r failed", member)
            try:
                lost = await self._leases.renew()
            except Exception:
                log.exception("cluster: renewing writer leases failed; retrying")
                continue
            for member in lost:
                log.error(
                    "cluster: another process took over writing %r (this one stalled longer "
                    "than the lease); it is no longer written from here",
                    member,
                )
                for followed in list(self._followed.values()):
                    if followed.member == member:
                        followed.as_reader(self._journal)
