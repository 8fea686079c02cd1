"""meshdoc: Yjs-compatible documents as schema-typed element trees with rich text.

Its parts, each a subpackage that imports only those below it: `updates` (Yjs update bytes),
`schema` (element types, checks, JSON Schema), `text` (rich text), `tree` (`MeshDocument`
and its elements), `markdown` (Markdown in and out).
"""

from __future__ import annotations

from ._exceptions import (
    MeshdocError,
    NodeNotFoundError,
    SchemaDefinitionError,
    SchemaError,
    StructureError,
    TextRangeError,
    TransactionError,
    UpdateError,
)
from .schema import (
    DEFAULT_MARKS,
    RICH_TEXT_SCHEMA,
    ChildProperty,
    ElementType,
    MarkType,
    MeshSchema,
    ValueProperty,
    Violation,
)
from .text import (
    EMBED_CHARACTER,
    StickyPosition,
    StickyRange,
    TextNode,
    decode_sticky_position,
    encode_sticky_position,
)
from .tree import (
    DocumentEvent,
    Element,
    MeshDocument,
    MoveForwarder,
    Subscription,
    Suggester,
    Suggestion,
    UndoManager,
)

__all__ = [
    "DEFAULT_MARKS",
    "EMBED_CHARACTER",
    "RICH_TEXT_SCHEMA",
    "ChildProperty",
    "DocumentEvent",
    "Element",
    "ElementType",
    "MarkType",
    "MeshDocument",
    "MeshSchema",
    "MeshdocError",
    "MoveForwarder",
    "NodeNotFoundError",
    "SchemaDefinitionError",
    "SchemaError",
    "StickyPosition",
    "StickyRange",
    "StructureError",
    "Subscription",
    "Suggester",
    "Suggestion",
    "TextNode",
    "TextRangeError",
    "TransactionError",
    "UndoManager",
    "UpdateError",
    "ValueProperty",
    "Violation",
    "decode_sticky_position",
    "encode_sticky_position",
]
