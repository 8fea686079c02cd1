"""What the tree's helpers read of a document and of an element, as protocols.

`MeshDocument` creates `Element`s, events and undo managers, which all point back at it. Each
of them names the document by `DocumentView` (and `_move` names elements by `ElementView`), so
no module imports the one that imports it: `_document` sits on top, alone.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pycrdt import Doc, Map, XmlElement, XmlFragment

    from .._exceptions import SchemaError
    from ..schema import ElementType, MeshSchema

__all__ = ["DocumentView", "ElementView"]


class DocumentView(Protocol):
    """A `MeshDocument` as its elements, events and undo manager see it."""

    @property
    def doc(self) -> Doc: ...

    @property
    def schema(self) -> MeshSchema | None: ...

    @property
    def root_tag_name(self) -> str: ...

    @property
    def fragment(self) -> XmlFragment: ...

    @property
    def fragment_name(self) -> str: ...

    @property
    def root_attribute_map(self) -> Map: ...

    def transaction(self, origin: Any = None) -> AbstractContextManager[Any]: ...

    def _root_attributes(self) -> dict[str, Any]: ...


class ElementView(Protocol):
    """An `Element` as moving it needs it: its node, type, document and the checks it runs."""

    @property
    def node(self) -> XmlElement | XmlFragment: ...

    @property
    def tag_name(self) -> str: ...

    @property
    def element_type(self) -> ElementType | None: ...

    @property
    def document(self) -> DocumentView: ...

    def _where(self) -> tuple[str | None, str]: ...

    def _unknown_tag(self) -> SchemaError: ...

    def _ensure_alive(self) -> None: ...

    def _check_order(
        self, parent: ElementType, index: int, tag: str, *, removed: int | None = None
    ) -> None: ...
