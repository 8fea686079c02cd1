"""One run of the text index: a slice of one Yjs item, as the fast text path models it.

A run holds consecutive clocks of one client that are all visible (with their text) or all
deleted; `RunIndex` (`_index`) keeps runs in document order, and cuts and joins them as
edits land.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Block", "Run", "Unsupported"]


class Unsupported(Exception):
    """The text holds something the index does not model (embeds, split surrogates)."""


def _units(text: str) -> int:
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF) if not text.isascii() else len(text)


class Run:
    """A slice of one Yjs item. `text` is None for deleted content; `chars` counts code points."""

    __slots__ = (
        "block",
        "chars",
        "client",
        "clock",
        "fmt",
        "group",
        "length",
        "origin",
        "right_origin",
        "text",
    )

    def __init__(
        self,
        client: int,
        clock: int,
        text: str | None,
        length: int,
        origin: tuple[int, int] | None,
        right_origin: tuple[int, int] | None,
    ) -> None:
        self.client = client
        self.clock = clock
        self.text = text
        self.length = length
        self.chars = len(text) if text is not None else 0
        self.origin = origin
        self.right_origin = right_origin
        self.block: Block | None = None
        #: the runs of its item, in clock order (`RunIndex.by_client`), once registered
        self.group: list[Run] | None = None
        #: a live format item (a mark boundary): its key and value; None once deleted
        self.fmt: tuple[str, Any] | None = None

    def units_to_chars(self, units: int) -> int:
        """Code points in the first `units` UTF-16 units (which must end on a boundary)."""
        text = self.text
        assert text is not None
        if self.chars == self.length:
            return units
        count = 0
        chars = 0
        for c in text:
            if count >= units:
                break
            count += 2 if ord(c) > 0xFFFF else 1
            chars += 1
        if count != units:
            raise Unsupported("an item boundary splits a surrogate pair")
        return chars

    def chars_to_units(self, chars: int) -> int:
        text = self.text
        assert text is not None
        return chars if self.chars == self.length else _units(text[:chars])


class Block:
    """Consecutive runs of the index, with their visible length (a leaf of the Fenwick tree)."""

    __slots__ = ("pos", "runs", "vis")

    def __init__(self, runs: list[Run]) -> None:
        self.runs = runs
        self.pos = 0  # index in `RunIndex.blocks`, renumbered when a block splits
        self.vis = 0
        for run in runs:
            run.block = self
            self.vis += run.chars
