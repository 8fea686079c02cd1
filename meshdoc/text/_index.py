"""An ordered index of the items of one text: runs in document order, found by position or ID.

The fast text path needs, for a code-point position, the IDs of the items on either side, and
it must place other peers' items exactly where Yjs would. This index keeps the item list of one
`XmlText` as runs (a run is a slice of one item: same client, consecutive clocks, all visible
or all deleted) in blocks of at most `_MAX_BLOCK` runs, with a Fenwick tree over the blocks'
visible lengths, so finding a position costs O(log n + block size) however long the text.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from itertools import accumulate, islice
from operator import attrgetter, sub
from typing import Any

from ._run import Block, Run, Unsupported

__all__ = ["Block", "Run", "RunIndex", "Unsupported"]

_MAX_BLOCK = 128


_clock = attrgetter("clock")  # (a bisect key: C speed)
_vis = attrgetter("vis")
#: `i & (i - 1)` for the Fenwick node `i` (1-based) at list index i - 1, grown as needed
_PARENTS: list[int] = []


class RunIndex:
    """The runs of one text in document order, with lookups by position and by ID."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.tree: list[int] = [0]
        # client -> (first clocks of its items, the runs of each item), sorted by clock. Items
        # arrive in clock order per client, so new ones are appended; a split only touches the
        # runs of one item.
        self.by_client: dict[int, tuple[list[int], list[list[Run]]]] = {}
        self.visible = 0
        self.mark_keys: dict[str, int] = {}  # live format items per key
        self.marks = 0  # live format items, all keys
        self.hint = 0  # where in its block the run `run_at` found last is
        #: bumped by every change, so a caller may cache where it last edited (see `FastText`)
        self.version = 0
        # The one block whose visible-length change the tree does not hold yet: typing adds
        # to the same block edit after edit, and lookups (which flush it) are rarer.
        self.dirty: Block | None = None
        self.dirty_delta = 0

    # -- Fenwick tree over block visible lengths ----------------------------------------------

    def _rebuild(self, start: int = 0) -> None:
        """Renumber the blocks from `start` and rebuild the tree (after a block split).

        Each node of the tree is a difference of two prefix sums, built at C speed (a long
        text splits a block every few dozen edits, and has thousands of blocks).
        """
        self.dirty = None
        self.dirty_delta = 0
        blocks = self.blocks
        for i in range(start, len(blocks)):
            blocks[i].pos = i
        prefix = [0, *accumulate(map(_vis, blocks))]
        parents = _PARENTS
        while len(parents) < len(blocks):
            parents.append(len(parents) & (len(parents) + 1))  # node i + 1 covers (i & (i+1), i]
        self.tree = [0, *map(sub, islice(prefix, 1, None), map(prefix.__getitem__, parents))]

    def _add(self, block: Block, delta: int) -> None:
        self.version += 1
        block.vis += delta
        self.visible += delta
        if self.dirty is not block:
            if self.dirty is not None:
                self._flush()
            self.dirty = block
        self.dirty_delta += delta

    def _flush(self) -> None:
        """Put the dirty block's change into the tree (before any lookup by position)."""
        block = self.dirty
        assert block is not None
        delta = self.dirty_delta
        self.dirty = None
        self.dirty_delta = 0
        tree = self.tree
        i = block.pos + 1
        n = len(tree) - 1
        while i <= n:
            tree[i] += delta
            i += i & -i

    @staticmethod
    def _block_index(block: Block) -> int:
        return block.pos

    def _find_block(self, pos: int) -> tuple[int, int]:
        """The block holding visible position `pos` (0 <= pos < visible) and its start."""
        if self.dirty is not None:
            self._flush()
        tree = self.tree
        n = len(tree) - 1
        i = 0
        step = 1 << n.bit_length()
        start = 0
        while step:
            j = i + step
            if j <= n and tree[j] <= pos:
                i = j
                pos -= tree[j]
                start += tree[j]
            step >>= 1
        return i, start

    # -- lookups ------------------------------------------------------------------------------

    def run_at(self, pos: int) -> tuple[Run, int]:
        """The visible run holding the character at `pos`, and the offset (code points) in it."""
        b, start = self._find_block(pos)
        pos -= start
        block = self.blocks[b]
        runs = block.runs
        if 2 * pos < block.vis:
            for i, run in enumerate(runs):
                chars = run.chars
                if pos < chars:
                    self.hint = i
                    return run, pos
                pos -= chars
        else:  # nearer the block's end: walk back from it
            rest = block.vis - pos
            i = len(runs)
            for run in reversed(runs):
                i -= 1
                chars = run.chars
                if rest <= chars and chars:
                    self.hint = i
                    return run, chars - rest
                rest -= chars
        raise AssertionError("visible lengths out of step")

    def _group(self, client: int, clock: int) -> list[Run] | None:
        entry = self.by_client.get(client)
        if entry is None:
            return None
        i = bisect_right(entry[0], clock) - 1
        return entry[1][i] if i >= 0 else None

    def visible_before(self, run: Run) -> int:
        """Visible code points before `run` in the text."""
        block = run.block
        assert block is not None
        if self.dirty is not None:
            self._flush()
        total = 0
        i = block.pos
        tree = self.tree
        while i > 0:
            total += tree[i]
            i -= i & -i
        for other in block.runs:
            if other is run:
                return total
            total += other.chars
        raise AssertionError("run not in its block")

    def find(self, client: int, clock: int) -> Run | None:
        group = self._group(client, clock)
        if group is None:
            return None
        run = group[0] if len(group) == 1 else group[bisect_right(group, clock, key=_clock) - 1]
        return run if clock < run.clock + run.length else None

    def next_run(self, run: Run, hint: int = -1) -> Run | None:
        """The run after `run`; `hint` may give its place in its block (as `run_at` left it)."""
        block = run.block
        assert block is not None
        runs = block.runs
        i = hint if 0 <= hint < len(runs) and runs[hint] is run else runs.index(run)
        if i + 1 < len(runs):
            return runs[i + 1]
        b = self._block_index(block) + 1
        return self.blocks[b].runs[0] if b < len(self.blocks) else None

    def first(self) -> Run | None:
        return self.blocks[0].runs[0] if self.blocks else None

    def __iter__(self) -> Any:
        for block in self.blocks:
            yield from block.runs

    # -- changes ------------------------------------------------------------------------------

    def register(self, run: Run) -> None:
        """Make a new item's run findable by ID."""
        entry = self.by_client.get(run.client)
        if entry is None:
            entry = self.by_client[run.client] = ([], [])
        starts, groups = entry
        run.group = group = [run]
        if not starts or starts[-1] < run.clock:
            starts.append(run.clock)
            groups.append(group)
        else:  # pragma: no cover - items arrive in clock order per client
            i = bisect_right(starts, run.clock)
            starts.insert(i, run.clock)
            groups.insert(i, group)

    def insert_after(
        self, left: Run | None, run: Run, *, count: bool = True, hint: int = -1
    ) -> int:
        """Put `run` right after `left` (at the start when None); return its place in its block.

        `count` is False when the run's characters are already counted (a split). The place
        returned is a hint (see `next_run`): a block split may have moved the run.
        """
        if left is None:
            if not self.blocks:
                self.blocks.append(Block([]))
                self._rebuild()
            block, at = self.blocks[0], 0
        else:
            block = left.block
            assert block is not None
            runs = block.runs
            at = (hint if 0 <= hint < len(runs) and runs[hint] is left else runs.index(left)) + 1
        block.runs.insert(at, run)
        run.block = block
        self.version += 1
        if count:
            self._add(block, run.chars)
        if run.fmt is not None:
            self.mark_keys[run.fmt[0]] = self.mark_keys.get(run.fmt[0], 0) + 1
            self.marks += 1
        if len(block.runs) > _MAX_BLOCK:
            self._split_block(block)
        return at

    def _split_block(self, block: Block) -> None:
        b = self._block_index(block)
        half = len(block.runs) // 2
        tail = Block(block.runs[half:])
        del block.runs[half:]
        block.vis -= tail.vis
        self.blocks.insert(b + 1, tail)
        self._rebuild(b)

    def split(self, run: Run, units: int, hint: int = -1) -> Run:
        """Cut `run` after `units` clock units; return the right part (placed after it)."""
        assert 0 < units < run.length and run.fmt is None
        # (hot: deletions and inserts inside runs; built field by field, placed directly)
        right = Run.__new__(Run)
        right.client = client = run.client
        right.clock = run.clock + units
        right.length = run.length - units
        text = run.text
        if text is None:
            right.text = None
            right.chars = 0
        else:
            chars = units if run.chars == run.length else run.units_to_chars(units)
            right.text = text[chars:]
            right.chars = run.chars - chars
            run.text = text[:chars]
            run.chars = chars
        right.origin = (client, run.clock + units - 1)
        right.right_origin = run.right_origin
        right.fmt = None
        run.length = units
        block = run.block
        assert block is not None
        runs = block.runs
        at = hint if 0 <= hint < len(runs) and runs[hint] is run else runs.index(run)
        runs.insert(at + 1, right)  # its characters stay in the same block
        right.block = block
        self.version += 1
        if len(runs) > _MAX_BLOCK:
            self._split_block(block)
        right.group = group = run.group
        assert group is not None
        # (an item cut by many edits has hundreds of runs: find ours by clock, not identity)
        at = group.index(run) + 1 if len(group) < 16 else bisect_right(group, run.clock, key=_clock)
        group.insert(at, right)
        return right

    def clean_end(self, client: int, clock: int) -> Run | None:
        """The run ending exactly at ID `(client, clock)` (split if needed)."""
        run = self.find(client, clock)
        if run is not None and clock < run.clock + run.length - 1:
            self.split(run, clock - run.clock + 1)
        return run

    def clean_start(self, client: int, clock: int) -> Run | None:
        """The run starting exactly at ID `(client, clock)` (split if needed)."""
        run = self.find(client, clock)
        if run is not None and clock > run.clock:
            return self.split(run, clock - run.clock)
        return run

    def delete(self, run: Run) -> None:
        """Mark a whole run deleted."""
        if run.text is None:
            if run.fmt is not None:
                self.mark_keys[run.fmt[0]] -= 1
                self.marks -= 1
                self.version += 1
                run.fmt = None
            return
        block = run.block
        assert block is not None
        chars = run.chars
        run.text = None
        run.chars = 0
        self._add(block, -chars)

    def merge_deleted(self, run: Run, hint: int = -1) -> Run:
        """Join a deleted run with deleted neighbours cut from the same item; return the run
        that holds it now.

        Every deletion cuts a tombstone out of a run, and most of a long-edited text is
        tombstones (nine runs in ten on the editing traces): each one lengthens the walk of
        every position lookup in its block. Pieces of one item that are next to each other
        with consecutive clocks are exactly what `split` made (the right one's origin is the
        left one's last ID, their right origins are equal), so joining them undoes the cut,
        as Yjs merges deleted items; a later `split` can cut them again.
        """
        block = run.block
        assert block is not None and run.text is None and run.fmt is None
        runs = block.runs
        i = hint if 0 <= hint < len(runs) and runs[hint] is run else runs.index(run)
        group = run.group
        assert group is not None
        if i + 1 < len(runs):
            after = runs[i + 1]
            if (
                after.text is None
                and after.group is group
                and after.clock == run.clock + run.length
                and after.fmt is None
            ):
                run.length += after.length
                del runs[i + 1]
                self._forget(group, after)
        if i:
            before = runs[i - 1]
            if (
                before.text is None
                and before.group is group
                and before.clock + before.length == run.clock
                and before.fmt is None
            ):
                before.length += run.length
                del runs[i]
                self._forget(group, run)
                run = before
        return run

    def _forget(self, group: list[Run], run: Run) -> None:
        """Drop a run joined into the one before it from its item's runs."""
        self.version += 1
        run.block = None
        j = bisect_left(group, run.clock, key=_clock) if len(group) >= 16 else group.index(run)
        assert group[j] is run
        del group[j]

    def append_text(self, run: Run, text: str, units: int) -> None:
        """Extend a visible run with text that continues its clocks (a merged typing run)."""
        assert run.text is not None
        run.text += text
        run.length += units
        run.chars += len(text)
        block = run.block
        assert block is not None
        self._add(block, len(text))
