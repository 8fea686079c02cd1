"""Keeping the fast text path's item index true to the document.

Before each edit the document's state vector and the text's length are compared with what
the index reflects. Anything else that happened (other peers, undo, marks, raw pycrdt writes)
is read back from `doc.get_update(state)`: new items are placed with Yjs's own conflict
resolution (YATA, as in Yjs `Item.integrate`), deletions are applied, and the resulting length
is checked against pycrdt's. Texts with content the index does not model (embeds, nested
types) raise `Unsupported`, and the caller goes back to the plain path.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections import deque
from typing import Any

from pycrdt import Doc, XmlText

from ..updates._lib0 import read_var_uints
from ..updates._lib0 import write_var_uint as _varint
from ._codec import Item, decode_delete_set, split_update, utf16_length
from ._index import Run, RunIndex, Unsupported
from ._wire import client_bytes as _client

__all__ = ["IndexSync"]

_STRING, _DELETED, _FORMAT = 4, 1, 6


def _decode_state(data: bytes) -> dict[int, int]:
    state: dict[int, int] = {}
    values = read_var_uints(data)
    for i in range(values[0] if values else 0):
        state[values[1 + 2 * i]] = values[2 + 2 * i]
    return state


def _encode_state(state: dict[int, int]) -> bytes:
    parts = [_varint(len(state))]
    for client, clock in state.items():
        parts += (_client(client), _varint(clock))
    return b"".join(parts)


class IndexSync:
    """The item index of one `XmlText`, brought up to the document before each edit."""

    def __init__(self, text_id: tuple[int, int]) -> None:
        self.text_id = text_id
        # Deleting format items changes neither the state vector nor the length: plain-path
        # writes through `TextNode` set this so that the next sync re-reads deletions. Other
        # format deletions may go unseen; the index then counts a mark too many, which only
        # sends inserts to the plain path (see `FastText.insert`).
        self.marks_changed = False

        self.index = RunIndex()
        self.state: dict[int, int] = {}
        self.state_bytes = b""  # the encoded state vector the index reflects
        self.delete_set = b""  # the encoded delete set the index reflects, and decoded:
        self.deletes: dict[int, list[tuple[int, int]]] = {}
        self.bytes = 0  # UTF-8 length of the visible text, as pycrdt counts it
        # The index version where `FastText`'s cursor is true (-1: none). Anything read back
        # here drops the cursor, so that a cursor in step with the index also means that our
        # last item is where the cursor says (even when the news were in another type).
        self.cur_version = -1

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
        self.cur_version = -1
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
