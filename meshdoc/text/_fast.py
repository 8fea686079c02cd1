"""The fast text path: edits written as Yjs updates placed by item ID, not by position.

pycrdt's positional edits walk the text's item list from its start (yrs `find_position`), so
an edit costs O(items before it). An update that names its neighbours by ID integrates without
that walk. This module keeps a `RunIndex` of one text's items (IDs, origins, deletions) and
turns `insert`/`delete` at a code-point position into such updates, applied in the caller's
transaction (so they carry its origin, undo sees them, observers fire as usual).

Keeping the index true to the document is `_text_sync`'s job. Marks are modelled (format
items), so positions, deletes and sticky positions stay fast on marked text; inserts into a
text that holds marks are left to the plain path.
"""

from __future__ import annotations

from typing import Any

from pycrdt import Doc

from ..updates._lib0 import write_var_uint as _varint
from ._codec import utf16_length
from ._index import Run, Unsupported
from ._reads import IndexReads
from ._wire import client_bytes as _client
from ._wire import encode_deletes as _encode_deletes

__all__ = ["FastText", "Unsupported"]

#: Runs walked from the cursor before a position lookup goes through the index's tree (which
#: costs about as much as walking 40 runs), and how far away in characters it may be at all.
_NEAR = 32
_NEAR_CHARS = 512


