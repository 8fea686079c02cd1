"""What the fast text path's item index answers without editing: sticky positions and checks.

A Yjs relative position is an item ID; the index finds the ID at a position and the position
of an ID in O(log n) (see `TextNode.sticky_index` and `TextNode.index_of`). `delta` and `text`
spell the text as the index sees it, for tests and checks.
"""

from __future__ import annotations

from typing import Any

from ._sync import IndexSync

__all__ = ["IndexReads"]


class IndexReads(IndexSync):
    """The item index of one `XmlText`, kept true by `IndexSync`, and its answers."""

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
