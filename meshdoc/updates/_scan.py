"""Read a Yjs v1 update's structs without decoding their values.

What the gap check (`_gaps`) asks of an update: where each client's run starts
and ends, which IDs its structs point to (origin, right origin, an ID parent), and
whether a replica at a known state surely takes all of it in (`follows_on`). Each struct
is skipped over, never decoded; the layout follows Yjs's `readClientsStructRefs`.

It is also where a peer's bytes are checked before they reach yrs (`check_update`,
`check_state_vector`). yrs sizes memory from the counts an update or a state vector claims
before reading what they count: a 75-byte state vector claiming 2**28 clients makes it
allocate and clear 512 MiB, and an `any` value nested 40,000 deep overflows its stack and
kills the process. Both checks compare every count with the bytes left, so what yrs
reserves is bounded by the size of the message.

Longer than 400 lines: one reader of one format (Yjs v1 structs), whose hot paths (a
keystroke's update, matched by one regular expression) and slow paths share its tables.
"""

from __future__ import annotations

import re

from ._lib0 import read_var_uint

__all__ = [
    "MAX_ANY_DEPTH",
    "NATIVE_CHECK_MIN",
    "check_state_vector",
    "check_update",
    "decode_state",
    "follows_on",
]

#: Updates at least this long (bytes) are first checked by yrs itself (a few times faster
#: than reading them here, see `_update_gaps._gapless`); shorter ones, a keystroke's, are
#: read at once.
NATIVE_CHECK_MIN = 4096

#: Deepest nesting of arrays and objects in an `any` value (a map entry, an array item).
#: yrs decodes them recursively: on an 8 MiB stack it crashes between 20,000 and 40,000
#: levels (2 bytes each), and converting them to Python objects between 10,000 and 50,000.
#: 1000 is far above what an editor writes and well below both, even on a thread's smaller
#: stack.
MAX_ANY_DEPTH = 1000

_VARINT = rb"[\x80-\xff]{0,9}[\x00-\x7f]"
_ID = _VARINT * 2
_PLACED_STRING = (
    rb"(?:[\x84\x44]" + _ID + rb"|\xc4" + _ID * 2 + rb")(?:\x01.|\x02..|\x03...|\x04....)"
)
_PLACED_DELETED = rb"(?:[\x81\x41]" + _ID + rb"|\xc1" + _ID * 2 + rb")" + _VARINT
_GC_OR_SKIP = rb"[\x00\x0a]" + _VARINT
#: What editing writes most, matched whole in one call (a Python loop reads a struct in
#: about 2.5 us, 15 times slower): a string of 1 to 4 bytes (one typed character) or a
#: deleted run, placed by its origin, right origin or both; a GC or skip struct. These
#: carry no count, so `check_update` only needs where they end; any other struct (or an
#: overlong varint, or bytes that end early) does not match and is read by `_item_at`.
_SIMPLE = b"|".join((_PLACED_STRING, _PLACED_DELETED, _GC_OR_SKIP))
_SIMPLE_STRUCT = re.compile(_SIMPLE, re.DOTALL).match
#: A whole update of one such struct and no deletions: what a keystroke sends.
_SIMPLE_UPDATE = re.compile(rb"\x01\x01" + _ID + rb"(?:" + _SIMPLE + rb")\x00", re.DOTALL).fullmatch


