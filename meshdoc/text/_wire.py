"""Writing the Yjs v1 update bytes of the fast text path: varints, client IDs, delete sets.

Per keystroke, so small values come from tables and client IDs (up to 8 bytes each) are
encoded once.
"""

from __future__ import annotations

from ..updates._lib0 import write_var_uint

__all__ = ["client_bytes", "encode_deletes"]

_CLIENTS: dict[int, bytes] = {}


def client_bytes(value: int) -> bytes:
    """Client IDs are few and long (up to 8 bytes): encode each once."""
    encoded = _CLIENTS.get(value)
    if encoded is None:
        if len(_CLIENTS) >= 4096:  # a long-lived process meets many peers: stay bounded
            _CLIENTS.clear()
        encoded = _CLIENTS[value] = write_var_uint(value)
    return encoded


def encode_deletes(ranges: list[tuple[int, int, int]]) -> bytes:
    """A v1 update with no items and these deletions (Yjs `writeDeleteSet`)."""
    by_client: dict[int, list[tuple[int, int]]] = {}
    for client, clock, length in sorted(ranges):
        spans = by_client.setdefault(client, [])
        if spans and spans[-1][0] + spans[-1][1] == clock:
            spans[-1] = (spans[-1][0], spans[-1][1] + length)
        else:
            spans.append((clock, length))
    parts = [b"\x00", write_var_uint(len(by_client))]
    for client, spans in by_client.items():
        parts += (client_bytes(client), write_var_uint(len(spans)))
        for clock, length in spans:
            parts += (write_var_uint(clock), write_var_uint(length))
    return b"".join(parts)
