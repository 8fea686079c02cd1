"""Rich text: `TextNode`, a code-point view over a Yjs `XmlText`, and sticky positions.

The text engine knows Yjs texts and update bytes, not elements or schemas: `meshdoc.tree`
hands it an `XmlText` and a document that offers transactions. Long texts get an item index
that writes keystrokes as Yjs updates directly (`_fast`, `_index`, `_sync`).
"""

from __future__ import annotations

from ._node import EMBED_CHARACTER, TextNode
from ._ranges import StickyRange, decode_sticky_position, encode_sticky_position
from ._sticky import StickyPosition

__all__ = [
    "EMBED_CHARACTER",
    "StickyPosition",
    "StickyRange",
    "TextNode",
    "decode_sticky_position",
    "encode_sticky_position",
]
