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

Only the v1 encoding is read (what meshdoc and y-websocket exchange), by `_update_scan`.
"""

from __future__ import annotations

from weakref import WeakKeyDictionary

from pycrdt import Doc, get_state, get_update, merge_updates

from ._lib0 import append_var_uint, read_var_uint
from ._scan import (
    NATIVE_CHECK_MIN,
    _item_at,
    _Reader,
    _typed,
    check_state_vector,
    check_update,
    decode_state,
    follows_on,
)

__all__ = [
    "MAX_UNSETTLED",
    "NATIVE_CHECK_MIN",
    "Unsettled",
    "decode_state",
    "follows_on",
    "integrable",
    "unsettled_of",
]

#: Updates kept for re-application while their dependencies are missing (default 256):
#: enough for a reconnecting peer's burst, bounded so a peer whose dependencies never
#: arrive cannot make every later update pay for an ever-growing merge.
MAX_UNSETTLED = 256


def _gapless(update: bytes, state: dict[int, int]) -> bool:
    """Whether every struct of `update` follows on from `state`, asked of yrs.

    A stand-in for the replica's content (one GC struct per client, up to its clock) is
    merged with the update: yrs reports as the state of an update only runs that start at
    clock 0, so the update is gapless when nothing of the merge lies beyond that state.
    """
    merged = update
    if state:
        out = bytearray()
        append_var_uint(len(state), out)
        for client, clock in state.items():
            append_var_uint(1, out)
            append_var_uint(client, out)
            out += b"\x00\x00"  # clock 0, a GC struct
            append_var_uint(clock, out)
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
        append_var_uint(len(groups), out)
        for kept, client, first, start, stop in groups:
            append_var_uint(kept, out)
            append_var_uint(client, out)
            append_var_uint(first, out)
            out += update[start:stop]
        out += update[reader.pos :]  # the delete set
        return bytes(out), True
    except IndexError as exc:
        raise ValueError("truncated update") from exc


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

    groups, pos = read_var_uint(update, 0)
    for _ in range(groups):
        count, pos = read_var_uint(update, pos)
        client, pos = read_var_uint(update, pos)
        clock, pos = read_var_uint(update, pos)
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
            ValueError: the bytes are not a v1 update, or claim more than they hold (the
                doc is unchanged: see `check_update`, read before yrs sizes memory from it).
        """
        check_update(update)
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
            ValueError: not a state vector, or one claiming more clients than it holds.
        """
        if state_vector is not None:
            check_state_vector(state_vector)
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
