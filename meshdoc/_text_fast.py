"""The fast text path: edits written as Yjs updates placed by item ID, not by position.

pycrdt's positional edits walk the text's item list from its start (yrs `find_position`), so
an edit costs O(items before it). An update that names its neighbours by ID integrates without
that walk. This module keeps a `RunIndex` of one text's items (IDs, origins, deletions) and
turns `insert`/`delete` at a code-point position into such updates, applied in the caller's
transaction (so they carry its origin, undo sees them, observers fire as usual).

Keeping the index true: before each edit the document's state vector and the text's length are
compared with what the index reflects. Anything else that happened (other peers, undo, marks,
raw pycrdt writes) is read back from `doc.get_update(state)`: new items are placed with Yjs's
own conflict resolution (YATA, as in Yjs `Item.integrate`), deletions are applied, and the
resulting length is checked against pycrdt's. Texts with content the index does not model
(embeds, nested types) raise `Unsupported`, and the caller goes back to the plain path. Marks
are modelled (format items), so positions, deletes and sticky positions stay fast on marked
text; inserts into a text that holds marks are left to the plain path.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections import deque
from typing import Any

from pycrdt import Doc, XmlText

from ._text_codec import Item, decode_delete_set, split_update, utf16_length
from ._text_index import Run, RunIndex, Unsupported

__all__ = ["FastText", "Unsupported"]

_STRING, _DELETED, _FORMAT = 4, 1, 6


_SMALL = [bytes((v,)) for v in range(256)]
_CLIENTS: dict[int, bytes] = {}


def _varint(value: int) -> bytes:
    if value < 0x80:
        return _SMALL[value]
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


def _client(value: int) -> bytes:
    """Client IDs are few and long (up to 8 bytes): encode each once."""
    encoded = _CLIENTS.get(value)
    if encoded is None:
        if len(_CLIENTS) >= 4096:  # a long-lived process meets many peers: stay bounded
            _CLIENTS.clear()
        encoded = _CLIENTS[value] = _varint(value)
    return encoded


def _decode_state(data: bytes) -> dict[int, int]:
    state: dict[int, int] = {}
    pos = 0
    values: list[int] = []
    while pos < len(data):
        result = shift = 0
        while True:
            b = data[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            if b < 0x80:
                break
            shift += 7
        values.append(result)
    for i in range(values[0] if values else 0):
        state[values[1 + 2 * i]] = values[2 + 2 * i]
    return state


def _encode_state(state: dict[int, int]) -> bytes:
    parts = [_varint(len(state))]
    for client, clock in state.items():
        parts += (_client(client), _varint(clock))
    return b"".join(parts)


def _encode_insert(
    client: int,
    clock: int,
    text: str,
    origin: tuple[int, int] | None,
    right_origin: tuple[int, int] | None,
    parent: tuple[int, int],
) -> bytes:
    """A v1 update with one string item (Yjs `writeStructs`): origins, or else the parent."""
    data = text.encode("utf-8")
    parts = [b"\x01\x01", _client(client), _varint(clock)]
    parts.append(_SMALL[_STRING | (0x80 if origin else 0) | (0x40 if right_origin else 0)])
    if origin:
        parts += (_client(origin[0]), _varint(origin[1]))
    if right_origin:
        parts += (_client(right_origin[0]), _varint(right_origin[1]))
    if not origin and not right_origin:
        parts += (b"\x00", _client(parent[0]), _varint(parent[1]))  # parent given by ID
    parts += (_varint(len(data)), data, b"\x00")  # no deletions
    return b"".join(parts)


def _encode_deletes(ranges: list[tuple[int, int, int]]) -> bytes:
    """A v1 update with no items and these deletions (Yjs `writeDeleteSet`)."""
    by_client: dict[int, list[tuple[int, int]]] = {}
    for client, clock, length in sorted(ranges):
        spans = by_client.setdefault(client, [])
        if spans and spans[-1][0] + spans[-1][1] == clock:
            spans[-1] = (spans[-1][0], spans[-1][1] + length)
        else:
            spans.append((clock, length))
    parts = [b"\x00", _varint(len(by_client))]
    for client, spans in by_client.items():
        parts += (_client(client), _varint(len(spans)))
        for clock, length in spans:
            parts += (_varint(clock), _varint(length))
    return b"".join(parts)


class FastText:
    """The item index of one `XmlText` and the edits made through it."""

    def __init__(self, text_id: tuple[int, int]) -> None:
        self.text_id = text_id
        # Deleting format items changes neither the state vector nor the length: plain-path
        # writes through `TextNode` set this so that the next sync re-reads deletions. Other
        # format deletions may go unseen; the index then counts a mark too many, which only
        # sends inserts to the plain path (see `insert`).
        self.marks_changed = False

        self.index = RunIndex()
        self.state: dict[int, int] = {}
        self.state_bytes = b""  # the encoded state vector the index reflects
        self.delete_set = b""  # the encoded delete set the index reflects, and decoded:
        self.deletes: dict[int, list[tuple[int, int]]] = {}
        self.bytes = 0  # UTF-8 length of the visible text, as pycrdt counts it
        self.client: int | None = None  # the document's client ID, read once
        self.head: bytes | None = None  # how every update of ours starts (count, client)
        # (index version, position, run ending there, run after it) after our last edit,
        # so that typing on from there needs no lookup
        # Kept in attributes, not a tuple: no allocation per keystroke (less garbage
        # collection). `cur_version` is -1 when there is no cursor.
        self.cur_version = -1
        self.cur_pos = 0
        self.cur_left: Run | None = None
        self.cur_right: Run | None = None
        self.cur_typing = False  # made by our insert: typing on may extend `cur_left`
        self.cur_template: tuple[bytes, bytes] | None = None
        self.last_clock = -1  # the clock of our last one-unit insert, and its encoding
        self.last_bytes = b""

    # -- keeping the index true ---------------------------------------------------------------

    def ensure(self, doc: Doc, ytext: XmlText, txn: Any) -> None:
        """Bring the index up to the document (cheap when nothing else happened)."""
        # pycrdt's own calls would each open a nested transaction: use the open one directly
        raw_txn = txn._txn
        state_bytes = doc._doc.get_state(raw_txn)
        length = ytext.integrated.len(raw_txn)
        if state_bytes == self.state_bytes and length == self.bytes and not self.marks_changed:
            return
        self.marks_changed = False
        state = _decode_state(state_bytes)
        update = doc._doc.get_update(raw_txn, _encode_state(self.state))
        items, delete_set = split_update(update)
        self._integrate_all(items)
        if delete_set != self.delete_set:
            # The delete set is the whole document's: only walk the ranges that are new.
            deletes = decode_delete_set(delete_set)
            for client, spans in deletes.items():
                if client not in self.index.by_client:
                    continue
                seen = self.deletes.get(client)
                if seen == spans:
                    continue
                known = set(seen) if seen else ()
                for clock, n in spans:
                    if (clock, n) not in known:
                        self._delete_ids(client, clock, n)
            self.deletes = deletes
            self.delete_set = delete_set
        self.state = state
        self.state_bytes = state_bytes
        if self.bytes != length:
            raise Unsupported(f"index length {self.bytes} disagrees with pycrdt's {length}")

    def _integrate_all(self, items: list[Item]) -> None:
        index = self.index
        queues: dict[int, deque[Item]] = {}
        for item in items:
            if index.find(item.client, item.clock) is None:
                queues.setdefault(item.client, deque()).append(item)

        def pending(ident: tuple[int, int]) -> deque[Item] | None:
            q = queues.get(ident[0])
            if q and q[0].clock <= ident[1] < q[-1].clock + q[-1].length:
                return q
            return None

        for client in list(queues):
            queue = queues[client]
            while queue:
                stack = [queue]
                while stack:
                    q = stack[-1]
                    if not q:
                        stack.pop()
                        continue
                    item = q[0]
                    blocker = None
                    for dep in (item.origin, item.right_origin):
                        if dep is not None and index.find(*dep) is None:
                            blocker = pending(dep)
                            if blocker is not None:
                                break
                    if blocker is not None and not any(b is blocker for b in stack):
                        stack.append(blocker)
                        continue
                    q.popleft()
                    stack.pop()
                    self._integrate(item)

    def _integrate(self, item: Item) -> None:
        """Place a new item like Yjs does, if it belongs to this text."""
        index = self.index
        origin, right_origin = item.origin, item.right_origin
        if origin is None and right_origin is None:
            if item.parent != self.text_id:
                return
        elif (origin is not None and index.find(*origin) is None) or (
            right_origin is not None and index.find(*right_origin) is None
        ):
            return  # its neighbours are not ours: it lives in another type
        mark: tuple[str, Any] | None = None
        if item.content_ref == _STRING:
            text: str | None = item.text
        elif item.content_ref == _DELETED:
            text = None
        elif item.content_ref == _FORMAT and item.format is not None:
            text = None
            mark = (item.format[0], json.loads(item.format[1]))
        else:
            raise Unsupported(f"the text holds content of kind {item.content_ref}")
        left = index.clean_end(*origin) if origin is not None else None
        right = index.clean_start(*right_origin) if right_origin is not None else None
        after_left = index.next_run(left) if left is not None else index.first()
        if after_left is not right:
            o = after_left
            conflicting: set[Run] = set()
            before_origin: set[Run] = set()
            while o is not None and o is not right:
                before_origin.add(o)
                conflicting.add(o)
                if o.origin == origin:
                    if o.client < item.client:
                        left = o
                        conflicting.clear()
                    elif o.right_origin == right_origin:
                        break
                else:
                    origin_run = index.find(*o.origin) if o.origin is not None else None
                    if origin_run is not None and origin_run in before_origin:
                        if origin_run not in conflicting:
                            left = o
                            conflicting.clear()
                    else:
                        break
                o = index.next_run(o)
        run = Run(item.client, item.clock, text, item.length, origin, right_origin)
        run.fmt = mark
        if text is not None and utf16_length(text) != item.length:
            raise Unsupported("string length disagrees with its clock range")
        index.insert_after(left, run)
        index.register(run)
        if text is not None:
            self.bytes += len(text.encode("utf-8"))

    def _delete_ids(self, client: int, clock: int, n: int) -> None:
        index = self.index
        end = clock + n
        entry = index.by_client[client]
        while clock < end:
            run = index.find(client, clock)
            if run is None:
                # skip a gap (IDs of other types): jump to the next run of this client
                starts = entry[0]
                i = bisect_right(starts, clock)
                if i >= len(starts) or starts[i] >= end:
                    return
                clock = starts[i]
                continue
            if run.text is not None:
                if clock > run.clock:
                    run = index.split(run, clock - run.clock)
                if end < run.clock + run.length:
                    index.split(run, end - run.clock)
                self._drop(run)
            elif run.fmt is not None:
                index.delete(run)
            clock = run.clock + run.length

    def _drop(self, run: Run) -> None:
        text = run.text
        assert text is not None
        self.bytes -= len(text) if text.isascii() else len(text.encode("utf-8"))
        self.index.delete(run)

    # -- local edits --------------------------------------------------------------------------

    def insert(self, doc: Doc, txn: Any, index_: int, text: str) -> bool:
        """Insert unmarked text at a code-point index (0 <= index_ <= visible, checked).

        Returns False, having written nothing, when the text holds marks: the plain path
        then writes the format items that keep the new text unmarked.
        """
        index = self.index
        if index.marks:
            # Where a mark is in effect the plain path writes format items that keep the new
            # text unmarked. The index may count a mark yrs has already cleaned up, never
            # miss one (new format items always move the state vector): with none counted,
            # none is in effect.
            return False
        client = self.client
        if client is None:
            client = self.client = doc.client_id  # fixed for the life of the document
        clock = self.state.get(client, 0)
        if self.cur_version == index.version and self.cur_pos == index_:
            left = self.cur_left
            assert left is not None
            if self.cur_typing and left.clock + left.length == clock:
                return self._type_on(doc, txn, left, clock, text)
            # where the last edit left off: its neighbours are known
            right = self.cur_right
            hint = -1
        elif index_ == 0:
            left = None
            right = index.first()
            hint = -1
        else:
            left, offset = index.run_at(index_ - 1)
            hint = index.hint
            if offset + 1 < left.chars:  # inside a run: cut it after that character
                right = index.split(left, left.chars_to_units(offset + 1), hint)
            else:
                right = index.next_run(left, hint)
        ascii = text.isascii()
        units = len(text) if ascii else utf16_length(text)
        data = text.encode()
        # A v1 update with one string item (Yjs `writeStructs`) naming its origins, or else
        # (an empty text) its parent.
        head = self.head
        if head is None:
            head = self.head = b"\x01\x01" + _client(client)
        if left is not None:
            if right is not None:
                parts = [head, _varint(clock), b"\xc4", _client(left.client)]
                parts += (_varint(left.clock + left.length - 1), _client(right.client))
                parts += (_varint(right.clock), _varint(len(data)), data, b"\x00")
            else:
                parts = [head, _varint(clock), b"\x84", _client(left.client)]
                parts += (_varint(left.clock + left.length - 1), _varint(len(data)), data, b"\x00")
        elif right is not None:
            parts = [head, _varint(clock), b"\x44", _client(right.client), _varint(right.clock)]
            parts += (_varint(len(data)), data, b"\x00")
        else:
            parent = self.text_id
            parts = [head, _varint(clock), b"\x04\x00", _client(parent[0]), _varint(parent[1])]
            parts += (_varint(len(data)), data, b"\x00")
        raw_txn = txn._txn
        doc._doc.apply_update(raw_txn, b"".join(parts))
        if (
            left is not None
            and left.client == client
            and left.clock + left.length == clock
            and left.text is not None
            and (
                left.right_origin is None
                if right is None
                else left.right_origin == (right.client, right.clock)
            )
        ):
            index.append_text(left, text, units)
        else:
            origin = (left.client, left.clock + left.length - 1) if left is not None else None
            right_origin = (right.client, right.clock) if right is not None else None
            run = Run(client, clock, text, units, origin, right_origin)
            index.insert_after(left, run, hint=hint)
            index.register(run)
            left = run
        # typing on from here extends `left` (its update template is made on first use)
        self.cur_version = index.version
        self.cur_pos = index_ + len(text)
        self.cur_left = left
        self.cur_right = right
        self.cur_typing = True
        self.cur_template = None
        self.state[client] = clock + units
        self.state_bytes = doc._doc.get_state(raw_txn)
        self.bytes += len(data)
        return True

    def _type_on(self, doc: Doc, txn: Any, left: Run, clock: int, text: str) -> bool:
        """Insert where our last insert ended, extending its run (the typing case).

        Only the clocks and the content differ from the update written then: the origin is
        our own last character, the right origin the same as before.
        """
        template = self.cur_template
        if template is None:
            right = self.cur_right
            if right is None:
                template = (b"\x84" + _client(left.client), b"")
            else:
                template = (
                    b"\xc4" + _client(left.client),
                    _client(right.client) + _varint(right.clock),
                )
        if clock < 0x4000:
            clock_bytes = (
                _SMALL[clock] if clock < 0x80 else bytes((0x80 | (clock & 0x7F), clock >> 7))
            )
        elif clock < 0x200000:
            clock_bytes = bytes((0x80 | (clock & 0x7F), 0x80 | ((clock >> 7) & 0x7F), clock >> 14))
        else:
            clock_bytes = _varint(clock)
        origin_bytes = self.last_bytes if self.last_clock == clock - 1 else _varint(clock - 1)
        data = text.encode()
        n = len(data)
        mid, tail = template
        size = _SMALL[n] if n < 0x80 else _varint(n)
        update = (self.head, clock_bytes, mid, origin_bytes, tail, size, data, b"\x00")
        raw_txn = txn._txn
        doc._doc.apply_update(raw_txn, b"".join(update))
        chars = len(text)
        units = chars if n == chars else utf16_length(text)
        assert left.text is not None
        left.text += text
        left.length += units
        left.chars += chars
        index = self.index
        block = left.block
        if index.dirty is block:  # `index._add`, inline: typing stays in one block
            assert block is not None
            index.version += 1
            block.vis += chars
            index.visible += chars
            index.dirty_delta += chars
        else:
            index._add(block, chars)  # type: ignore[arg-type]
        self.cur_version = index.version
        self.cur_pos += chars
        self.cur_template = template
        self.state[left.client] = clock + units
        if units == 1:
            self.last_clock, self.last_bytes = clock, clock_bytes
        self.state_bytes = doc._doc.get_state(raw_txn)
        self.bytes += n
        return True

    def delete(self, doc: Doc, txn: Any, start: int, length: int) -> None:
        """Delete `length` code points at `start` (a range inside the text)."""
        index = self.index
        if self.cur_version == index.version:
            # where the last edit left off: backspace cuts the end off the run before the
            # cursor, delete the start off the run after it
            left, run = self.cur_left, self.cur_right
            assert left is not None
            if self.cur_pos == start + length and left.chars > length:
                run = index.split(left, left.chars_to_units(left.chars - length))
            elif self.cur_pos == start and run is not None and run.chars >= length:
                if run.chars > length:
                    index.split(run, run.chars_to_units(length))
            else:
                run = None
            if run is not None:
                update = b"\x00\x01" + _client(run.client) + b"\x01" + _varint(run.clock)
                doc._doc.apply_update(txn._txn, update + _varint(run.length))
                self._drop(run)
                self._set_cursor(start, left, run)
                return
        # The run ending where the deletion begins (kept as the cursor, with the run after
        # it), and the first visible run from there, where it begins.
        left: Run | None = None
        if start:
            left, offset = index.run_at(start - 1)
            hint = index.hint
            if offset + 1 < left.chars:
                run = after = index.split(left, left.chars_to_units(offset + 1), hint)
            else:  # tombstones may follow `left`: past them by position, not one by one
                after = index.next_run(left, hint)
                run = after if after is not None and after.chars else index.run_at(start)[0]
        else:
            run = index.run_at(0)[0]
            hint = index.hint - 1
        block = run.block
        assert block is not None
        runs = block.runs
        i = hint + 1  # where `run_at` or the cut left it, unless a block split moved it
        if not (0 <= i < len(runs) and runs[i] is run):
            i = runs.index(run)
        doomed: list[Run] = []
        remaining = length
        while True:
            current = runs[i]
            if current.chars:
                if current.chars > remaining:
                    index.split(current, current.chars_to_units(remaining))
                doomed.append(current)
                remaining -= current.chars
                if not remaining:
                    break
            i += 1
            if i == len(runs):
                block = index.blocks[block.pos + 1]
                runs = block.runs
                i = 0
        if len(doomed) == 1:
            r = doomed[0]
            update = b"\x00\x01" + _client(r.client) + b"\x01" + _varint(r.clock)
            update += _varint(r.length)
        else:
            update = _encode_deletes([(r.client, r.clock, r.length) for r in doomed])
        doc._doc.apply_update(txn._txn, update)
        for r in doomed:
            self._drop(r)
        if left is not None:
            self._set_cursor(start, left, after)
        else:
            self.cur_version = -1

    def _set_cursor(self, pos: int, left: Run, right: Run | None) -> None:
        """After a deletion: `pos` lies between `left` and `right` (typing there is new)."""
        self.cur_version = self.index.version
        self.cur_pos = pos
        self.cur_left = left
        self.cur_right = right
        self.cur_typing = False

    # -- positions ------------------------------------------------------------------------

    def item_at(self, index_: int, after: bool) -> tuple[int, int] | None:
        """The ID a relative position at `index_` sticks to (None: the text's start or end).

        As Yjs `createRelativePositionFromTypeIndex`: after, the character at `index_`;
        before, the last UTF-16 unit of the character before it.
        """
        index = self.index
        if after:
            if index_ >= index.visible:
                return None
            run, offset = index.run_at(index_)
            return (run.client, run.clock + run.chars_to_units(offset))
        if index_ == 0:
            return None
        run, offset = index.run_at(index_ - 1)
        return (run.client, run.clock + run.chars_to_units(offset + 1) - 1)

    def index_of(self, ident: tuple[int, int], after: bool) -> int | None:
        """Where the character with ID `ident` is (None: not an item of this text).

        As Yjs `createAbsolutePositionFromRelativePosition`: a deleted character resolves to
        where it was; a visible one to its index, plus one for a position before it.
        """
        run = self.index.find(*ident)
        if run is None:
            return None
        before = self.index.visible_before(run)
        if run.text is None:
            return before
        chars = run.units_to_chars(ident[1] - run.clock)
        return before + chars + (0 if after else 1)

    def delta(self) -> list[dict[str, Any]]:
        """The marked text as the index sees it (for checks), like `TextNode.to_delta()`."""
        marks: dict[str, Any] = {}
        delta: list[dict[str, Any]] = []
        for run in self.index:
            if run.fmt is not None:
                if run.fmt[1] is None:
                    marks.pop(run.fmt[0], None)
                else:
                    marks[run.fmt[0]] = run.fmt[1]
            elif run.text:
                attrs = dict(marks) or None
                if delta and delta[-1].get("attributes") == attrs:
                    delta[-1]["insert"] += run.text
                else:
                    op: dict[str, Any] = {"insert": run.text}
                    if attrs:
                        op["attributes"] = attrs
                    delta.append(op)
        return delta

    def text(self) -> str:
        """The visible text as the index sees it (for checks)."""
        return "".join(run.text for run in self.index if run.text is not None)
