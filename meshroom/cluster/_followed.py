"""What a process knows of each open document it shares through Redis.

A document is followed while it is open here: the reader applies the other
processes' entries to it, and it has exactly one journal at a time, which
decides what an update waits for before it is relayed:

- this process is its **writer** (holds its lease): storage's journal (the log),
  and updates are published to the stream after the relay;
- otherwise: its stream (`StreamJournal`), and it is not published again.

`as_writer` / `as_reader` switch between the two, when a lease is won or given up.
"""

from __future__ import annotations

import contextlib
import uuid
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    from pycrdt import Doc

    from ..server._document import Journal, LiveDocument
    from ._awareness import AwarenessRelay
    from ._journal import StreamJournal

__all__ = ["REDIS_ORIGIN", "Followed"]


class _RedisOrigin:
    """Transaction origin of updates applied from Redis (never published again)."""

    def __repr__(self) -> str:
        return "REDIS_ORIGIN"


REDIS_ORIGIN: Any = _RedisOrigin()


@dataclass
class Followed:
    """An open document whose stream this process follows."""

    key: str
    member: str
    room: str
    path: str
    doc: weakref.ref[Doc]
    #: The server's live document (None for a document driven by hand, without a server).
    live: weakref.ref[LiveDocument] | None
    last_id: bytes
    token: bytes = field(default_factory=lambda: uuid.uuid4().hex.encode())
    since_compaction: int = 0
    awareness: AwarenessRelay | None = None
    #: An update could not be published: publish the full state once Redis answers.
    republish: bool = False
    #: This process holds the document's writer lease and writes it to storage.
    writer: bool = False
    #: The document's stream journal, while this process does not write it.
    stream_journal: Journal | None = None
    #: Updates the stream journal appended, until `on_change` sees them (not published
    #: twice), by identity: the server hands the same bytes object to both.
    in_stream: dict[int, bytes] = field(default_factory=dict)
    #: When the document last changed (a writer lets go of an idle document).
    active_at: float = field(default_factory=anyio.current_time)
    #: The last stream entry the writer had stored when it last stored the document.
    stored_id: bytes = b"0-0"

    def as_reader(self, journal: StreamJournal) -> None:
        """Make the stream this document's journal (from now on)."""
        live = self.live() if self.live is not None else None
        self.writer = False
        if live is None:
            return
        if self.stream_journal is None:
            self.stream_journal = self._journal_for(journal)
        live.journal = self.stream_journal

    def _journal_for(self, journal: StreamJournal) -> Journal:
        async def write(updates: list[bytes]) -> None:
            await journal.append(self.key, self.member, updates, self.token)
            for update in updates:
                self.in_stream[id(update)] = update
            self.since_compaction += len(updates)

        return write

    def published_by_journal(self, update: bytes) -> bool:
        """Whether the stream journal already appended `update` (forgets it: seen once)."""
        return self.in_stream.pop(id(update), None) is update

    @contextlib.contextmanager
    def relaying_at_once(self) -> Iterator[None]:
        """Entries read from the stream are in it already: relay them without a journal.

        A writer's journal is storage's, which must write them: that one stays.
        """
        live = self.live() if self.live is not None else None
        if live is None or self.writer or live.journal is None:
            yield
            return
        journal, live.journal = live.journal, None
        try:
            yield
        finally:
            live.journal = journal
