"""What `TextNode` keeps per text between edits, what it needs from its document, and how it
reads a text's chunks (pycrdt's `diff()`) when it has to.

One `_TextState` per `XmlText` per document, shared by every `TextNode` on that text: whether
the text is known to be ASCII (then positions need no walk) and its fast-path index.
"""

from __future__ import annotations

import weakref
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

from pycrdt import Doc, XmlText

if TYPE_CHECKING:
    from ._fast import FastText

__all__ = [
    "_BareDocument",
    "_DocumentLike",
    "_TextState",
    "_state_for",
    "byte_offsets",
    "merged_delta",
]


class _DocumentLike(Protocol):
    """What `TextNode` needs from its document: the Yjs doc and nestable transactions."""

    @property
    def doc(self) -> Doc: ...

    def transaction(self, origin: Any = None) -> AbstractContextManager[Any]: ...


class _BareDocument:
    """Adapts a plain `pycrdt.Doc` to the document protocol (for use without `MeshDocument`)."""

    def __init__(self, doc: Doc) -> None:
        self.doc = doc

    def transaction(self, origin: Any = None) -> AbstractContextManager[Any]:
        return self.doc.transaction(origin=origin)


class _TextState:
    """What is known about one `XmlText` between edits, shared by every `TextNode` on it.

    `ascii` is True only while the text is known to hold nothing but ASCII characters (no
    embeds): then a code-point index is its byte offset and no walk over the text is needed.
    It is trusted only while the document's state vector is the one recorded after our last
    look: any insertion anywhere (another peer, undo, a raw pycrdt write, even earlier in the
    same transaction) moves the state vector, and deletions cannot add a non-ASCII character.
    """

    __slots__ = ("ascii", "fast", "fast_off", "plain_edits", "state_vector")

    def __init__(self) -> None:
        self.ascii: bool = False
        self.state_vector: bytes = b""
        self.fast: FastText | None = None
        self.fast_off = False
        self.plain_edits = 0


# One state per XmlText branch, per document; dropped with the document.
_STATES: weakref.WeakKeyDictionary[Doc, dict[Any, _TextState]] = weakref.WeakKeyDictionary()


def _state_for(doc: Doc, ytext: XmlText) -> _TextState:
    per_doc = _STATES.setdefault(doc, {})
    key = ytext.integrated
    state = per_doc.get(key)
    if state is None:
        state = per_doc[key] = _TextState()
    return state


def byte_offsets(chunks: list[tuple[Any, Any]], indices: tuple[int, ...]) -> tuple[int, list[int]]:
    """The length in code points of a text's chunks (an embed counts one), and the UTF-8 byte
    offsets of sorted code-point `indices` in it (indices past the end map to the end)."""
    result: list[int] = []
    want = iter(indices)
    target = next(want, None)
    chars = 0
    nbytes = 0
    for content, _ in chunks:
        size = len(content) if isinstance(content, str) else 1
        while target is not None and target <= chars + size:
            if isinstance(content, str):
                result.append(nbytes + len(content[: target - chars].encode("utf-8")))
            else:
                result.append(nbytes + (target - chars))
            target = next(want, None)
        chars += size
        nbytes += len(content.encode("utf-8")) if isinstance(content, str) else 1
    while target is not None:
        result.append(nbytes)
        target = next(want, None)
    return chars, result


def merged_delta(chunks: list[tuple[Any, Any]]) -> list[dict[str, Any]]:
    """A text's chunks as a Quill/Yjs delta, runs with equal attributes merged."""
    delta: list[dict[str, Any]] = []
    for content, attrs in chunks:
        attrs = dict(attrs) if attrs else None
        if (
            isinstance(content, str)
            and delta
            and isinstance(delta[-1]["insert"], str)
            and delta[-1].get("attributes") == attrs
        ):
            delta[-1]["insert"] += content
            continue
        op: dict[str, Any] = {"insert": content}
        if attrs:
            op["attributes"] = attrs
        delta.append(op)
    return delta
