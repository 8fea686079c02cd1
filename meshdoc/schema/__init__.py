"""Schemas: which elements a document holds, checked on every write and exported as JSON Schema.

Knows nothing of documents beyond the read-only `Validatable` view: the tree (`meshdoc.tree`)
imports the schema, never the other way round.
"""

from __future__ import annotations

from ._richtext import RICH_TEXT_SCHEMA
from ._schema import MeshSchema
from ._types import (
    DEFAULT_MARKS,
    ChildProperty,
    ElementType,
    MarkType,
    SchemaView,
    ValueProperty,
    ValueType,
)
from ._validate import Validatable, Violation

__all__ = [
    "DEFAULT_MARKS",
    "RICH_TEXT_SCHEMA",
    "ChildProperty",
    "ElementType",
    "MarkType",
    "MeshSchema",
    "SchemaView",
    "Validatable",
    "ValueProperty",
    "ValueType",
    "Violation",
]
