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

`Unsettled` (one per `Doc`, see `unsettled_of`) is what every writer of peers' updates
goes through: `MeshDocument.apply_update`, and meshroom's server, client and cluster. It
keeps what waits, applies it once its gap fills, and hands it on with the document's
encoded state, as Yjs sends its pending structs.

Only the v1 encoding is read (what meshdoc and y-websocket exchange); each struct is
skipped over, never decoded into values. The layout follows Yjs's `readClientsStructRefs`.
"""

from __future__ import annotations

from weakref import WeakKeyDictionary

from pycrdt import Doc, get_state, get_update, merge_updates

__all__ = ["MAX_UNSETTLED", "Unsettled", "decode_state", "follows_on", "integrable", "unsettled_of"]

#: Updates kept for re-application while their dependencies are missing (default 256):
#: enough for a reconnecting peer's burst, bounded so a peer whose dependencies never
#: arrive cannot make every later update pay for an ever-growing merge.
MAX_UNSETTLED = 256

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


def _uint_at(data: bytes, pos: int) -> tuple[int, int]:
    """The lib0 varint at `pos`, and where it ends (`_Reader.uint` without an object)."""
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
                length, reader.pos = _item_at(reader.data, reader.pos, info, None)
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


#: A clock no state reaches: the client blocks nothing.
_NEVER = 1 << 64


def _needs(update: bytes, state: dict[int, int]) -> dict[int, int]:
    """Per client, the clock the state must reach before the part of `update` that waits
    may go in: where a client's first struct past `state` starts, or one past an ID a
    struct points to (origin, ID parent) that `state` lacks. When nothing is found (yrs
    parked it for a reason not read here), every client the update names counts, at its
    next clock."""
    needs: dict[int, int] = {}
    named: dict[int, int] = {}
    deps: list[int] = []

    def need(client: int, clock: int) -> None:
        if clock < needs.get(client, _NEVER):
            needs[client] = clock

    groups, pos = _uint_at(update, 0)
    for _ in range(groups):
        count, pos = _uint_at(update, pos)
        client, pos = _uint_at(update, pos)
        clock, pos = _uint_at(update, pos)
        named[client] = state.get(client, 0) + 1
        for _ in range(count):
            length, pos = _item_at(update, pos + 1, update[pos], deps)
            if clock > state.get(client, 0):
                need(client, clock)
            clock += length
    for i in range(0, len(deps), 2):
        named[deps[i]] = state.get(deps[i], 0) + 1
        if deps[i + 1] >= state.get(deps[i], 0):
            need(deps[i], deps[i + 1] + 1)
    return needs or named


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


class Unsettled:
    """The updates of one `Doc` that wait for a gap in their clocks to fill.

    Every path that applies a peer's update to the doc goes through `integrate` (the part
    that follows on from the doc's state goes in, the rest waits here) and then `settle`
    (what waited and now follows on goes in). They are two steps so that a caller can give
    the settled part its own transaction: a server must relay it to every peer, the one
    that filled the gap included, and publish or store it, while the peer's own update is
    not echoed back to it. `encode` adds what waits to the doc's encoded state.

    The doc's state vector is read (and decoded, O(clients)) only when an update cannot be
    shown to follow on from a cached lower bound of it (`follows_on`): a keystroke costs
    a read of its own bytes, whatever the number of clients the document has seen. And
    `settle` works only after an update of a client the waiting ones need (their own or
    one their structs point to): updates that wait for a gap that never fills do not
    make every other client's keystroke pay for merging them.
    """

    __slots__ = ("_advanced", "_blocking", "_known", "_needs", "updates")

    def __init__(self) -> None:
        #: Updates not fully integrated yet, oldest first (at most `MAX_UNSETTLED`).
        self.updates: list[bytes] = []
        # client -> a clock the doc's state has reached (state vectors only grow)
        self._known: dict[int, int] = {}
        # waiting update -> client -> the clock its state must reach for it to go on
        self._needs: dict[bytes, dict[int, int]] = {}
        # client -> the least of those clocks over every waiting update
        self._blocking: dict[int, int] = {}
        # an update went in since the last settle that may let a waiting one in
        self._advanced = False

    def __bool__(self) -> bool:
        """Whether `settle` has something to try: updates wait, and an update of a client
        they need went in since."""
        return self._advanced and bool(self.updates)

    def integrate(self, doc: Doc, update: bytes) -> None:
        """Apply what of `update` follows on from `doc`'s state; keep the rest waiting.

        Raises:
            ValueError: the bytes are not a v1 update (the doc is unchanged).
        """
        known = self._known
        if update[:2] == b"\x01\x01":  # a keystroke: the common case, read inline
            try:
                typed = _typed(update, known)
            except IndexError as exc:
                raise ValueError("truncated update") from exc
            if typed is not None and typed[2]:
                doc.apply_update(update)
                if typed[1] > known.get(typed[0], 0):
                    known[typed[0]] = typed[1]
                if typed[1] >= self._blocking.get(typed[0], _NEVER):
                    self._advanced = True
                return
        ends, sure = follows_on(update, known)
        if sure:
            doc.apply_update(update)
        else:
            state = self._known = decode_state(doc.get_state())
            ready, held = integrable(update, state)
            if ready != b"\x00\x00":
                doc.apply_update(ready)
            self._advanced = True  # not read: whatever went in may be needed
            # yrs also parks structs whose origins are missing (and may drop them later):
            # those wait here too, and are applied again with the next updates.
            current = doc.get_state()
            if held or get_update(update, current)[:1] != b"\x00":
                self._wait(update, decode_state(current))
                return
        if ends:  # all of it is in: the doc's state reached its ends
            known = self._known
            blocking = self._blocking
            for i in range(0, len(ends), 2):
                if ends[i + 1] > known.get(ends[i], 0):
                    known[ends[i]] = ends[i + 1]
                if ends[i + 1] >= blocking.get(ends[i], _NEVER):
                    self._advanced = True

    def _wait(self, update: bytes, state: dict[int, int]) -> None:
        if update in self._needs:
            return
        self.updates.append(update)
        self._needs[update] = _needs(update, state)
        if len(self.updates) > MAX_UNSETTLED:
            del self._needs[self.updates.pop(0)]
        self._block()

    def _block(self) -> None:
        blocking: dict[int, int] = {}
        for needs in self._needs.values():
            for client, clock in needs.items():
                if clock < blocking.get(client, _NEVER):
                    blocking[client] = clock
        self._blocking = blocking

    def settle(self, doc: Doc) -> None:
        """Apply what waits and now follows on; forget what the doc has in full."""
        if not self:
            return
        self._advanced = False
        # yrs (pycrdt 0.14) can drop an update parked as pending when later ones arrive
        # before its dependencies; applying the parked ones again, merged, once more
        # updates are in, integrates them (re-applying is idempotent).
        state = decode_state(doc.get_state())
        ready, _ = integrable(merge_updates(*self.updates), state)
        if ready != b"\x00\x00":
            doc.apply_update(ready)
        self._known = state
        current = doc.get_state()
        self.updates = [u for u in self.updates if get_update(u, current)[:1] != b"\x00"]
        # what the rest need now (what went in may have moved it)
        state = decode_state(current) if self.updates else {}
        self._needs = {u: _needs(u, state) for u in self.updates}
        self._block()

    def apply(self, doc: Doc, update: bytes) -> None:
        """`integrate` then `settle`, in the caller's transaction (if any)."""
        self.integrate(doc, update)
        self.settle(doc)

    def encode(self, doc: Doc, state_vector: bytes | None = None) -> bytes:
        """`doc`'s encoded state (what the holder of `state_vector` lacks), with what waits.

        Raises:
            ValueError: not a state vector.
        """
        update = Doc.get_update(doc, state_vector)  # not an override that calls back here
        if self.updates:
            update = merge_updates(update, *self.updates)
            if state_vector is not None:
                update = get_update(update, state_vector)
        return update


_UNSETTLED: WeakKeyDictionary[Doc, Unsettled] = WeakKeyDictionary()


def unsettled_of(doc: Doc) -> Unsettled:
    """The one `Unsettled` of `doc`: every wrapper of a doc (a `MeshDocument`, a room's live
    document, a client link) shares it, so what one holds back another settles and
    encodes."""
    unsettled = _UNSETTLED.get(doc)
    if unsettled is None:
        unsettled = _UNSETTLED[doc] = Unsettled()
    return unsettled
