"""Editing in suggestion mode: `Suggester` records insertions and deletions as suggestions.

What it writes (see `meshdoc.schema._suggestion`): inserted text carries a
``suggestion_insert`` mark, text to delete gets a ``suggestion_delete`` mark and stays,
inserted elements carry ``$suggestion`` with kind ``insert``, elements to delete get it with
kind ``delete`` and stay. Each call is one suggestion with a fresh id (a rewrite is several:
one per deleted and per inserted stretch, as word processors track them), so a reviewer
accepts or rejects each on its own.

An author's edits inside their own pending insertion are plain edits: a new paragraph the
agent suggested is its draft, and deleting a word of it just deletes the word (there is
nothing to review until the suggestion as a whole is). Everyone else's pending insertion
is content like any other: deleting from it is suggested.

```py
doc = MeshDocument(None)
text = doc.root.append_child("p").text
text.insert(0, "Ship in May")
with doc.suggesting(author="editor") as s:
    s.rewrite_text(text, "Ship in June")
assert [(x.kind, x.text) for x in doc.suggestions()] == [("delete", "May"), ("insert", "June")]
doc.accept_all(author="editor")
assert str(text) == "Ship in June"
```
"""

from __future__ import annotations

import difflib
import re
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pycrdt import XmlElement, XmlFragment, XmlText

from .._exceptions import StructureError
from .._yxml import raw_attributes
from ..schema._suggestion import DELETE_MARK, INSERT_MARK, SUGGESTION_ATTRIBUTE
from ..text._checks import check_range
from ..text._node import TextNode
from ._element import Element

if TYPE_CHECKING:
    from ._views import DocumentView

__all__ = ["Suggester", "now_millis", "suggestion_id"]

#: Words, runs of spaces and single punctuation: what a rewrite is compared by, so a reviewer
#: sees "May" → "June" rather than "Ma" kept and "y" → "Jun" + "e".
_TOKENS = re.compile(r"\s+|\w+|[^\w\s]")


def now_millis() -> float:
    """The time as JavaScript's ``Date.now()`` gives it (what suggestions record)."""
    return int(time.time() * 1000)


def suggestion_id() -> str:
    """A fresh suggestion id: 12 hex digits, short for a model to copy, unique in practice."""
    return uuid.uuid4().hex[:12]


