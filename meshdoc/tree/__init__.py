"""The document: `MeshDocument`, its `Element` tree, change events and per-origin undo.

Sits on top of `meshdoc.schema` (checked before every write) and `meshdoc.text` (rich text
inside elements). Elements, events and undo name their document by the `DocumentView`
protocol, so `_document` is the only module that imports them all.
"""

from __future__ import annotations

from ._document import DEFAULT_FRAGMENT, DEFAULT_ORIGIN, MeshDocument
from ._element import Element
from ._events import DocumentEvent, Subscription
from ._forward import MoveForwarder
from ._suggest import Suggester
from ._suggestions import Suggestion
from ._undo import UndoManager
from ._views import DocumentView

__all__ = [
    "DEFAULT_FRAGMENT",
    "DEFAULT_ORIGIN",
    "DocumentEvent",
    "DocumentView",
    "Element",
    "MeshDocument",
    "MoveForwarder",
    "Subscription",
    "Suggester",
    "Suggestion",
    "UndoManager",
]
