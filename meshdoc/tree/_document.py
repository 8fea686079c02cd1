"""`MeshDocument`: one Yjs `Doc` seen as a schema-typed element tree.

Where things live in the Yjs doc (what a JavaScript peer binds to):

- the root element *is* the `XmlFragment` named `fragment` (default
  ``"default"``, Tiptap Collaboration's default ``field``; y-prosemirror's
  ``ySyncPlugin(doc.getXmlFragment("default"))`` maps ProseMirror's top
  ``doc`` node onto it, so there is no wrapper element);
- a fragment holds no attributes, so the root's attributes live in the
  shared `Map` named ``f"{fragment}:attributes"``;
- every element is an `XmlElement` carrying a UUID ``$id`` attribute; rich
  text is an `XmlText` child, marks are Yjs text attributes.

```py
doc = MeshDocument(None)
doc.root.append_child("p").text.insert(0, "hi")
copy = MeshDocument.from_update(None, doc.get_update())
assert copy.to_json() == doc.to_json()
```
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

from pycrdt import Doc, Map, Transaction, XmlElement, XmlFragment, XmlText

from .._exceptions import TransactionError, UpdateError
from .._yxml import ID, iter_elements, node_path, normalize
from ..schema._checks import mark_problems, raise_first
from ..updates._gaps import MAX_UNSETTLED, unsettled_of
from ._element import Element
from ._events import DocumentEvent, Subscription
from ._json import plan_root, write_plan
from ._suggestions import SuggestionMethods
from ._undo import UndoManager

if sys.version_info < (3, 11):  # pragma: no cover - anyio brings the backport there
    from exceptiongroup import ExceptionGroup

if TYPE_CHECKING:
    from ..schema import MeshSchema, Violation

__all__ = ["DEFAULT_FRAGMENT", "DEFAULT_ORIGIN", "MAX_UNSETTLED", "MeshDocument"]

DEFAULT_FRAGMENT = "default"
DEFAULT_ORIGIN = "local"
UNTYPED_ROOT_TAG = "doc"
#: Elements remembered by `get_node_by_id` (default 4096); the memo starts over when full.
MAX_ID_CACHE = 4096
_STEP = re.compile(r"(.+)\[(\d+)\]")
ROOT_TAG_KEY = "$tag"


class _Transaction(Transaction):
    """A `pycrdt.Transaction` opened by `MeshDocument.transaction`, with less work per use.

    An editor opens one transaction per keystroke, and pycrdt's own spends over a microsecond
    of Python on each (layers of calls, lock checks, the origin looked up by its hash): a
    fifth of an edit on the fast text path. This one does only what a transaction without a
    lock needs and otherwise behaves as pycrdt's (nested `with` joins it, observers see the
    origin, observer errors are raised on exit). Documents that allow multithreading, and
    transactions without an origin, keep pycrdt's transaction.
    """

    def __init__(self, doc: Doc, origin: Any, origin_hash: int) -> None:
        self._doc = doc
        self._txn = None
        self._leases = 0
        self._origin = origin
        self._origin_hash = origin_hash
        self._timeout = -1

    def __enter__(self, _acquire_transaction: bool = True) -> _Transaction:
        self._leases += 1
        doc = self._doc
        if self._txn is None:
            # observers read the origin back from its hash while the transaction commits
            doc._origins[self._origin_hash] = self._origin
            self._txn = doc._doc.create_transaction_with_origin(self._origin_hash)
        doc._txn = self
        return self

    def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        self._leases -= 1
        if self._leases:
            return
        txn = self._txn
        assert txn is not None
        doc = self._doc
        try:
            txn.commit()
            doc._origins.pop(self._origin_hash, None)
            if doc._exceptions:
                exceptions = tuple(doc._exceptions)
                doc._exceptions.clear()
                raise ExceptionGroup("Observer callback error", exceptions)
        finally:
            txn.drop()
            self._txn = None
            doc._txn = None

    @property
    def origin(self) -> Any:
        """The origin of the transaction."""
        if self._txn is None:
            raise RuntimeError("No current transaction")
        return self._origin


class MeshDocument(SuggestionMethods):
    """A collaborative document: a `pycrdt.Doc` plus its schema.

    Suggestion mode (`suggesting`, `suggestions`, `accept`, `reject`, `accept_all`,
    `reject_all`) comes from `SuggestionMethods`.

    Args:
        schema: the `MeshSchema` enforced on writes, or None for an untyped document
            (nothing enforced; the server opens documents whose schema it does not know).
        fragment: name of the root `XmlFragment` (what editors bind to).
        doc: an existing `pycrdt.Doc` to wrap (a new one if None). Opening never writes.
        origin: origin of the transactions this API opens when the caller gave none.
    """

    def __init__(
        self,
        schema: MeshSchema | None = None,
        *,
        fragment: str = DEFAULT_FRAGMENT,
        doc: Doc | None = None,
        origin: Any = DEFAULT_ORIGIN,
    ) -> None:
        self.schema = schema
        self.fragment_name = fragment
        self.doc: Doc = doc if doc is not None else Doc()
        self.origin = origin
        self.fragment: XmlFragment = self.doc.get(fragment, type=XmlFragment)
        self.root_attribute_map: Map = self.doc.get(f"{fragment}:attributes", type=Map)
        self._root = Element(self, self.fragment)
        # remote updates not fully integrated yet (arrived before their dependencies),
        # shared with whatever else applies updates to this doc (a room server, a client)
        self._unsettled = unsettled_of(self.doc)
        self._by_id: dict[str, XmlElement] = {}
        # Transactions with the default origin, one after the other, are one reused object (it
        # holds nothing between them): a keystroke then allocates none.
        self._default_transaction: _Transaction | None = None

    def __repr__(self) -> str:
        return f"MeshDocument(schema={self.schema!r}, fragment={self.fragment_name!r})"

    # ------------------------------------------------------------ construction

    @classmethod
    def from_update(
        cls,
        schema: MeshSchema | None,
        update: bytes,
        *,
        fragment: str = DEFAULT_FRAGMENT,
        origin: Any = DEFAULT_ORIGIN,
    ) -> MeshDocument:
        """A document loaded from a snapshot (a Yjs v1 update).

        Raises:
            UpdateError: the bytes are not a Yjs update.
        """
        document = cls(schema, fragment=fragment, origin=origin)
        document.apply_update(update)
        return document

    @classmethod
    def from_json(
        cls,
        schema: MeshSchema | None,
        data: dict[str, Any],
        *,
        fragment: str = DEFAULT_FRAGMENT,
        origin: Any = DEFAULT_ORIGIN,
    ) -> MeshDocument:
        """A new document holding `data` (the shape `to_json` writes), `$id`s kept.

        Raises:
            SchemaError: the JSON breaks the schema or is not a document.
        """
        document = cls(schema, fragment=fragment, origin=origin)
        plan = plan_root(schema, data, lambda: set())
        with document.transaction():
            attrs = document.root_attribute_map
            if schema is None and plan.tag != UNTYPED_ROOT_TAG:
                attrs[ROOT_TAG_KEY] = plan.tag
            for name, value in plan.attributes.items():
                attrs[name] = value
            for i, child in enumerate(plan.children):
                write_plan(document.fragment, i, child)
        return document

    # ------------------------------------------------------------ tree

    @property
    def root(self) -> Element:
        """The root element (the `XmlFragment`)."""
        return self._root

    @property
    def root_tag_name(self) -> str:
        if self.schema is not None:
            return self.schema.root_tag_name
        tag = self.root_attribute_map.get(ROOT_TAG_KEY)
        return tag if isinstance(tag, str) else UNTYPED_ROOT_TAG

    def _root_attributes(self) -> dict[str, Any]:
        attrs = {k: normalize(v) for k, v in self.root_attribute_map.items()}
        attrs.pop(ROOT_TAG_KEY, None)
        return attrs

    def get_node_by_id(self, id: str) -> Element | None:
        """The element whose `$id` is `id`, or None.

        Found elements are remembered, so repeated look-ups (an agent editing one
        element many times) skip the walk; a remembered node is trusted only while it
        still carries that `$id` (a deleted node reads no attributes), else the tree is
        walked again.
        """
        node = self._by_id.get(id)
        if node is not None and node.attributes.get(ID) == id:
            return Element(self, node)
        self._by_id.pop(id, None)
        if len(self._by_id) >= MAX_ID_CACHE:
            self._by_id.clear()
        for element in iter_elements(self.fragment):  # remember every id met on the way
            value = element.attributes.get(ID)
            if isinstance(value, str):
                self._by_id.setdefault(value, element)
                if value == id:
                    return Element(self, element)
        return None

    def get_node_by_path(self, path: str) -> Element | None:
        """The element at a path as `Element.path` writes it (``doc/section[1]/p[0]``), or None.

        Each step must name the tag found at that index, so a stale path (the tree
        changed meanwhile) gives None rather than a different element.
        """
        steps = path.split("/")
        if not steps or steps[0] != self.root_tag_name:
            return None
        node: Any = self.fragment
        for step in steps[1:]:
            match = _STEP.fullmatch(step)
            if match is None:
                return None
            tag, index = match.group(1), int(match.group(2))
            kids = list(node.children)
            if index >= len(kids) or not isinstance(kids[index], XmlElement):
                return None
            node = kids[index]
            if node.tag != tag:
                return None
        return Element(self, node)

    def find(self, tag_name: str | None = None, **attributes: Any) -> list[Element]:
        """Every element with this tag and these attribute values (see `Element.find`)."""
        return self._root.find(tag_name, **attributes)

    def grep(self, pattern: str, *, ignore_case: bool = False) -> list[Element]:
        """Every element whose text or attributes match `pattern` (see `Element.grep`)."""
        return self._root.grep(pattern, ignore_case=ignore_case)

    def to_json(self) -> dict[str, Any]:
        """The whole document as ``{root_tag: {attrs..., "children": [...]}}``."""
        return self._root.to_json()

    def to_xml(self) -> str:
        """The root fragment's content as Yjs's ``toString()`` writes it (see `Element.to_xml`)."""
        return self._root.to_xml()

    def validate(self) -> list[Violation]:
        """Every schema violation (empty for an untyped document); never writes."""
        if self.schema is None:
            return []
        return self.schema.validate(self)

    def check_marks(self, ytext: XmlText, attributes: Mapping[str, Any] | None) -> None:
        """Refuse text attributes (marks) the schema does not declare, before they are written.

        For the text engine (and anyone writing marks): ``None`` values (mark removal) are
        always allowed; an untyped document allows everything.

        Raises:
            SchemaError: ``unknown-mark`` or ``mark-attribute``, located at the text node.
        """
        if self.schema is None or not attributes:
            return

        def where() -> tuple[str | None, str]:
            parent = ytext.parent
            element_id = parent.attributes.get(ID) if isinstance(parent, XmlElement) else None
            return element_id, node_path(self.root_tag_name, ytext)

        raise_first(mark_problems(self.schema, dict(attributes)), where)

    def assign_missing_ids(self) -> int:
        """Give a `$id` to elements created without one (e.g. by an editor); returns how many."""
        from .._yxml import new_id

        missing = [e for e in iter_elements(self.fragment) if e.attributes.get(ID) is None]
        if missing:
            with self.transaction():
                for element in missing:
                    element.attributes[ID] = new_id()
        return len(missing)

    # ------------------------------------------------------------ transactions & events

    def transaction(self, origin: Any = None) -> Any:
        """A transaction (context manager) carrying `origin` (default: the document's).

        Nested calls join the transaction in progress; asking for a different
        origin inside it raises `TransactionError`.
        """
        doc = self.doc
        current = doc._txn
        if current is not None:
            if origin is not None and origin != current.origin:
                raise TransactionError(
                    f"a transaction with origin {current.origin!r} is in progress;"
                    f" cannot nest origin {origin!r}"
                )
            return current
        if origin is None:
            origin = self.origin
            reused = self._default_transaction
            if reused is not None and reused._origin is origin:
                return reused
        if origin is None or doc._allow_multithreading:
            return doc.transaction(origin=origin)
        try:
            origin_hash = hash(origin)
        except TypeError:  # pycrdt refuses it with its own error
            return doc.transaction(origin=origin)
        txn = _Transaction(doc, origin, origin_hash)
        if origin is self.origin:
            self._default_transaction = txn
        return txn

    def observe(self, callback: Callable[[DocumentEvent], None]) -> Subscription:
        """Call `callback(DocumentEvent)` after every transaction that changed the document."""
        return Subscription(self, callback)

    def unobserve(self, subscription: Subscription) -> None:
        """Stop a subscription made by `observe`."""
        subscription.close()

    def undo_manager(self, origin: Any = None, *, capture_timeout_millis: int = 500) -> UndoManager:
        """Undo/redo scoped to the edits made with `origin` (default: the document's origin)."""
        return UndoManager(
            self,
            [self.origin if origin is None else origin],
            capture_timeout_millis=capture_timeout_millis,
        )

    # ------------------------------------------------------------ encoding

    def get_state(self) -> bytes:
        """The state vector (what this replica has seen)."""
        return self.doc.get_state()

    def get_update(self, state_vector: bytes | None = None) -> bytes:
        """A Yjs v1 update with everything the holder of `state_vector` lacks (all if None).

        Updates still waiting for their dependencies go with it, as Yjs sends its pending
        structs: a snapshot taken meanwhile keeps them.
        """
        try:
            return self._unsettled.encode(self.doc, state_vector)
        except ValueError as exc:
            raise UpdateError(f"not a state vector: {exc}") from exc

    def apply_update(self, update: bytes, *, origin: Any = None) -> None:
        """Apply a Yjs v1 update from a peer (in a transaction with `origin` if given).

        Raises:
            UpdateError: the bytes are not a Yjs update (the document is unchanged).
        """
        if not isinstance(update, (bytes, bytearray, memoryview)):
            raise UpdateError(f"an update is bytes, not {type(update).__name__}")
        update = bytes(update)
        try:
            with self.doc.transaction(origin=origin) if origin is not None else nullcontext():
                # yrs links a struct that follows a gap in its client's clocks without
                # moving the state vector; only what follows on from our state goes in
                # (the rest waits, shared by every holder of this doc, as in Yjs).
                self._unsettled.apply(self.doc, update)
        except ValueError as exc:
            raise UpdateError(f"not a Yjs update: {exc}") from exc
