"""Writing the Yjs v1 update bytes of the fast text path: varints, client IDs, delete sets.

Per keystroke, so small values come from tables and client IDs (up to 8 bytes each) are
encoded once.
"""

from __future__ import annotations

__all__ = ["SMALL", "client_bytes", "encode_deletes", "varint"]

SMALL = [bytes((v,)) for v in range(256)]
_CLIENTS: dict[int, bytes] = {}


def varint(value: int) -> bytes:
    if value < 0x80:
        return SMALL[value]
    if value < 0x4000:
        return bytes((0x80 | (value & 0x7F), value >> 7))
    if value < 0x200000:
        return bytes((0x80 | (value & 0x7F), 0x80 | ((value >> 7) & 0x7F), value >> 14))
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def client_bytes(value: int) -> bytes:
    """Client IDs are few and long (up to 8 bytes): encode each once."""
    encoded = _CLIENTS.get(value)
    if encoded is None:
        if len(_CLIENTS) >= 4096:  # a long-lived process meets many peers: stay bounded
            _CLIENTS.clear()
        encoded = _CLIENTS[value] = varint(value)
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
    parts = [b"\x00", varint(len(by_client))]
    for client, spans in by_client.items():
        parts += (client_bytes(client), varint(len(spans)))
        for clock, length in spans:
            parts += (varint(clock), varint(length))
    return b"".join(parts)
