"""Read a Yjs v1 update's structs without decoding their values.

What the gap check (`_update_gaps`) asks of an update: where each client's run starts
and ends, which IDs its structs point to (origin, right origin, an ID parent), and
whether a replica at a known state surely takes all of it in (`follows_on`). Each struct
is skipped over, never decoded; the layout follows Yjs's `readClientsStructRefs`.
"""

from __future__ import annotations

__all__ = ["NATIVE_CHECK_MIN", "decode_state", "follows_on"]

#: Updates at least this long (bytes) are first checked by yrs itself (a few times faster
#: than reading them here, see `_update_gaps._gapless`); shorter ones, a keystroke's, are
#: read at once.
NATIVE_CHECK_MIN = 4096


def _uint_at(data: bytes, pos: int) -> tuple[int, int]:
    """The lib0 varint at `pos`, and where it ends: the one varint reader of update parsing."""
    b = data[pos]
    if b < 0x80:
        return b, pos + 1
    result = b & 0x7F
    shift = 7
    pos += 1
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


class _Reader:
    """Reads lib0 varints and skips values in a bytes object."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def uint(self) -> int:
        value, self.pos = _uint_at(self.data, self.pos)
        return value

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
        return _utf16_length(reader.data[start : reader.pos])
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


def _utf16_length(raw: bytes) -> int:
    """The clock length of a string content: its UTF-16 units."""
    if raw.isascii():
        return len(raw)
    text = raw.decode("utf-8", errors="surrogatepass")
    return len(text.encode("utf-16-le", errors="surrogatepass")) // 2


def _item_at(data: bytes, pos: int, info: int, deps: list[int] | None) -> tuple[int, int]:
    """Read the struct at `pos` (past its info byte): its length in clock units, and where
    it ends. With `deps`, the IDs it needs (origin, right origin, an ID parent) are
    appended to it as client, clock pairs.

    Strings, formats and deletions (what editing writes) are read here straight through;
    other contents go through `_skip_content`.
    """
    ref = info & 0x1F
    if ref in (0, 10):  # GC, skip
        return _uint_at(data, pos)
    if info & 0x80:  # origin
        client, pos = _uint_at(data, pos)
        clock, pos = _uint_at(data, pos)
        if deps is not None:
            deps += (client, clock)
    if info & 0x40:  # right origin
        client, pos = _uint_at(data, pos)
        clock, pos = _uint_at(data, pos)
        if deps is not None:
            deps += (client, clock)
    if not info & 0xC0:  # parent: a root name or an ID, then a map key
        named, pos = _uint_at(data, pos)
        if named == 1:
            size, pos = _uint_at(data, pos)
            pos += size
        else:
            client, pos = _uint_at(data, pos)
            clock, pos = _uint_at(data, pos)
            if deps is not None:
                deps += (client, clock)
        if info & 0x20:
            size, pos = _uint_at(data, pos)
            pos += size
    if ref == 4:  # string
        size, pos = _uint_at(data, pos)
        end = pos + size
        if end > len(data):
            raise ValueError("truncated update")
        return _utf16_length(data[pos:end]), end
    if ref == 6:  # format: key, JSON value
        size, pos = _uint_at(data, pos)
        size, pos = _uint_at(data, pos + size)
        return 1, pos + size
    if ref == 1:  # deleted
        return _uint_at(data, pos)
    reader = _Reader(data)
    reader.pos = pos
    length = _skip_content(reader, ref)
    return length, reader.pos


def _uint(value: int, out: bytearray) -> None:
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)


def decode_state(state: bytes) -> dict[int, int]:
    """`client -> next clock` from an encoded state vector."""
    reader = _Reader(state)
    return {reader.uint(): reader.uint() for _ in range(reader.uint())}


def follows_on(update: bytes, known: dict[int, int]) -> tuple[list[int] | None, bool]:
    """Where `update` ends per client (flat client, clock pairs), and whether a replica
    whose state is at least `known` surely integrates all of it at once.

    Sure means: each client's structs start at or before its clock in `known` and hold no
    skip, and every ID a struct needs (origin, right origin, an ID parent) lies below
    `known`, before the struct in its own client's run, or in another client's run of the
    update that is itself sure (no cycle). yrs then links nothing early and parks nothing,
    so the replica's state reaches these ends: a cache of `known` can move to them without
    reading the document's state vector (read and decoded, it costs O(clients) per update).

    Long updates (a sync, a snapshot) are not read here: ``(None, False)``.

    Raises:
        ValueError: the bytes are not a v1 update.
    """
    if len(update) >= NATIVE_CHECK_MIN:
        return None, False
    try:
        if update[:2] == b"\x01\x01":  # one struct of one client: a keystroke?
            typed = _typed(update, known)
            if typed is not None:
                return [typed[0], typed[1]], typed[2]
        data = update
        ends: list[int] = []
        waiting: list[tuple[int, list[int]]] = []  # a group's client, its IDs in other runs
        deps: list[int] = []
        sure = True
        groups, pos = _uint_at(data, 0)
        for _ in range(groups):
            count, pos = _uint_at(data, pos)
            client, pos = _uint_at(data, pos)
            clock, pos = _uint_at(data, pos)
            have = known.get(client, 0)
            sure = sure and clock <= have
            others: list[int] = []
            for _ in range(count):
                info = data[pos]
                if info & 0x1F == 10:  # a skip: a gap inside the run
                    sure = False
                length, pos = _item_at(data, pos + 1, info, deps)
                if deps:
                    limit = max(have, clock)
                    for i in range(0, len(deps), 2):
                        owner = deps[i]
                        if owner == client:
                            sure = sure and deps[i + 1] < limit
                        elif deps[i + 1] >= known.get(owner, 0):
                            others += (owner, deps[i + 1])
                    deps.clear()
                clock += length
            ends += (client, clock)
            if others:
                waiting.append((client, others))
        if pos > len(data):
            raise ValueError("truncated update")
        return ends, sure and (not waiting or _runs_resolve(ends, waiting))
    except IndexError as exc:
        raise ValueError("truncated update") from exc


def _typed(data: bytes, known: dict[int, int]) -> tuple[int, int, bool] | None:
    """`follows_on` for an update of one string struct placed by its origins (typing),
    read straight through in a third of the general reader's time: its client, where it
    ends, whether it surely follows on. None for anything else.

    Raises:
        ValueError, IndexError: the bytes are not a v1 update.
    """
    client, pos = _uint_at(data, 2)
    clock, pos = _uint_at(data, pos)
    info = data[pos]
    if info & 0x1F != 4 or not info & 0xC0:
        return None
    pos += 1
    have = known.get(client, 0)
    sure = clock <= have
    if info & 0x80:  # origin
        owner, pos = _uint_at(data, pos)
        at, pos = _uint_at(data, pos)
        sure = sure and at < (have if owner == client else known.get(owner, 0))
    if info & 0x40:  # right origin
        owner, pos = _uint_at(data, pos)
        at, pos = _uint_at(data, pos)
        sure = sure and at < (have if owner == client else known.get(owner, 0))
    size, pos = _uint_at(data, pos)
    if pos + size > len(data):
        raise ValueError("truncated update")
    return client, clock + _utf16_length(data[pos : pos + size]), sure


def _runs_resolve(ends: list[int], waiting: list[tuple[int, list[int]]]) -> bool:
    """Whether the runs that need IDs of other runs of the update can be ordered so each
    needs only runs already resolved (IDs below their ends): yrs can then link them all."""
    end_of = dict(zip(ends[::2], ends[1::2], strict=True))
    unresolved = {client for client, _ in waiting}
    progress = True
    while unresolved and progress:
        progress = False
        for client, ids in waiting:
            if client not in unresolved:
                continue
            if all(
                ids[i] not in unresolved and ids[i + 1] < end_of.get(ids[i], 0)
                for i in range(0, len(ids), 2)
            ):
                unresolved.discard(client)
                progress = True
    return not unresolved
