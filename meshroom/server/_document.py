"""One live document of a room: its `pycrdt.Doc`, its awareness, the sessions editing it.

Every accepted change, from a client or from the embedding process, goes
through one place: the document's update observer. It relays the update to
every other session (without waiting: each session has its own bounded queue)
and hands it to the room, which calls the `on_change` hooks in order.

A document with a `journal` (storage gives it one) is durable before it is
relayed: an update is held, written by the journal with everything else that
arrived meanwhile (group commit: one write serves every update of the same
loop turn, and of the turns the previous write took), and only then relayed
and handed to the hooks. Replies that carry the document's state (sync step 2)
wait behind the updates held before them, so nothing a client ever received is
missing after a crash. A failed write is retried with backoff; the updates stay
held and nobody sees them until they are safe.

A peer's update goes in through the doc's `meshdoc` `Unsettled`: structs that follow a
gap in their client's clocks wait there (yrs would link them at once, without moving the
state vector, behind the back of a server-side `MeshDocument`), so only what the doc
integrated is ever relayed, published or logged, in the order it integrated. What waits
is relayed once the gap fills, to every session; snapshots (storage, cluster compaction)
carry it meanwhile. Sync step 2 does not: a peer could not integrate it before the gap
fills either, and a peer that links early as yrs does would be exposed to the same split.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio
from pycrdt import Doc, TransactionEvent

from meshdoc.updates import unsettled_of

from .._retry import Backoff
from ..protocol._messages import encode_update
from ._awareness import AwarenessStore

if TYPE_CHECKING:
    from ._peer import Peer
    from ._stats import ServerStats

__all__ = ["Journal", "LiveDocument", "unsettled_of"]

#: Writes a batch of updates durably, in order (raises if it could not: all are retried).
Journal = Callable[[list[bytes]], Awaitable[None]]

#: Backoff between attempts of a failed journal write: first delay and longest, seconds.
JOURNAL_RETRY = Backoff(initial=0.1, maximum=5.0, jitter=0.0)

log = logging.getLogger("meshroom.server")


def _transaction_origin(doc: Doc) -> Any:
    """The origin of the transaction being committed (pycrdt does not pass it to observers)."""
    txn = getattr(doc, "_txn", None)
    origin_hash = getattr(txn, "_origin_hash", None)
    if origin_hash is None:
        return None
    return getattr(doc, "_origins", {}).get(origin_hash)


class LiveDocument:
    """A document held in memory while its room is open."""

    def __init__(
        self, room: str, path: str, on_change: Callable[[LiveDocument, bytes, Any], None]
    ) -> None:
        self.room = room
        self.path = path
        self.doc = Doc()
        self.awareness = AwarenessStore()
        #: Awareness client id -> the session that published it: only that session (or a
        #: later connection of the same participant) may change or remove that state.
        self.awareness_owners: dict[int, Peer] = {}
        self.sessions: set[Peer] = set()
        #: Called with every message `broadcast` queues (awareness from this process's
        #: connections), so that an extension can share it with other processes.
        self.broadcast_listeners: list[Callable[[bytes], None]] = []
        #: Called with (this document, the sending session) before a peer's update is
        #: applied, while the document still holds the state before it: versions take
        #: the state an agent's first edit starts from here (`meshroom.versions`).
        self.before_apply: list[Callable[[LiveDocument, Any], None]] = []
        self._on_change = on_change
        #: Peers' updates (or their parts) waiting for a gap in their clocks to fill.
        self.unsettled = unsettled_of(self.doc)
        self._applying: Any = None
        self._subscription: Any = None
        #: Makes updates durable before they are relayed (None: relay at once).
        self.journal: Journal | None = None
        #: Called when held updates need a commit; the room starts `commit` for it.
        self.request_commit: Callable[[LiveDocument], None] | None = None
        #: In arrival order: (relay message, origin, update) to release once written, or
        #: a reply to send once everything held before it is written.
        self._held: list[tuple[bytes, Any, bytes] | Callable[[], None]] = []
        #: Bytes of updates held or being written (not yet relayed).
        self.unwritten_bytes = 0
        self._committing = False
        self._committed = anyio.Event()
        self._committed.set()
        #: Counters for a metrics exporter (None: nothing is counted).
        self.stats: ServerStats | None = None
        #: Records an activity event of the room (journal failures and recoveries).
        self.report: Callable[..., None] | None = None
        #: When the oldest held update arrived (`perf_counter`), for the relay latency.
        self._held_since = 0.0

    def start_relaying(self) -> None:
        """Observe updates from now on (after loading, so loaded state is not a change)."""
        if self._subscription is None:
            self._subscription = self.doc.observe(self._observe)

    def stop_relaying(self) -> None:
        if self._subscription is not None:
            self.doc.unobserve(self._subscription)
            self._subscription = None

    def close(self) -> None:
        """Stop relaying and let go of the document's state (its room closed, it was stored).

        A closed room's objects stay linked in reference cycles (the room and its
        documents, sessions and their sockets), which only Python's cyclic collector
        frees, and that collector runs by the count of Python objects, blind to the
        native memory of a loaded `pycrdt.Doc`. With storage every reopened room loads
        its whole document, so hundreds of dead ones waited for a full collection
        (kilobytes of RSS per short session). Dropping the Doc here frees it at once,
        whatever still refers to this object; `doc` is then a fresh, empty one.
        """
        self.stop_relaying()
        self.sessions.clear()
        self.awareness_owners.clear()
        self.broadcast_listeners.clear()
        self.before_apply.clear()
        self.journal = None
        self.request_commit = None
        self._held.clear()
        self.doc = Doc()
        self.unsettled = unsettled_of(self.doc)

    def _observe(self, event: TransactionEvent) -> None:
        # Runs inside the transaction commit: must never raise (pycrdt would re-raise
        # an ExceptionGroup in whoever committed).
        try:
            update = event.update
            if update == b"\x00\x00":
                return
            origin = self._applying if self._applying is not None else _transaction_origin(self.doc)
            message = encode_update(update)
            if self.journal is not None:
                self._hold((message, origin, update))
                self.unwritten_bytes += len(update)
                return
            self._relay(message, origin, update)
        except Exception:  # pragma: no cover - defensive: a bug here must not break writers
            log.exception("relaying an update of %r/%r failed", self.room, self.path)

    def _relay(self, message: bytes, origin: Any, update: bytes) -> None:
        sent = 0
        for session in list(self.sessions):
            if session is not origin:
                session.enqueue(message)
                sent += 1
        stats = self.stats
        if stats is not None:
            stats.updates_out += sent
            stats.bytes_out += sent * len(message)
        self._on_change(self, update, origin)

    # -- durability ------------------------------------------------------------------------

    def when_durable(self, reply: Callable[[], None]) -> None:
        """Run `reply` once every update accepted so far is written (at once if it is)."""
        if self._committing:
            self._hold(reply)
        else:
            reply()

    def _hold(self, entry: tuple[bytes, Any, bytes] | Callable[[], None]) -> None:
        self._held.append(entry)
        if not self._committing:
            self._held_since = time.perf_counter()
            self._committing = True
            self._committed = anyio.Event()
            if self.request_commit is not None:
                self.request_commit(self)

    async def commit(self) -> None:
        """Write what is held, then release it; again while more arrived meanwhile."""
        failures = 0
        try:
            while self._held:
                batch, self._held = self._held, []
                since, self._held_since = self._held_since, time.perf_counter()
                updates = [entry[2] for entry in batch if isinstance(entry, tuple)]
                try:
                    if updates and self.journal is not None:
                        started = time.perf_counter()
                        await self.journal(updates)
                        if self.stats is not None:
                            self.stats.journal_seconds.observe(time.perf_counter() - started)
                except BaseException as error:
                    if not isinstance(error, Exception):  # cancelled: keep it held, in order
                        self._held[:0] = batch
                        raise
                    failures += 1
                    delay = JOURNAL_RETRY.delay(failures)
                    log.warning(
                        "writing %d updates of %r/%r failed (retry in %.1f s; nobody sees "
                        "them until they are written): %s",
                        len(updates),
                        self.room,
                        self.path,
                        delay,
                        error,
                    )
                    self._held[:0] = batch
                    self._held_since = since
                    if self.stats is not None:
                        self.stats.journal_failures += 1
                    if self.report is not None:
                        self.report(
                            "storage.failed",
                            path=self.path,
                            what="journal",
                            attempt=failures,
                            error=_short_error(error),
                            held_bytes=self.unwritten_bytes,
                        )
                    await anyio.sleep(delay)
                    continue
                if failures and self.report is not None:
                    self.report("storage.recovered", path=self.path, what="journal", after=failures)
                failures = 0
                if self.stats is not None and updates:
                    self.stats.relay_seconds.observe(time.perf_counter() - since, len(updates))
                for entry in batch:
                    if isinstance(entry, tuple):
                        self.unwritten_bytes -= len(entry[2])
                        self._relay(*entry)
                    else:
                        entry()
        finally:
            if not self._held:
                self._committing = False
                self._committed.set()

    async def durable(self) -> None:
        """Wait until every update accepted so far is written and relayed."""
        while self._committing:
            await self._committed.wait()

    def apply(self, update: bytes, origin: Any) -> None:
        """Apply a peer's update; `origin` (its session) is excluded from the relay.

        Raises:
            ValueError: the bytes are not a Yjs update (the document is unchanged).
        """
        unsettled = self.unsettled
        stats = self.stats
        if stats is not None:
            started = time.perf_counter()
        for hook in self.before_apply:
            try:
                hook(self, origin)
            except Exception:  # pragma: no cover - defensive: a hook never refuses an edit
                log.exception("a before_apply hook of %r/%r failed", self.room, self.path)
        self._applying = origin
        try:
            unsettled.integrate(self.doc, update)
        finally:
            self._applying = None
        # What waited and now follows on goes to every session, `origin` included: the
        # structs that waited may have come from any peer, not this one.
        unsettled.settle(self.doc)
        if stats is not None:
            stats.updates_in += 1
            stats.bytes_in += len(update)
            if self.journal is None:  # relayed by now; a held update is timed at release
                stats.relay_seconds.observe(time.perf_counter() - started)

    def broadcast(self, message: bytes) -> None:
        """Queue `message` to every session of this document (the sender included)."""
        for session in list(self.sessions):
            session.enqueue(message)
        for listener in self.broadcast_listeners:
            listener(message)


def _short_error(error: BaseException, limit: int = 200) -> str:
    """An error as one short line, for activity events."""
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    text = text.splitlines()[0]
    return text if len(text) <= limit else text[: limit - 1] + "…"
