"""meshdoc: Yjs-compatible documents as schema-typed element trees with rich text."""

from __future__ import annotations

from ._exceptions import MeshdocError as MeshdocError
from ._exceptions import NodeNotFoundError as NodeNotFoundError
from ._exceptions import SchemaDefinitionError as SchemaDefinitionError
from ._exceptions import SchemaError as SchemaError
from ._exceptions import StructureError as StructureError
from ._exceptions import TextRangeError as TextRangeError
from ._exceptions import TransactionError as TransactionError
from ._exceptions import UpdateError as UpdateError
from .schema._richtext import RICH_TEXT_SCHEMA as RICH_TEXT_SCHEMA
from .schema._schema import DEFAULT_MARKS as DEFAULT_MARKS
from .schema._schema import ChildProperty as ChildProperty
from .schema._schema import ElementType as ElementType
from .schema._schema import MarkType as MarkType
from .schema._schema import MeshSchema as MeshSchema
from .schema._schema import ValueProperty as ValueProperty
from .schema._validate import Violation as Violation
from .text._node import EMBED_CHARACTER as EMBED_CHARACTER
from .text._node import TextNode as TextNode
from .text._ranges import StickyRange as StickyRange
from .text._ranges import decode_sticky_position as decode_sticky_position
from .text._ranges import encode_sticky_position as encode_sticky_position
from .text._sticky import StickyPosition as StickyPosition
from .tree._document import MeshDocument as MeshDocument
from .tree._element import Element as Element
from .tree._events import DocumentEvent as DocumentEvent
from .tree._events import Subscription as Subscription
from .tree._undo import UndoManager as UndoManager

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