class _Reader:
    """Reads lib0 varints and skips values in a bytes object."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def uint(self) -> int:
        value, self.pos = read_var_uint(self.data, self.pos)
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
        """Skip one lib0 `any` value.

        Containers are followed with a stack of their own, not by recursion, so that
        nesting is bounded by `MAX_ANY_DEPTH` and never by the interpreter's stack; and a
        container's length is checked against the bytes left, since yrs reserves room for
        that many entries before reading them.

        Raises:
            ValueError: an unknown tag, a length past the end, or nesting too deep.
            IndexError: the bytes end inside the value.
        """
        data = self.data
        tag = data[self.pos]
        if tag != 117 and tag != 118:  # not a container: the common case
            self._skip_scalar(tag)
            return
        left = [1]  # values still to skip in each open container, outermost first
        keyed = [False]  # whether that container is an object (each value after a key)
        while left:
            if not left[-1]:
                left.pop()
                keyed.pop()
                continue
            left[-1] -= 1
            if keyed[-1]:
                self.skip_bytes()
            tag = data[self.pos]
            if tag != 117 and tag != 118:
                self._skip_scalar(tag)
                continue
            self.pos += 1
            if len(left) > MAX_ANY_DEPTH:
                raise ValueError(f"an 'any' value nests deeper than {MAX_ANY_DEPTH} levels")
            size = self.uint()
            if size > len(data) - self.pos:  # every entry takes a byte at least
                raise ValueError(
                    f"an 'any' {'object' if tag == 118 else 'array'} claims {size} entries "
                    f"in {len(data) - self.pos} bytes"
                )
            left.append(size)
            keyed.append(tag == 118)

    def _skip_scalar(self, tag: int) -> None:
        """Skip an `any` value that is not an array or an object (its tag at `pos`)."""
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
    if ref in (8, 2):  # any, JSON: a count of values (yrs reserves room for them first)
        n = reader.uint()
        left = len(reader.data) - reader.pos
        if n > left:
            raise ValueError(f"a content claims {n} values in {left} bytes")
        skip = reader.skip_any if ref == 8 else reader.skip_bytes
        for _ in range(n):
            skip()
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
        return read_var_uint(data, pos)
    if info & 0x80:  # origin
        client, pos = read_var_uint(data, pos)
        clock, pos = read_var_uint(data, pos)
        if deps is not None:
            deps += (client, clock)
    if info & 0x40:  # right origin
        client, pos = read_var_uint(data, pos)
        clock, pos = read_var_uint(data, pos)
        if deps is not None:
            deps += (client, clock)
    if not info & 0xC0:  # parent: a root name or an ID, then a map key
        named, pos = read_var_uint(data, pos)
        if named == 1:
            size, pos = read_var_uint(data, pos)
            pos += size
        else:
            client, pos = read_var_uint(data, pos)
            clock, pos = read_var_uint(data, pos)
            if deps is not None:
                deps += (client, clock)
        if info & 0x20:
            size, pos = read_var_uint(data, pos)
            pos += size
    if ref == 4:  # string
        size, pos = read_var_uint(data, pos)
        end = pos + size
        if end > len(data):
            raise ValueError("truncated update")
        return _utf16_length(data[pos:end]), end
    if ref == 6:  # format: key, JSON value
        size, pos = read_var_uint(data, pos)
        size, pos = read_var_uint(data, pos + size)
        return 1, pos + size
    if ref == 1:  # deleted
        return read_var_uint(data, pos)
    reader = _Reader(data)
    reader.pos = pos
    length = _skip_content(reader, ref)
    return length, reader.pos


def check_state_vector(state: bytes) -> None:
    """Refuse a state vector that claims more clients than its bytes hold.

    Each entry (client id, clock) takes 2 bytes at least. Only the count is checked: it is
    what yrs sizes its map from; entries past the end are yrs's own error.

    Raises:
        ValueError: empty, or a count the bytes cannot hold.
    """
    try:
        count, pos = read_var_uint(state, 0)
    except IndexError:
        raise ValueError("truncated state vector") from None
    if count * 2 > len(state) - pos:
        raise ValueError(f"state vector claims {count} clients in {len(state)} bytes")


def check_update(update: bytes) -> None:
    """Refuse a v1 update whose counts or lengths claim more than its bytes hold.

    Read the way yrs reads it, each count against the bytes left: clients (a group takes
    3 bytes at least, and the delete set 1), structs (2 bytes each), the values of an
    `any` or JSON content, the entries of an `any` array or object, delete-set clients
    and ranges (2 bytes each); lengths never past the end; `any` values no deeper than
    `MAX_ANY_DEPTH`. yrs can then reserve no more than a few times the update's size.

    It costs a read of the update's structs: typed characters and deletions, what editing
    writes most, are matched whole (`_SIMPLE_STRUCT`, 0.3 us each), others read by
    `_item_at` (a few us each).

    Raises:
        ValueError: the bytes are not a v1 update, or claim more than they hold.
    """
    data = update
    end = len(data)
    if _SIMPLE_UPDATE(data) is not None:  # a keystroke: nothing in it is counted
        return
    try:
        groups, pos = read_var_uint(data, 0)
        if groups * 3 + 1 > end - pos:
            raise ValueError(f"update claims {groups} clients in {end} bytes")
        for _ in range(groups):
            count, pos = read_var_uint(data, pos)
            if count * 2 > end - pos:
                raise ValueError(f"update claims {count} structs in {end - pos} bytes")
            pos = read_var_uint(data, read_var_uint(data, pos)[1])[1]  # client, clock
            for _ in range(count):
                simple = _SIMPLE_STRUCT(data, pos)
                if simple is not None:
                    pos = simple.end()
                else:
                    pos = _item_at(data, pos + 1, data[pos], None)[1]
        clients, pos = read_var_uint(data, pos)  # the delete set
        if clients * 2 > end - pos:
            raise ValueError(f"delete set claims {clients} clients in {end - pos} bytes")
        for _ in range(clients):
            ranges, pos = read_var_uint(data, read_var_uint(data, pos)[1])
            if ranges * 2 > end - pos:
                raise ValueError(f"delete set claims {ranges} ranges in {end - pos} bytes")
            for _ in range(ranges):
                pos = read_var_uint(data, read_var_uint(data, pos)[1])[1]  # clock, length
    except IndexError:
        raise ValueError("truncated update") from None
    if pos > end:
        raise ValueError("truncated update")


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
        groups, pos = read_var_uint(data, 0)
        for _ in range(groups):
            count, pos = read_var_uint(data, pos)
            client, pos = read_var_uint(data, pos)
            clock, pos = read_var_uint(data, pos)
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
    client, pos = read_var_uint(data, 2)
    clock, pos = read_var_uint(data, pos)
    info = data[pos]
    if info & 0x1F != 4 or not info & 0xC0:
        return None
    pos += 1
    have = known.get(client, 0)
    sure = clock <= have
    if info & 0x80:  # origin
        owner, pos = read_var_uint(data, pos)
        at, pos = read_var_uint(data, pos)
        sure = sure and at < (have if owner == client else known.get(owner, 0))
    if info & 0x40:  # right origin
        owner, pos = read_var_uint(data, pos)
        at, pos = read_var_uint(data, pos)
        sure = sure and at < (have if owner == client else known.get(owner, 0))
    size, pos = read_var_uint(data, pos)
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
