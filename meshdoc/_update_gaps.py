"""Hold back the structs of an update that come after a gap in their client's clocks.

Yjs integrates a client's structs strictly in clock order: a struct whose client has
earlier clocks this replica has not seen stays pending until they arrive. yrs (pycrdt 0.14)
does not: a struct whose origins are known is linked into its type even when earlier
clocks of its own client are missing, while the state vector stays at the gap. The text
then changes without the state vector moving, so anything keyed on the state vector
(`TextNode`'s ASCII shortcut, the fast text path) trusts a stale view, and an edit placed
from it can split a multi-byte character: the replica's in-memory text and its encoded
state then disagree, and replicas diverge. `integrable` keeps such structs out of what
is handed to yrs until their gap is filled, as Yjs would.

Only the v1 encoding is read (what meshdoc and y-websocket exchange); each struct is
skipped over, never decoded into values. The layout follows Yjs's `readClientsStructRefs`.
"""

from __future__ import annotations

from pycrdt import get_state, get_update, merge_updates

__all__ = ["decode_state", "integrable"]

#: Updates at least this long (bytes) are first checked by yrs itself (a few times faster
#: than reading them here, see `_gapless`); shorter ones, a keystroke's, are read at once.
NATIVE_CHECK_MIN = 4096


class _Reader:
    """Reads lib0 varints and skips values in a bytes object."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def uint(self) -> int:
        data = self.data
        pos = self.pos
        b = data[pos]
        pos += 1
        result = b & 0x7F
        shift = 7
        while b >= 0x80:
            b = data[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            shift += 7
        self.pos = pos
        return result

    def skip_varint(self) -> None:
        data = self.data
        pos = self.pos
        while data[pos] >= 0x80:
            pos += 1
        self.pos = pos + 1

    def skip_bytes(self) -> int:
        """Skip a length-prefixed byte string (a lib0 string too); returns where it began."""
        n = self.uint()
        start = self.pos
        self.pos = start + n
        if self.pos > len(self.data):
            raise ValueError("truncated update")
        return start

    def skip_any(self) -> None:
        """Skip one lib0 `any` value."""
        tag = self.data[self.pos]
        self.pos += 1
        if tag in (127, 126, 121, 120):  # undefined, null, false, true
            return
        if tag == 125:  # integer
            self.skip_varint()
        elif tag == 124:  # float32
            self.pos += 4
        elif tag in (123, 122):  # float64, bigint64
            self.pos += 8
        elif tag in (119, 116):  # string, bytes
            self.skip_bytes()
        elif tag == 118:  # object
            for _ in range(self.uint()):
                self.skip_bytes()
                self.skip_any()
        elif tag == 117:  # array
            for _ in range(self.uint()):
                self.skip_any()
        else:
            raise ValueError(f"unknown lib0 'any' tag {tag}")


def _skip_content(reader: _Reader, ref: int) -> int:
    """Skip an item's content; returns its length in clock units."""
    if ref == 4:  # string: clocks count UTF-16 units
        start = reader.skip_bytes()
        raw = reader.data[start : reader.pos]
        if raw.isascii():
            return len(raw)
        text = raw.decode("utf-8", errors="surrogatepass")
        return len(text.encode("utf-16-le", errors="surrogatepass")) // 2
    if ref == 1:  # deleted
        return reader.uint()
    if ref == 6:  # format: key, JSON value
        reader.skip_bytes()
        reader.skip_bytes()
        return 1
    if ref == 7:  # type
        if reader.uint() in (3, 5):  # XmlElement and XmlHook carry a name
            reader.skip_bytes()
        return 1
    if ref == 8:  # any
        n = reader.uint()
        for _ in range(n):
            reader.skip_any()
        return n
    if ref == 2:  # JSON
        n = reader.uint()
        for _ in range(n):
            reader.skip_bytes()
        return n
    if ref in (3, 5):  # binary, embed
        reader.skip_bytes()
        return 1
    if ref == 9:  # subdocument: guid, options
        reader.skip_bytes()
        reader.skip_any()
        return 1
    raise ValueError(f"unknown Yjs content ref {ref}")


