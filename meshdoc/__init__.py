"""meshdoc: Yjs-compatible documents as schema-typed element trees with rich text."""

from __future__ import annotations

from ._document import MeshDocument as MeshDocument
from ._element import Element as Element
from ._events import DocumentEvent as DocumentEvent
from ._events import Subscription as Subscription
from ._exceptions import MeshdocError as MeshdocError
from ._exceptions import NodeNotFoundError as NodeNotFoundError
from ._exceptions import SchemaDefinitionError as SchemaDefinitionError
from ._exceptions import SchemaError as SchemaError
from ._exceptions import StructureError as StructureError
from ._exceptions import TextRangeError as TextRangeError
from ._exceptions import TransactionError as TransactionError
from ._exceptions import UpdateError as UpdateError
from ._richtext_schema import RICH_TEXT_SCHEMA as RICH_TEXT_SCHEMA
from ._schema import DEFAULT_MARKS as DEFAULT_MARKS
from ._schema import ChildProperty as ChildProperty
from ._schema import ElementType as ElementType
from ._schema import MarkType as MarkType
from ._schema import MeshSchema as MeshSchema
from ._schema import ValueProperty as ValueProperty
from ._sticky import StickyRange as StickyRange
from ._sticky import decode_sticky_position as decode_sticky_position
from ._sticky import encode_sticky_position as encode_sticky_position
from ._text import EMBED_CHARACTER as EMBED_CHARACTER
from ._text import TextNode as TextNode
from ._text_sticky import StickyPosition as StickyPosition
from ._undo import UndoManager as UndoManager
from ._validate import Violation as Violation

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
    "NodeNotFoundError",
    "SchemaDefinitionError",
    "SchemaError",
    "StickyPosition",
    "StickyRange",
    "StructureError",
    "Subscription",
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