class Suggester:
    """Edits recorded as one author's suggestions (made by `MeshDocument.suggesting`).

    Every method takes a `TextNode` or an `Element` (for an element, its text) and returns
    the id of the suggestion it made, or None when it made none (an edit inside the author's
    own pending insertion, or a deletion of text already proposed for deletion). `ids` lists
    every suggestion made through it.

    Args:
        document: The document.
        author: Who suggests (a participant id).
        origin: Transaction origin of the edits (default: the document's).
        clock: Milliseconds since the epoch, for the suggestions' time.
    """

    def __init__(
        self,
        document: DocumentView,
        author: str,
        *,
        origin: Any = None,
        clock: Callable[[], float] = now_millis,
    ) -> None:
        if not isinstance(author, str) or not author:
            raise ValueError("a suggestion needs an author")
        self.document = document
        self.author = author
        self.origin = origin
        self.ids: list[str] = []
        self._clock = clock
        self._transaction: Any = None

    def __enter__(self) -> Suggester:
        self._transaction = self.document.transaction(self.origin)
        self._transaction.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        transaction, self._transaction = self._transaction, None
        transaction.__exit__(*exc)

    # ------------------------------------------------------------ helpers

    def _mark(self) -> dict[str, Any]:
        ident = suggestion_id()
        self.ids.append(ident)
        return {"id": ident, "author": self.author, "time": self._clock()}

    def _text(self, target: Element | TextNode) -> TextNode:
        return target.text if isinstance(target, Element) else target

    def _own_insertion(self, node: XmlElement | XmlFragment | XmlText | None) -> bool:
        """Whether `node` is, or is inside, an element this author suggested inserting."""
        while isinstance(node, (XmlElement, XmlText)):
            if isinstance(node, XmlElement):
                value = raw_attributes(node).get(SUGGESTION_ATTRIBUTE)
                if isinstance(value, dict) and value.get("kind") == "insert":
                    return value.get("author") == self.author
            node = node.parent  # type: ignore[assignment]
        return False

    def _transact(self) -> Any:
        return self.document.transaction(self.origin)

    # ------------------------------------------------------------ text

    def insert_text(
        self,
        target: Element | TextNode,
        index: int,
        text: str,
        marks: dict[str, Any] | None = None,
    ) -> str | None:
        """Suggest inserting `text` (with `marks`) at code-point `index`."""
        node = self._text(target)
        if not text:
            return None
        if self._own_insertion(node.ytext):
            with self._transact():
                node.insert(index, text, marks)
            return None
        mark = self._mark()
        with self._transact():
            node.insert(index, text, {**(marks or {}), INSERT_MARK: mark})
        return mark["id"]

    def delete_text(self, target: Element | TextNode, index: int, length: int) -> str | None:
        """Suggest deleting `length` code points from `index`: they stay, marked.

        Text the author suggested inserting (and not yet resolved) is deleted outright,
        and text already proposed for deletion is left as it is.
        """
        node = self._text(target)
        index, length = check_range(index, length, len(node))
        if length == 0:
            return None
        own_element = self._own_insertion(node.ytext)
        with self._transact():
            marked: list[tuple[int, int]] = []
            removed: list[tuple[int, int]] = []
            for start, stop, attrs in _runs(node, index, index + length):
                inserted = attrs.get(INSERT_MARK)
                mine = isinstance(inserted, dict) and inserted.get("author") == self.author
                if own_element or mine:
                    removed.append((start, stop))
                elif DELETE_MARK not in attrs:
                    marked.append((start, stop))
            mark = self._mark() if marked else None
            for start, stop in marked:
                node.format(start, stop - start, {DELETE_MARK: mark})
            for start, stop in reversed(removed):
                node.delete(start, stop - start)
        return mark["id"] if mark is not None else None

    def replace_text(
        self,
        target: Element | TextNode,
        index: int,
        length: int,
        text: str,
        marks: dict[str, Any] | None = None,
    ) -> list[str]:
        """Suggest replacing `length` code points at `index` with `text`: a deletion, then
        the insertion right after the deleted text (the two resolve separately)."""
        node = self._text(target)
        made: list[str | None] = []
        with self._transact():
            before = len(node)
            made.append(self.delete_text(node, index, length))
            removed = before - len(node)  # own insertions deleted outright
            made.append(self.insert_text(node, index + length - removed, text, marks))
        return [ident for ident in made if ident is not None]

    def rewrite_text(self, target: Element | TextNode, text: str) -> list[str]:
        """Suggest turning the whole text into `text`, compared word by word: each changed
        stretch is a deletion of the old words and an insertion of the new ones."""
        node = self._text(target)
        old = str(node)
        old_tokens, new_tokens = _TOKENS.findall(old), _TOKENS.findall(text)
        old_at = _offsets(old_tokens)
        new_at = _offsets(new_tokens)
        matcher = difflib.SequenceMatcher(None, old_tokens, new_tokens, autojunk=False)
        made: list[str | None] = []
        with self._transact():
            for i1, i2, j1, j2 in reversed(_stretches(matcher.get_opcodes(), old_tokens)):
                start, stop = old_at[i1], old_at[i2]
                inserted = text[new_at[j1] : new_at[j2]]
                made.extend(reversed(self.replace_text(node, start, stop - start, inserted)))
        return [ident for ident in reversed(made) if ident is not None]

    # ------------------------------------------------------------ elements

    def insert_element(
        self, parent: Element, index: int, tag_name: str, attributes: dict[str, Any] | None = None
    ) -> Element:
        """Suggest inserting a new element (see `Element.insert_child_at`); returns it."""
        with self._transact():
            element = parent.insert_child_at(index, tag_name, attributes)
            if not self._own_insertion(parent.node):
                element.node.attributes[SUGGESTION_ATTRIBUTE] = {**self._mark(), "kind": "insert"}
        return element

    def insert_json(self, parent: Element, index: int, data: dict[str, Any]) -> Element | TextNode:
        """Suggest inserting a node given as JSON (see `Element.insert_json_at`); returns it.

        An element is marked as a whole; a ``$text`` node's runs are marked as text.
        """
        if not isinstance(data, dict) or len(data) != 1 or self._own_insertion(parent.node):
            with self._transact():
                return parent.insert_json_at(index, data)
        ((tag, body),) = data.items()
        if tag == "$text" and isinstance(body, list):
            mark = {INSERT_MARK: self._mark()}
            runs = [
                {**run, "marks": [*(run.get("marks") or []), mark]}
                if isinstance(run, dict)
                else run
                for run in body
            ]
            data = {tag: runs}
        elif isinstance(body, dict):
            data = {tag: {**body, SUGGESTION_ATTRIBUTE: {**self._mark(), "kind": "insert"}}}
        with self._transact():
            return parent.insert_json_at(index, data)

    def delete_element(self, element: Element) -> str | None:
        """Suggest deleting `element` (and what it holds): it stays, marked.

        An element the author suggested inserting (or one inside it) is deleted outright.

        Raises:
            StructureError: the root, or another author's pending insertion (accept or
                reject that first: an element holds one suggestion at a time).
        """
        node = element.node
        if isinstance(node, XmlFragment):
            raise StructureError("the root cannot be deleted")
        element._ensure_alive()
        current = element.suggestion
        if self._own_insertion(node):
            element.delete()
            return None
        if current is not None and current.get("kind") == "insert":
            raise StructureError(
                f"{element!r} is {current.get('author')!r}'s pending insertion"
                f" ({current.get('id')}): accept or reject it first"
            )
        if current is not None:  # already proposed for deletion
            return None
        mark = {**self._mark(), "kind": "delete"}
        with self._transact():
            node.attributes[SUGGESTION_ATTRIBUTE] = mark
        return mark["id"]


