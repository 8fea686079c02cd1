"""Pending suggestions: find them in a document, list them, accept or reject them.

A suggestion is stored where it applies (`meshdoc.schema._suggestion`): marks on the text
it inserted or proposes to delete, a ``$suggestion`` attribute on the elements it inserted
or proposes to delete. Nothing else records it, so there is no second structure to keep in
step with the document: whatever a peer, an editor or an undo does to the content does it
to the suggestion too, and listing reads the document as it is now.

Resolving is an ordinary edit: accepting an insertion removes its mark or attribute,
rejecting it removes the content; accepting a deletion removes the content, rejecting it
removes the mark or attribute. So two people resolving at once converge as any two edits
do, and when one accepts what the other rejects at the same moment, the content removal
wins on every replica (Yjs applies a format or attribute change to content that is gone as
nothing). Resolving a suggestion that is no longer there does nothing.

```py
doc = MeshDocument(None)
text = doc.root.append_child("p").text
text.insert(0, "Hello")
with doc.suggesting(author="ann") as s:
    added = s.insert_text(text, 5, " world")
assert [x.text for x in doc.suggestions()] == [" world"]
doc.reject(added)
assert str(text) == "Hello" and doc.suggestions() == []
```
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pycrdt import XmlElement, XmlFragment, XmlText

from .._yxml import ID, child_index, children, node_path, normalize, raw_attributes
from ..schema._suggestion import DELETE_MARK, INSERT_MARK, SUGGESTION_ATTRIBUTE
from ..text._node import TextNode

if TYPE_CHECKING:
    from ._suggest import Suggester
    from ._views import DocumentView

__all__ = ["Suggestion", "SuggestionMethods", "find_parts", "resolve", "text_of"]

SuggestionKind = Literal["insert", "delete"]
_MARK_KIND: dict[str, SuggestionKind] = {INSERT_MARK: "insert", DELETE_MARK: "delete"}
# y-prosemirror names a mark that may overlap itself "name--<8-char hash>"; ours do not, but
# a differently configured editor could write them so
_HASHED = re.compile(r"^(suggestion_insert|suggestion_delete)(--[a-zA-Z0-9+/=]{8})?$")


@dataclass(frozen=True)
class Suggestion:
    """One pending suggestion, as `MeshDocument.suggestions` lists it.

    Attributes:
        id: Its id, for `accept` and `reject`.
        author: Who suggested it.
        time: When, in milliseconds since the epoch.
        kind: ``"insert"`` (content proposed) or ``"delete"`` (content proposed for removal).
        target: ``"text"`` (runs of rich text) or ``"element"`` (whole elements).
        where: Path of the element it is in (text) or is (element), its first place.
        element_id: That element's `$id`.
        text: The text it inserts or deletes (an element's: the text inside it).
    """

    id: str
    author: str
    time: float
    kind: SuggestionKind
    target: Literal["text", "element"]
    where: str
    element_id: str | None
    text: str

    def to_json(self) -> dict[str, Any]:
        """A JSON object of every field (what the documents toolkit shows a model)."""
        return {
            "id": self.id,
            "author": self.author,
            "time": self.time,
            "kind": self.kind,
            "target": self.target,
            "where": self.where,
            "element_id": self.element_id,
            "text": self.text,
        }


@dataclass
class _Part:
    """One place a suggestion occupies: a run of one text, or one element."""

    id: str
    author: str
    time: float
    kind: SuggestionKind
    node: XmlText | XmlElement
    key: str = SUGGESTION_ATTRIBUTE  # the mark's attribute name, for text
    start: int = 0  # code points, for text
    text: str = ""


def _fields(value: Any) -> tuple[str, str, float] | None:
    if not isinstance(value, dict) or not isinstance(value.get("id"), str) or not value["id"]:
        return None
    author = value.get("author")
    time = value.get("time")
    return (
        value["id"],
        author if isinstance(author, str) else "",
        normalize(time) if isinstance(time, (int, float)) and not isinstance(time, bool) else 0,
    )


def text_of(node: XmlElement | XmlFragment) -> str:
    """The text inside an element, its texts joined by spaces (for listing)."""
    pieces: list[str] = []
    for child in children(node):
        if isinstance(child, XmlText):  # (str() of an XmlText is XML, marks and all)
            pieces.append("".join(c if isinstance(c, str) else "\ufffc" for c, _ in child.diff()))
        else:
            inner = text_of(child)
            if inner:
                pieces.append(inner)
    return " ".join(piece for piece in pieces if piece)


def _text_parts(node: XmlText, out: list[_Part]) -> None:
    """The suggestion runs of one text, each stretch of one mark and id as one part.

    Replicas may cut a text's runs differently (and order a run's marks differently), so
    runs are joined by mark and id, and their marks read in name order.
    """
    position = 0
    open_parts: dict[str, _Part] = {}  # mark name -> the part that reaches `position`
    for content, attrs in node.diff():
        piece = content if isinstance(content, str) else "\ufffc"
        size = len(piece) if isinstance(content, str) else 1
        reached: dict[str, _Part] = {}
        for key in sorted(attrs or {}):
            match = _HASHED.match(key)
            found = _fields(attrs[key]) if match else None  # type: ignore[index]
            if found is None or match is None:
                continue
            ident, author, time = found
            part = open_parts.get(key)
            if part is not None and part.id == ident:
                part.text += piece
            else:
                kind = _MARK_KIND[match.group(1)]
                part = _Part(ident, author, time, kind, node, key, position, piece)
                out.append(part)
            reached[key] = part
        open_parts = reached
        position += size


def find_parts(root: XmlElement | XmlFragment) -> list[_Part]:
    """Every place a suggestion occupies under `root`, in document order."""
    out: list[_Part] = []
    stack: list[XmlElement | XmlText] = list(reversed(children(root)))
    while stack:
        node = stack.pop()
        if isinstance(node, XmlText):
            _text_parts(node, out)
            continue
        value = raw_attributes(node).get(SUGGESTION_ATTRIBUTE)
        found = _fields(value)
        if found is not None and value.get("kind") in _MARK_KIND.values():
            ident, author, time = found
            out.append(_Part(ident, author, time, value["kind"], node, text=text_of(node)))
        stack.extend(reversed(children(node)))
    return out


def _listing(document: DocumentView, parts: list[_Part]) -> list[Suggestion]:
    by_id: dict[str, list[_Part]] = {}
    for part in parts:
        by_id.setdefault(part.id, []).append(part)
    listed = []
    for ident, group in by_id.items():
        first = group[0]
        holder = first.node.parent if isinstance(first.node, XmlText) else first.node
        element_id = holder.attributes.get(ID) if isinstance(holder, XmlElement) else None
        where = (
            node_path(document.root_tag_name, holder)  # type: ignore[arg-type]
            if holder is not None
            else document.root_tag_name
        )
        listed.append(
            Suggestion(
                id=ident,
                author=first.author,
                time=first.time,
                kind=first.kind,
                target="text" if isinstance(first.node, XmlText) else "element",
                where=where,
                element_id=element_id if isinstance(element_id, str) else None,
                text=("" if isinstance(first.node, XmlText) else "\n").join(p.text for p in group),
            )
        )
    return listed


def _removes_content(part: _Part, accept: bool) -> bool:
    return (part.kind == "delete") == accept


def resolve(
    document: DocumentView, ids: set[str] | None, author: str | None, *, accept: bool
) -> int:
    """Accept or reject the suggestions with these ids (all if None) by `author` (any if None).

    One transaction: marks and attributes first, then content removed right to left and
    innermost first, so no removal moves a place still to be resolved. Returns how many
    suggestions were resolved (0 when none of them is there any more).
    """
    parts = [
        part
        for part in find_parts(document.fragment)
        if (ids is None or part.id in ids) and (author is None or part.author == author)
    ]
    if not parts:
        return 0
    texts: dict[XmlText, list[_Part]] = {}
    elements: list[_Part] = []
    for part in parts:
        if isinstance(part.node, XmlText):
            texts.setdefault(part.node, []).append(part)
        else:
            elements.append(part)
    with document.transaction():
        for ytext, runs in texts.items():
            view = TextNode(document, ytext)  # type: ignore[arg-type]
            for run in runs:
                if not _removes_content(run, accept):
                    view.format(run.start, len(run.text), {run.key: None})
            for run in sorted(runs, key=lambda r: r.start, reverse=True):
                if _removes_content(run, accept):
                    view.delete(run.start, len(run.text))
        for part in reversed(elements):  # document order reversed: children before parents
            node = part.node
            assert isinstance(node, XmlElement)
            parent = node.parent
            index = child_index(parent, node) if parent is not None else -1  # type: ignore[arg-type]
            if index < 0:
                continue  # inside an element removed a moment ago
            if _removes_content(part, accept):
                del parent.children[index]  # type: ignore[union-attr]
            elif SUGGESTION_ATTRIBUTE in raw_attributes(node):
                del node.attributes[SUGGESTION_ATTRIBUTE]
    return len({part.id for part in parts})


class SuggestionMethods:
    """`MeshDocument`'s suggestion methods (a base class, so the document module stays short)."""

    def suggesting(self, author: str, *, origin: Any = None) -> Suggester:
        """A `Suggester`: edits made through it are recorded as `author`'s suggestions.

        As a context manager (``with doc.suggesting(author="editor-agent") as s:``) its
        edits form one transaction, with `origin` (default: the document's).
        """
        from ._suggest import Suggester

        return Suggester(self, author, origin=origin)  # type: ignore[arg-type]

    def suggestions(self, author: str | None = None) -> list[Suggestion]:
        """Every pending suggestion (or only `author`'s), in document order."""
        document: DocumentView = self  # type: ignore[assignment]
        parts = find_parts(document.fragment)
        if author is not None:
            parts = [part for part in parts if part.author == author]
        return _listing(document, parts)

    def accept(self, *ids: str) -> int:
        """Accept suggestions by id: an insertion stays (unmarked), a deletion is made.

        Returns how many were there to accept; ids no longer pending are skipped.
        """
        return resolve(self, set(ids), None, accept=True)  # type: ignore[arg-type]

    def reject(self, *ids: str) -> int:
        """Reject suggestions by id: an insertion is removed, a deletion's mark is removed."""
        return resolve(self, set(ids), None, accept=False)  # type: ignore[arg-type]

    def accept_all(self, author: str | None = None) -> int:
        """Accept every pending suggestion, or every one of `author`'s."""
        return resolve(self, None, author, accept=True)  # type: ignore[arg-type]

    def reject_all(self, author: str | None = None) -> int:
        """Reject every pending suggestion, or every one of `author`'s."""
        return resolve(self, None, author, accept=False)  # type: ignore[arg-type]
