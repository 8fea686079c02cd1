"""Per-origin undo: undo only my own edits, never a collaborator's.

A thin wrapper over `pycrdt.UndoManager` scoped to the document's root
fragment and root attributes, tracking one origin (or a few): edits made in
transactions with another origin (other people, agents, remote updates) are
left alone, and an undo merges with their concurrent work like any edit.

```py
doc = MeshDocument(None)
undo = doc.undo_manager(origin="agent")
with doc.transaction(origin="agent"):
    doc.root.append_child("p")
doc.root.append_child("q")  # default origin: not tracked
undo.undo()
assert [c.tag_name for c in doc.root.get_children()] == ["q"]
```
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pycrdt import UndoManager as _UndoManager

if TYPE_CHECKING:
    from ._views import DocumentView

__all__ = ["UndoManager"]


class UndoManager:
    """Undo/redo of the edits made with the tracked origins.

    Args:
        document: the document to track.
        origins: transaction origins whose edits are undoable.
        capture_timeout_millis: edits closer together than this are undone as one
            step (default 500 ms, as Yjs; 0 makes every transaction its own step).
    """

    def __init__(
        self,
        document: DocumentView,
        origins: Iterable[Any],
        *,
        capture_timeout_millis: int = 500,
    ) -> None:
        self._document = document
        self.origins = list(origins)
        self._manager = _UndoManager(
            scopes=[document.fragment, document.root_attribute_map],
            capture_timeout_millis=capture_timeout_millis,
        )
        for origin in self.origins:
            self._manager.include_origin(origin)

    @property
    def origin(self) -> Any:
        """The origin of the transactions undo/redo themselves run in."""
        return self._manager.origin

    def can_undo(self) -> bool:
        return self._manager.can_undo()

    def can_redo(self) -> bool:
        return self._manager.can_redo()

    def undo(self) -> bool:
        """Revert the last tracked step; True if anything was undone."""
        return self._manager.undo()

    def redo(self) -> bool:
        """Re-apply the last undone step; True if anything was redone."""
        return self._manager.redo()

    def clear(self) -> None:
        """Forget every undo and redo step."""
        self._manager.clear()

    @property
    def undo_depth(self) -> int:
        return len(self._manager.undo_stack)

    @property
    def redo_depth(self) -> int:
        return len(self._manager.redo_stack)