def _uint(value: int, out: bytearray) -> None:
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)


def decode_state(state: bytes) -> dict[int, int]:
    """`client -> next clock` from an encoded state vector."""
    reader = _Reader(state)
    return {reader.uint(): reader.uint() for _ in range(reader.uint())}


def _gapless(update: bytes, state: dict[int, int]) -> bool:
    """Whether every struct of `update` follows on from `state`, asked of yrs.

    A stand-in for the replica's content (one GC struct per client, up to its clock) is
    merged with the update: yrs reports as the state of an update only runs that start at
    clock 0, so the update is gapless when nothing of the merge lies beyond that state.
    """
    merged = update
    if state:
        out = bytearray()
        _uint(len(state), out)
        for client, clock in state.items():
            _uint(1, out)
            _uint(client, out)
            out += b"\x00\x00"  # clock 0, a GC struct
            _uint(clock, out)
        out.append(0)  # no deletions
        merged = merge_updates(bytes(out), update)
    return get_update(merged, get_state(merged))[:1] == b"\x00"


def integrable(update: bytes, state: dict[int, int]) -> tuple[bytes, bool]:
    """The part of v1 `update` that a replica at `state` can integrate in clock order.

    Per client, structs are kept up to the first one that starts past what the replica
    has (plus what the kept ones add); that one and the rest of its client's structs are
    left out, as is a client whose first struct starts past the replica's clock. The
    delete set is kept whole: deletions of unknown items wait in yrs as in Yjs.

    Returns the update to apply (`update` itself when nothing is held back) and whether
    anything was held back.

    Raises:
        ValueError: the bytes are not a v1 update.
    """
    if len(update) >= NATIVE_CHECK_MIN and _gapless(update, state):
        return update, False
    try:
        reader = _Reader(update)
        if update[:2] == b"\x01\x01":  # one client, one struct (a keystroke): no skip inside
            reader.pos = 2
            client = reader.uint()
            if reader.uint() <= state.get(client, 0):
                return update, False
            reader.pos = 0
        groups: list[tuple[int, int, int, int, int]] = []  # kept, client, clock, start, stop
        held = False
        for _ in range(reader.uint()):
            count = reader.uint()
            client = reader.uint()
            first = clock = reader.uint()
            have = state.get(client, 0)
            start = reader.pos
            kept = seen = 0
            stop = start
            cut = False
            for _ in range(count):
                info = reader.data[reader.pos]
                reader.pos += 1
                ref = info & 0x1F
                if ref in (0, 10):  # GC, skip
                    length = reader.uint()
                else:
                    if info & 0x80:  # origin
                        reader.skip_varint()
                        reader.skip_varint()
                    if info & 0x40:  # right origin
                        reader.skip_varint()
                        reader.skip_varint()
                    if not info & 0xC0:  # parent: a root name or an ID, then a map key
                        if reader.uint() == 1:
                            reader.skip_bytes()
                        else:
                            reader.skip_varint()
                            reader.skip_varint()
                        if info & 0x20:
                            reader.skip_bytes()
                    length = _skip_content(reader, ref)
                if cut:
                    continue
                if clock > have or (ref == 10 and clock + length > have):
                    cut = True  # a gap: this struct and the rest of the client wait
                    continue
                clock += length
                seen += 1
                if ref != 10:  # a group never ends on a skip: keep up to the last struct
                    have = max(have, clock)
                    kept = seen
                    stop = reader.pos
            held = held or cut
            if kept:
                groups.append((kept, client, first, start, stop))
        if reader.pos > len(update):
            raise ValueError("truncated update")
        if not held:
            return update, False
        out = bytearray()
        _uint(len(groups), out)
        for kept, client, first, start, stop in groups:
            _uint(kept, out)
            _uint(client, out)
            _uint(first, out)
            out += update[start:stop]
        out += update[reader.pos :]  # the delete set
        return bytes(out), True
    except IndexError as exc:
        raise ValueError("truncated update") from exc
