"""Rich text inside a meshdoc element: a thin, code-point indexed view over a Yjs `XmlText`.

pycrdt counts text positions in UTF-8 bytes and Yjs counts UTF-16 units, while Python (and
every caller of this API) counts code points. An index that lands inside a multi-byte
character is silently misplaced by pycrdt (it appends at the end), and an edit that splits
the two UTF-16 halves of an emoji makes Yjs and yrs disagree on the text. `TextNode` converts
every code-point index to a byte offset on a character boundary, so no edit made here ever
splits a character, and refuses strings that cannot cross the wire (lone surrogates).

Formatting is stored as Yjs attributes (marks), exactly as y-prosemirror stores them, so a
paragraph edited here shows up formatted in a browser editor.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

from pycrdt import Assoc, Doc, XmlText

from .._exceptions import TextRangeError, UpdateError
from ._checks import check_attributes, check_int, check_range, check_text
from ._fast import FastText, Unsupported
from ._state import _BareDocument, _DocumentLike, _state_for, byte_offsets, merged_delta
from ._sticky import StickyPosition, _scratch, _text_id, create_position, resolve_position

__all__ = ["EMBED_CHARACTER", "StickyPosition", "TextNode"]

_log = logging.getLogger(__name__)

#: Texts at least this long (UTF-8 bytes) edit through the fast path (`_text_fast`): below it a
#: positional edit is cheap anyway and the fast path's one-off index build would not pay off.
FAST_PATH_MIN_LENGTH = 2048

#: Edits made on the plain path before a long text gets its index. Building it reads every
#: item of the document (about 2.5 s for 100,000 items), as much as a few hundred positional
#: edits cost on such a text: a text edited only now and then never pays for it.
FAST_PATH_MIN_EDITS = 128

_NO_ATTRS: dict[str, Any] = {}  # (never changed: spares an empty dict per insert)

#: Stands for an embedded object (an image, a mention…) in `str(node)`, so that string indices
#: and text indices agree: an embed occupies one position.
EMBED_CHARACTER = "\ufffc"


class TextNode:
    """Rich text of one element, indexed in code points like a Python `str`.

    ```py
    from pycrdt import Doc, XmlFragment, XmlText
    doc = Doc()
    root = doc.get("default", type=XmlFragment)
    node = TextNode(doc, root.children.append(XmlText()))
    node.insert(0, "héllo 😀 world")
    node.format(0, 5, {"bold": True})
    node.delete(5, 2)
    assert str(node) == "héllo world" and len(node) == 11
    assert node.to_delta()[0] == {"insert": "héllo", "attributes": {"bold": True}}
    ```

    Every write runs in the document's current transaction (or opens one), so it carries
    that transaction's origin: observers, audit and per-origin undo see who made it.

    Args:
        document: The `MeshDocument` (anything with `.doc` and `.transaction(origin=None)`),
            or a bare `pycrdt.Doc`.
        ytext: The `pycrdt.XmlText` holding the text; it must belong to `document.doc`.
    """

    __slots__ = ("_doc", "_document", "_raw", "_state", "_ydoc", "_ytext")

    def __init__(self, document: _DocumentLike | Doc, ytext: XmlText) -> None:
        if isinstance(document, Doc):
            document = _BareDocument(document)
        if not isinstance(ytext, XmlText):
            raise TypeError(f"ytext must be a pycrdt.XmlText, not {type(ytext).__name__}")
        doc = document.doc
        if ytext.doc is not doc:
            raise ValueError("ytext belongs to another document")
        self._document = document
        self._doc = doc
        self._ydoc = doc._doc  # the native document, for calls made per keystroke
        self._ytext = ytext
        self._raw = ytext.integrated
        self._state = _state_for(doc, ytext)

    @property
    def ytext(self) -> XmlText:
        """The underlying `pycrdt.XmlText`."""
        return self._ytext

    # -- reading -----------------------------------------------------------------------------

    def _chunks(self) -> list[tuple[Any, dict[str, Any] | None]]:
        return self._ytext.diff()

    def __str__(self) -> str:
        """The plain text; each embed shows as `EMBED_CHARACTER` so indices line up."""
        return "".join(c if isinstance(c, str) else EMBED_CHARACTER for c, _ in self._chunks())

    def __len__(self) -> int:
        """The length in code points (an embed counts one)."""
        with self._doc.transaction() as txn:
            return self._locate(txn)[0]

    def __iter__(self) -> Iterator[str]:
        return iter(str(self))

    def __repr__(self) -> str:
        return f"TextNode({str(self)!r})"

    def to_delta(self) -> list[dict[str, Any]]:
        """The text as a Quill/Yjs delta: `[{"insert": str, "attributes"?: {...}}, ...]`.

        Runs with equal attributes are merged; strings are Python strings (code points).
        """
        return merged_delta(self._chunks())

    def _check_marks(self, attrs: dict[str, Any]) -> None:
        """Let the document refuse marks its schema does not declare (before any write)."""
        check = getattr(self._document, "check_marks", None)
        if check is not None:
            check(self._ytext, attrs)

    def _fast(self, txn: Any) -> FastText | None:
        """The fast path for this text, up to date, or None to use the plain path."""
        state = self._state
        fast = state.fast
        if fast is not None:  # nothing else happened since our last edit: the index is true
            raw_txn = txn._txn
            if (
                fast.state_bytes == self._ydoc.get_state(raw_txn)
                and fast.bytes == self._raw.len(raw_txn)
                and not fast.marks_changed
            ):
                return fast
        if state.fast_off:
            return None
        try:
            fast = state.fast
            if fast is None:
                if self._raw.len(txn._txn) < FAST_PATH_MIN_LENGTH:
                    return None
                state.plain_edits += 1
                if state.plain_edits <= FAST_PATH_MIN_EDITS:
                    return None
                copy, twin = _scratch(self._doc, self._ytext)
                fast = FastText(_text_id(copy, twin))
            fast.ensure(self._doc, self._ytext, txn)
        except (Unsupported, UpdateError):  # content it cannot model, or a text outside a tree
            state.fast = None
            state.fast_off = True
            return None
        except Exception:  # the plain path must always remain: never let the index block edits
            _log.warning("text index failed; this text goes back to the plain path", exc_info=True)
            state.fast = None
            state.fast_off = True
            return None
        state.fast = fast
        return fast

    # -- positions ---------------------------------------------------------------------------

    def _locate(self, txn: Any, *indices: int) -> tuple[int, list[int]]:
        """The length in code points and the byte offsets of sorted code-point `indices`.

        Indices past the end map to the end; callers check them against the length. On ASCII
        text (the common case, known without reading the text) this costs O(1).
        """
        state = self._state
        state_vector = self._ydoc.get_state(txn._txn)  # (pycrdt's call would nest a transaction)
        if state.ascii and state.state_vector == state_vector:
            return self._raw.len(txn._txn), list(indices)
        chunks = self._chunks()
        state.ascii = all(isinstance(c, str) and c.isascii() for c, _ in chunks)
        state.state_vector = state_vector
        if state.ascii:
            return self._raw.len(txn._txn), list(indices)
        return byte_offsets(chunks, indices)

    _check_range = staticmethod(check_range)

    # -- writing -----------------------------------------------------------------------------

    def _after_write(self, txn: Any, inserted: str | None) -> None:
        state = self._state
        if state.fast is not None:  # a plain-path write: the index reads it back before use
            state.fast.marks_changed = True
        if state.ascii and (inserted is None or inserted.isascii()):
            state.state_vector = self._ydoc.get_state(txn._txn)
        else:
            state.ascii = False

    def insert(self, index: int, text: str, attributes: Mapping[str, Any] | None = None) -> None:
        """Insert `text` at code-point `index`, with `attributes` as its marks.

        Without attributes the new text carries no marks (it does not inherit its neighbour's).

        Raises:
            TypeError: `index` is not an int, `text` not a str, or attributes not JSON-like.
            ValueError: `text` holds a lone surrogate.
            SchemaError: the document's schema does not declare a mark.
            TextRangeError: `index` is outside `0..len(node)`.
        """
        # Per keystroke, so the common case (an int, ASCII text, no marks, inside an open
        # transaction) skips the general checks and the nested transaction context managers.
        if type(index) is not int:
            index = check_int(index, "index")
        if type(text) is not str or not text.isascii():
            text = check_text(text)
        attrs = _NO_ATTRS
        if attributes:
            attrs = check_attributes(attributes, allow_none_values=False)
            self._check_marks(attrs)
        txn = self._doc._txn
        if txn is None:
            with self._document.transaction():
                self._insert(self._doc._txn, index, text, attrs)
            return
        fast = self._state.fast
        if fast is not None and attrs is _NO_ATTRS and text and not fast.marks_changed:
            # `_insert` with `_fast`'s check that nothing else happened, inline (per keystroke)
            raw_txn = txn._txn
            ydoc = self._ydoc
            if fast.state_bytes == ydoc.get_state(raw_txn) and fast.bytes == self._raw.len(raw_txn):
                if (
                    index == fast.cur_pos
                    and fast.cur_typing
                    and fast.cur_version == fast.index.version
                ):
                    fast.type_on(ydoc, raw_txn, text)
                    return
                if 0 <= index <= fast.index.visible and fast.insert(self._doc, txn, index, text):
                    return
        self._insert(txn, index, text, attrs)

    def _insert(self, txn: Any, index: int, text: str, attrs: dict[str, Any]) -> None:
        fast = self._state.fast
        if attrs:
            fast = None
        elif fast is None or fast.marks_changed:
            fast = self._fast(txn)
        else:  # `_fast`'s check that nothing else happened, inline: this runs per keystroke
            raw_txn = txn._txn
            if fast.state_bytes != self._ydoc.get_state(raw_txn) or fast.bytes != self._raw.len(
                raw_txn
            ):
                fast = self._fast(txn)
        if fast is not None:
            size = fast.index.visible
            if not 0 <= index <= size:
                raise TextRangeError(f"index {index} is outside the text (0..{size})")
            if not text or fast.insert(self._doc, txn, index, text):
                return
        size, (offset,) = self._locate(txn, index)
        if not 0 <= index <= size:
            raise TextRangeError(f"index {index} is outside the text (0..{size})")
        if not text:
            return
        self._raw.insert(txn._txn, offset, text, iter(attrs.items()))
        self._after_write(txn, text)

    def delete(self, index: int, length: int) -> None:
        """Delete `length` code points starting at `index`.

        Raises:
            TypeError: `index` or `length` is not an int.
            ValueError: `length` is negative.
            TextRangeError: the range reaches outside the text.
        """
        if type(index) is not int or type(length) is not int or length < 0:
            index, length = self._check_range(index, length, None)
        txn = self._doc._txn
        if txn is None:
            with self._document.transaction():
                self._delete(self._doc._txn, index, length)
            return
        fast = self._state.fast
        if fast is not None and length and not fast.marks_changed:
            # `_delete` with `_fast`'s check that nothing else happened, inline (per keystroke)
            raw_txn = txn._txn
            if (
                fast.state_bytes == self._ydoc.get_state(raw_txn)
                and fast.bytes == self._raw.len(raw_txn)
                and index >= 0
                and index + length <= fast.index.visible
            ):
                fast.delete(self._doc, txn, index, length)
                return
        self._delete(txn, index, length)

    def _delete(self, txn: Any, index: int, length: int) -> None:
        fast = self._fast(txn)
        if fast is not None:
            if index < 0 or index + length > fast.index.visible:
                self._check_range(index, length, fast.index.visible)
            if length:
                fast.delete(self._doc, txn, index, length)
            return
        size, (start, stop) = self._locate(txn, index, index + length)
        self._check_range(index, length, size)
        if length == 0:
            return
        self._raw.remove_range(txn._txn, start, stop - start)
        self._after_write(txn, None)

    def replace(
        self, index: int, length: int, text: str, attributes: Mapping[str, Any] | None = None
    ) -> None:
        """Replace `length` code points at `index` with `text`, in one transaction."""
        text = check_text(text)
        attrs = check_attributes(attributes, allow_none_values=False) if attributes else None
        if attrs:
            self._check_marks(attrs)
        with self._document.transaction():
            self._check_range(index, length, len(self))
            self.delete(index, length)
            self.insert(index, text, attrs)

    def format(self, index: int, length: int, attributes: Mapping[str, Any]) -> None:
        """Set marks on a range: `{"bold": True}` adds, `{"bold": None}` removes.

        Raises:
            TypeError: bad index/length types, or attributes not a JSON-like mapping.
            ValueError: `length` is negative or `attributes` is empty.
            SchemaError: the document's schema does not declare a mark.
            TextRangeError: the range reaches outside the text.
        """
        attrs = check_attributes(attributes, allow_none_values=True)
        if not attrs:
            raise ValueError("format() needs at least one attribute")
        self._check_marks(attrs)
        index, length = self._check_range(index, length, None)
        with self._document.transaction(), self._doc.transaction() as txn:
            size, (start, stop) = self._locate(txn, index, index + length)
            self._check_range(index, length, size)
            if length == 0:
                return
            self._raw.format(txn._txn, start, stop - start, iter(attrs.items()))
            self._after_write(txn, None)

    # -- sticky positions --------------------------------------------------------------------

    def sticky_index(self, index: int, assoc: Assoc = Assoc.AFTER) -> StickyPosition:
        """A position that follows the text through later and concurrent edits.

        `Assoc.AFTER` sticks to the character at `index` (text typed at the position goes
        before it), `Assoc.BEFORE` to the character before `index`. The result serialises to
        the JSON form of a Yjs `RelativePosition`, which any peer can resolve.

        Cost: O(log n) on a text with an item index (the fast path); otherwise proportional
        to the document size (made on a scratch copy of the document).

        Raises:
            TextRangeError: `index` is outside `0..len(node)`.
        """
        index = check_int(index, "index")
        assoc = Assoc(assoc)
        with self._doc.transaction() as txn:
            fast = self._fast(txn)
            size = fast.index.visible if fast is not None else len(self)
            if not 0 <= index <= size:
                raise TextRangeError(f"index {index} is outside the text (0..{size})")
            if fast is not None:
                ident = fast.item_at(index, assoc == Assoc.AFTER)
                if ident is None:
                    return StickyPosition(type_id=fast.text_id, assoc=assoc)
                return StickyPosition(item=ident, assoc=assoc)
            (offset,) = self._locate(txn, index)[1]
            return create_position(self._doc, self._ytext, offset, assoc)

    def index_of(self, position: StickyPosition) -> int:
        """Resolve a sticky position back to a code-point index in this text.

        Raises:
            UpdateError: the position points into another type (or an unknown item).
        """
        if not isinstance(position, StickyPosition):
            raise TypeError(f"expected a StickyPosition, not {type(position).__name__}")
        with self._doc.transaction() as txn:
            fast = self._fast(txn)
            if fast is not None and position.item is not None:
                try:
                    found = fast.index_of(position.item, position.assoc == Assoc.AFTER)
                except Unsupported:  # an ID inside a surrogate pair (set by a UTF-16 peer)
                    found = None
                if found is not None:
                    return found
            elif fast is not None and position.type_id == fast.text_id:
                return fast.index.visible if position.assoc == Assoc.AFTER else 0
            return resolve_position(self._doc, self._ytext, position, str(self))
