"""Awareness relay for one document: who is here, with which cursor, by Yjs client id.

The server holds no awareness state of its own: unlike pycrdt's `Awareness`,
which publishes an empty ``{}`` state for the server (a phantom participant in
every client's list), this store only keeps what clients sent, with the clock
rules of `y-protocols/awareness`: a newer clock wins; the same clock with a
``null`` state removes. Removing a disconnected client's states produces an
update with ``null`` and a bumped clock, which every client applies.
"""

from __future__ import annotations

from typing import Any

from ..protocol._messages import AwarenessEntry, encode_awareness_update

__all__ = ["AwarenessStore"]


class AwarenessStore:
    """Current awareness states of one document, applied with y-protocols' clock rules."""

    def __init__(self) -> None:
        self._clocks: dict[int, int] = {}
        self._states: dict[int, dict[str, Any]] = {}

    @property
    def states(self) -> dict[int, dict[str, Any]]:
        """Client id → state, for every client currently present."""
        return dict(self._states)

    def apply(self, entries: list[AwarenessEntry]) -> list[AwarenessEntry]:
        """Apply entries from a client; return those accepted (to relay to everyone)."""
        accepted = []
        for entry in entries:
            clock = self._clocks.get(entry.client_id, 0)
            known = entry.client_id in self._clocks
            removes = entry.state is None and entry.client_id in self._states
            if entry.clock > clock or not known or (entry.clock == clock and removes):
                self._clocks[entry.client_id] = entry.clock
                if entry.state is None:
                    self._states.pop(entry.client_id, None)
                else:
                    self._states[entry.client_id] = entry.state
                accepted.append(entry)
        return accepted

    def remove(self, client_ids: set[int] | list[int]) -> bytes | None:
        """Drop these clients' states; return the update that tells everyone, if any."""
        removed = []
        for client_id in client_ids:
            if client_id in self._states:
                del self._states[client_id]
                clock = self._clocks[client_id] + 1
                self._clocks[client_id] = clock
                removed.append(AwarenessEntry(client_id, clock, None))
        return encode_awareness_update(removed) if removed else None

    def encode_all(self) -> bytes | None:
        """Every present client's state, for a late joiner (None when nobody is here)."""
        if not self._states:
            return None
        return encode_awareness_update(
            AwarenessEntry(client_id, self._clocks[client_id], state)
            for client_id, state in self._states.items()
        )