def _stretches(
    opcodes: list[tuple[str, int, int, int, int]], tokens: list[str]
) -> list[tuple[int, int, int, int]]:
    """The changed stretches of a word diff, those apart by nothing but spaces joined, so
    "is in May" → "moves to June" is one change, not three words with spaces kept between."""
    out: list[list[int]] = []
    pending_gap: tuple[int, int, int, int] | None = None
    for tag, i1, i2, j1, j2 in opcodes:
        if tag == "equal":
            spaces = all(not token.strip() for token in tokens[i1:i2])
            pending_gap = (i1, i2, j1, j2) if spaces and out else None
            if not spaces:
                out.append([])  # a boundary: the next change starts a new stretch
            continue
        last = out[-1] if out else None
        if last and (pending_gap is not None or (last[1] == i1 and last[3] == j1)):
            last[1], last[3] = i2, j2
        else:
            out.append([i1, i2, j1, j2])
        pending_gap = None
    return [(s[0], s[1], s[2], s[3]) for s in out if s]


def _offsets(tokens: list[str]) -> list[int]:
    """Start of each token in the joined string, and its end last."""
    out = [0]
    for token in tokens:
        out.append(out[-1] + len(token))
    return out


def _runs(node: TextNode, start: int, stop: int) -> list[tuple[int, int, dict[str, Any]]]:
    """The formatted runs of `node` within ``[start, stop)``: (start, stop, marks)."""
    out = []
    position = 0
    for content, attrs in node.ytext.diff():
        size = len(content) if isinstance(content, str) else 1
        low, high = max(start, position), min(stop, position + size)
        if low < high:
            out.append((low, high, dict(attrs or {})))
        position += size
        if position >= stop:
            break
    return out
