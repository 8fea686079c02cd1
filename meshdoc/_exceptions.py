"""Errors raised by meshdoc.

The tree, so callers can catch a whole family::

    MeshdocError
    ├── SchemaError            a write would break the schema (nothing was changed)
    ├── SchemaDefinitionError  a schema itself is malformed (unknown child tag, bad type…)
    ├── NodeNotFoundError      no element has this `$id` / the element was deleted
    ├── StructureError         the tree operation makes no sense (move into itself, delete root…)
    ├── TextRangeError         a text index or range lies outside the text
    ├── TransactionError       a nested transaction asked for a different origin
    └── UpdateError            bytes are not a Yjs v1 update (or not a sticky position)

Every error is raised *before* anything is written: a refused call leaves the
document as it was.
"""

from __future__ import annotations

__all__ = [
    "MeshdocError",
    "NodeNotFoundError",
    "SchemaDefinitionError",
    "SchemaError",
    "StructureError",
    "TextRangeError",
    "TransactionError",
    "UpdateError",
]


class MeshdocError(Exception):
    """Base class of every meshdoc error."""


class SchemaError(MeshdocError, ValueError):
    """A write through the API would break the document's schema; nothing was changed.

    Attributes:
        element_id: `$id` of the element written to (or whose child was refused), if any.
        path: slash-separated path of tags from the root, e.g. ``"doc/section[1]/p[0]"``.
        tag: the element tag involved (the refused child's tag for child rules).
        attribute: the attribute involved, for attribute rules.
        rule: a short machine-readable rule name: ``unknown-tag``, ``unknown-attribute``,
            ``type``, ``enum``, ``required``, ``child-not-allowed``, ``child-order``,
            ``text-not-allowed``, ``unknown-mark``, ``mark-attribute``, ``reserved``,
            ``json-shape``, ``duplicate-id``.
    """

    def __init__(
        self,
        message: str,
        *,
        rule: str,
        element_id: str | None = None,
        path: str | None = None,
        tag: str | None = None,
        attribute: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.rule = rule
        self.element_id = element_id
        self.path = path
        self.tag = tag
        self.attribute = attribute


class SchemaDefinitionError(MeshdocError, ValueError):
    """A schema definition is inconsistent (duplicate tag, child tag never declared, bad type)."""


class NodeNotFoundError(MeshdocError, LookupError):
    """No element with this `$id` exists in the document (or it was deleted meanwhile)."""

    def __init__(self, message: str, *, element_id: str | None = None) -> None:
        super().__init__(message)
        self.element_id = element_id


class StructureError(MeshdocError, ValueError):
    """A tree operation is impossible: moving an element into itself, deleting the root, …"""


class TextRangeError(MeshdocError, IndexError):
    """A text index or range lies outside the text it addresses."""


class TransactionError(MeshdocError, RuntimeError):
    """A transaction was opened with an origin other than the one already in progress."""


class UpdateError(MeshdocError, ValueError):
    """Bytes (or JSON) that should hold a Yjs update or a sticky position could not be decoded."""