class FastText(IndexReads):
    """The item index of one `XmlText` and the edits made through it."""

    def __init__(self, text_id: tuple[int, int]) -> None:
        super().__init__(text_id)
        self.client: int | None = None  # the document's client ID, read once
        self.head: bytes | None = None  # how every update of ours starts (count, client)
        # Where our last edit left off (index version, position, the run ending there, the
        # run after it), so that typing on from there needs no lookup. Kept in attributes,
        # not a tuple: no allocation per keystroke. `cur_version` (set up by `IndexSync`) is
        # -1 when there is none.
        self.cur_pos = 0
        self.cur_left: Run | None = None
        self.cur_right: Run | None = None
        self.cur_ahead: Run | None = None  # see `_set_cursor`
        self.cur_hint = -1  # where `cur_left` is in its block, unless a block split moved it
        self.cur_typing = False  # made by our insert: typing on may extend `cur_left`
        self.cur_template: tuple[bytes, bytes] | None = None
        self.last_clock = -1  # the clock of our last one-unit insert, and its encoding
        self.last_bytes = b""

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
                self.type_on(doc._doc, txn._txn, text)
                return True
            # where the last edit left off: its neighbours are known
            right = self.cur_right
            hint = self.cur_hint
        elif index_ == 0:
            left = None
            right = index.first()
            hint = -1
        else:
            left, offset = self._run_at(index_ - 1)
            hint = index.hint
            if offset + 1 < left.chars:  # inside a run: cut it after that character
                right = index.split(left, left.chars_to_units(offset + 1), hint)
            else:
                right = index.next_run(left, hint)
        units = len(text) if text.isascii() else utf16_length(text)
        data = text.encode()
        n = len(data)
        # A v1 update with one string item (Yjs `writeStructs`) naming its origins, or else
        # (an empty text) its parent.
        head = self.head
        if head is None:
            head = self.head = b"\x01\x01" + _client(client)
        size = _varint(n)
        if left is not None:
            origin_clock = left.clock + left.length - 1
            if right is not None:
                update = b"".join(
                    (
                        head,
                        _varint(clock),
                        b"\xc4",
                        _client(left.client),
                        _varint(origin_clock),
                        _client(right.client),
                        _varint(right.clock),
                        size,
                        data,
                        b"\x00",
                    )
                )
            else:
                update = b"".join(
                    (
                        head,
                        _varint(clock),
                        b"\x84",
                        _client(left.client),
                        _varint(origin_clock),
                        size,
                        data,
                        b"\x00",
                    )
                )
        elif right is not None:
            start = (head, _varint(clock), b"\x44", _client(right.client), _varint(right.clock))
            update = b"".join((*start, size, data, b"\x00"))
        else:
            parent = self.text_id
            start = (head, _varint(clock), b"\x04\x00", _client(parent[0]), _varint(parent[1]))
            update = b"".join((*start, size, data, b"\x00"))
        raw_txn = txn._txn
        ydoc = doc._doc
        ydoc.apply_update(raw_txn, update)
        if (
            left is not None
            and left.client == client
            and origin_clock + 1 == clock
            and left.text is not None
            and (
                left.right_origin is None
                if right is None
                else left.right_origin == (right.client, right.clock)
            )
        ):
            index.append_text(left, text, units)
        else:
            run = Run(
                client,
                clock,
                text,
                units,
                (left.client, origin_clock) if left is not None else None,
                (right.client, right.clock) if right is not None else None,
            )
            hint = index.insert_after(left, run, hint=hint)
            index.register(run)
            left = run
        # typing on from here extends `left` (its update template is made on first use)
        self.cur_version = index.version
        self.cur_pos = index_ + len(text)
        self.cur_left = left
        self.cur_right = right
        self.cur_ahead = None
        self.cur_hint = hint
        self.cur_typing = True
        self.cur_template = None
        self.state[client] = clock + units
        self.state_bytes = ydoc.get_state(raw_txn)
        self.bytes += n
        return True

    def type_on(self, ydoc: Any, raw_txn: Any, text: str) -> None:
        """Insert where our last insert ended, extending its run (the typing case).

        The caller checked that nothing else happened since (state vector, length) and that
        the cursor is the typing one (`cur_typing`, `cur_version`, `cur_pos`): then our last
        item is `cur_left` (see `IndexSync.ensure`). Only the clocks and the content differ
        from the update written then: the origin is our own last character, the right origin
        the same as before. Per keystroke, so the index is updated inline, without bumping
        its version (the run grows at the cursor: the cursor stays true).
        """
        left = self.cur_left
        assert left is not None and left.text is not None
        clock = left.clock + left.length
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
            self.cur_template = template
        clock_bytes = _varint(clock)
        origin_bytes = self.last_bytes if self.last_clock == clock - 1 else _varint(clock - 1)
        data = text.encode()
        n = len(data)
        mid, tail = template
        size = _varint(n)
        ydoc.apply_update(
            raw_txn,
            b"".join((self.head, clock_bytes, mid, origin_bytes, tail, size, data, b"\x00")),
        )
        chars = len(text)
        units = chars if n == chars else utf16_length(text)
        left.text += text
        left.length += units
        left.chars += chars
        index = self.index
        block = left.block
        if index.dirty is block:  # `index._add`, inline: typing stays in one block
            assert block is not None
            block.vis += chars
            index.visible += chars
            index.dirty_delta += chars
        else:
            index._add(block, chars)  # type: ignore[arg-type]
            self.cur_version = index.version
        self.cur_pos += chars
        self.state[left.client] = clock + units
        if units == 1:
            self.last_clock = clock
            self.last_bytes = clock_bytes
        self.state_bytes = ydoc.get_state(raw_txn)
        self.bytes += n

    def delete(self, doc: Doc, txn: Any, start: int, length: int) -> None:
        """Delete `length` code points at `start` (a range inside the text)."""
        index = self.index
        if self.cur_version == index.version:
            # where the last edit left off: backspace cuts the end off the run before the
            # cursor, delete the start off the run after it
            left, right = self.cur_left, self.cur_right
            assert left is not None
            run: Run | None = None
            if self.cur_pos == start + length:
                if left.chars > length:
                    run = index.split(left, left.chars_to_units(left.chars - length), self.cur_hint)
            elif self.cur_pos == start and right is not None:
                # forward delete: what earlier ones deleted lies between the cursor and the
                # next character, up to `cur_ahead` (the cursor keeps its adjacent neighbours)
                run = self.cur_ahead or right
                for _ in range(8):
                    if run.chars or run.fmt is not None:
                        break
                    run = index.next_run(run)
                    if run is None:
                        break
                if run is not None and run.fmt is None and run.chars >= length:
                    if run.chars > length:
                        index.split(run, run.chars_to_units(length))
                else:
                    run = None
            if run is not None:
                update = b"\x00\x01" + _client(run.client) + b"\x01" + _varint(run.clock)
                doc._doc.apply_update(txn._txn, update + _varint(run.length))
                self._drop(run)
                hint = self.cur_hint
                if self.cur_pos == start:
                    self._set_cursor(start, left, hint, right, index.merge_deleted(run))
                else:  # (the cut put the run right after `left`)
                    run = index.merge_deleted(run, hint + 1 if hint >= 0 else -1)
                    self._set_cursor(start, left, hint, run)
                return
        # The run ending where the deletion begins (kept as the cursor, with the run after
        # it), and from there the runs to delete (past the tombstones in between).
        left: Run | None = None
        if start:
            left, offset = self._run_at(start - 1)
            hint = index.hint
            if offset + 1 < left.chars:
                run = after = index.split(left, left.chars_to_units(offset + 1), hint)
            else:
                run = after = index.next_run(left, hint)  # (a run follows: text is deleted)
                assert run is not None
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
        skipped = 0
        while True:
            current = runs[i]
            if current.chars:
                if current.chars > remaining:
                    index.split(current, current.chars_to_units(remaining), i)
                doomed.append(current)
                remaining -= current.chars
                if not remaining:
                    break
            elif not doomed:
                skipped += 1
                if skipped == 32:  # a long stretch of tombstones: past it by position
                    run = index.run_at(start)[0]
                    block = run.block
                    assert block is not None
                    runs = block.runs
                    i = index.hint
                    continue
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
        if len(doomed) == 1:
            last = index.merge_deleted(doomed[0], i)  # (where the walk found it)
        else:
            last = doomed[-1]
            for r in doomed:
                if r.block is not None:  # (else joined into the one before)
                    last = index.merge_deleted(r)
        if left is not None:
            if after.block is None:  # joined into a tombstone before it, right after `left`
                after = index.next_run(left, hint)
            self._set_cursor(start, left, hint, after, last)
        else:
            self.cur_version = -1

    def _run_at(self, pos: int) -> tuple[Run, int]:
        """`RunIndex.run_at` (it leaves `index.hint` the same way), walking from the cursor
        when the character is in the cursor's block, a few runs away: most edits away from
        the cursor are near it (the next line, the next word), and the walk skips the tree.
        """
        index = self.index
        if self.cur_version == index.version and -_NEAR_CHARS < pos - self.cur_pos < _NEAR_CHARS:
            left = self.cur_left  # (visible, ending at `cur_pos`)
            assert left is not None
            runs = left.block.runs  # type: ignore[union-attr]
            i = self.cur_hint
            if 0 <= i < len(runs) and runs[i] is left:
                end = self.cur_pos
                if pos < end:  # back from the cursor: run i holds [end - chars, end)
                    stop = max(i - _NEAR, -1)
                    while i > stop:
                        run = runs[i]
                        end -= run.chars
                        if pos >= end:
                            index.hint = i
                            return run, pos - end
                        i -= 1
                else:  # forward from the cursor: run i holds [start, start + chars)
                    start = end
                    i += 1
                    stop = min(i + _NEAR, len(runs))
                    while i < stop:
                        run = runs[i]
                        chars = run.chars
                        if pos < start + chars:
                            index.hint = i
                            return run, pos - start
                        start += chars
                        i += 1
        return index.run_at(pos)

    def _set_cursor(
        self, pos: int, left: Run, hint: int, right: Run | None, ahead: Run | None = None
    ) -> None:
        """After a deletion: `pos` lies between `left` and `right` (typing there is new).

        `hint`: where `left` is in its block (as `RunIndex.next_run` takes it). `ahead`: the
        last run a forward delete removed, where the next one looks from.
        """
        self.cur_version = self.index.version
        self.cur_pos = pos
        self.cur_left = left
        self.cur_hint = hint
        self.cur_right = right
        self.cur_ahead = ahead
        self.cur_typing = False
