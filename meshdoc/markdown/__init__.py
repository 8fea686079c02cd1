"""Markdown ⇄ documents in the built-in rich-text schema (Tiptap StarterKit names).

```py
from meshdoc.markdown import from_markdown, to_markdown

doc = from_markdown("# Plan\\n\\n- write **tests**\\n- ship\\n")
assert [e.tag_name for e in doc.root.get_child_elements()] == ["heading", "bulletList"]
assert to_markdown(doc) == "# Plan\\n\\n- write **tests**\\n- ship\\n"
```

Markdown is read by `markdown-it-py` (CommonMark plus ``~~strikethrough~~``;
raw HTML stays text). The document is the one y-prosemirror builds for Tiptap:
``paragraph``, ``heading`` (``level``), ``bulletList``, ``orderedList``
(``start``), ``listItem``, ``blockquote``, ``codeBlock`` (``language``),
``horizontalRule``, ``hardBreak``; marks ``bold``, ``italic``, ``strike``,
``code``, ``link`` (``href``, ``title``). So a document made from Markdown
shows in a browser editor as it would had it been pasted there, and an agent
can read what people wrote as Markdown.

Round trips are lossless for what both sides can spell: Markdown → document →
Markdown → document gives the same document (new ``$id``s aside), and a
document → Markdown → document gives it back, special characters and all
(edge whitespace and delimiter neighbours are written as ``&#32;``-style
references when needed). What Markdown cannot spell is dropped: an empty
paragraph, a hard break ending a block, a hard break in a heading of level 3-6
(a space), an ``underline`` mark, a newline inside inline code (a space),
control characters other than tab and newline, a link whose ``href``
`markdown-it` refuses (``javascript:``…, it stays text), line breaks and edge
spaces in a code block's language. Inline code keeps no other mark
(``[`x`](url)`` reads as code without the link), because Tiptap's ``code``
mark excludes all others.
"""

from __future__ import annotations

from typing import Any

from ..schema import RICH_TEXT_SCHEMA, MeshSchema
from ..tree._document import DEFAULT_FRAGMENT, MeshDocument
from ..tree._element import Element
from ._document import blocks_to_json, element_to_prosemirror, insert_blocks
from ._parse import parse_markdown
from ._serialize import serialize_markdown

__all__ = [
    "RICH_TEXT_SCHEMA",
    "from_markdown",
    "insert_markdown",
    "markdown_to_json",
    "markdown_to_prosemirror",
    "prosemirror_to_markdown",
    "to_markdown",
    "to_prosemirror",
]

_CONTAINERS = ("doc", "listItem")


def markdown_to_prosemirror(text: str) -> dict[str, Any]:
    """The ProseMirror (Tiptap) JSON ``doc`` node for Markdown, without touching a document.

    Empty Markdown gives a ``doc`` with one empty paragraph (Tiptap's empty document).

    ```py
    assert markdown_to_prosemirror("*hi*") == {"type": "doc", "content": [
        {"type": "paragraph", "content": [
            {"type": "text", "text": "hi", "marks": [{"type": "italic"}]}]}]}
    ```

    Raises:
        TypeError: `text` is not a string.
    """
    return {"type": "doc", "content": parse_markdown(text) or [{"type": "paragraph"}]}


def markdown_to_json(text: str, schema: MeshSchema | None = None) -> list[dict[str, Any]]:
    """The blocks of `text` as element JSON, one item per block, ready for `Element.append_json`.

    ```py
    assert markdown_to_json("# Hi") == [
        {"heading": {"level": 1, "children": [{"$text": [{"insert": "Hi", "marks": []}]}]}}
    ]
    ```

    Args:
        text: Markdown source.
        schema: the target document's schema, for the key each tag keeps its
            children under (``"children"`` when None or not declared).

    Raises:
        TypeError: `text` is not a string.
    """
    return blocks_to_json(parse_markdown(text), schema)


def prosemirror_to_markdown(node: dict[str, Any]) -> str:
    """Markdown for a ProseMirror JSON node (a ``doc``, a ``listItem`` or any block).

    Raises:
        TypeError: `node` is not a ProseMirror JSON node (a dict with a ``type``).
    """
    if not isinstance(node, dict) or not isinstance(node.get("type"), str):
        raise TypeError(f"expected a ProseMirror JSON node (a dict with 'type'), got {node!r}")
    if node["type"] in _CONTAINERS:
        return serialize_markdown(list(node.get("content") or []))
    return serialize_markdown([node])


def insert_markdown(
    parent: Element, text: str, index: int | None = None, *, origin: Any = None
) -> list[Element]:
    """Insert the blocks of `text` as children of `parent` (the root, a blockquote, a list item).

    Every block is checked against the document's schema before one
    transaction writes them all, each element with a fresh ``$id``.

    Args:
        parent: the element receiving the blocks.
        text: Markdown source.
        index: child index of the first block (default: after the last child).
        origin: the transaction's origin (who writes; default: the document's).

    Returns:
        The new block elements, in order.

    Raises:
        TypeError: `parent` is not an `Element` or `text` is not a string.
        SchemaError: a block is not allowed in `parent` (nothing is written).
        StructureError: `index` is outside the children of `parent`.
    """
    if not isinstance(parent, Element):
        raise TypeError(f"parent must be an Element, not {type(parent).__name__}")
    blocks = parse_markdown(text)
    size = len(parent.get_children())
    if index is None:
        index = size
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= size:
        from .._exceptions import StructureError

        raise StructureError(f"child index {index!r} is outside 0..{size} of <{parent.tag_name}>")
    return insert_blocks(parent, index, blocks, origin=origin)


def from_markdown(
    text: str,
    *,
    document: MeshDocument | None = None,
    fragment: str = DEFAULT_FRAGMENT,
    origin: Any = None,
) -> MeshDocument:
    """A document holding `text`, or `text` appended to the root of `document`.

    A document left with no block gets one empty paragraph, as Tiptap's
    ``doc`` (``block+``) holds.

    Args:
        text: Markdown source.
        document: a document to fill (its own schema applies); a new one in
            `RICH_TEXT_SCHEMA` if None.
        fragment: the `XmlFragment` name of a new document (what an editor binds to).
        origin: the transaction's origin (who writes; default: the document's).

    Returns:
        The document written to.

    Raises:
        TypeError: `text` is not a string or `document` is not a `MeshDocument`.
        SchemaError: `document`'s schema refuses the blocks (nothing is written).
    """
    if document is None:
        document = MeshDocument(RICH_TEXT_SCHEMA, fragment=fragment)
    elif not isinstance(document, MeshDocument):
        raise TypeError(f"document must be a MeshDocument, not {type(document).__name__}")
    blocks = parse_markdown(text)
    if not blocks and not document.root.get_children():
        blocks = [{"type": "paragraph"}]  # Tiptap's doc holds at least one block
    insert_blocks(document.root, len(document.root.get_children()), blocks, origin=origin)
    return document


def to_prosemirror(source: MeshDocument | Element) -> dict[str, Any]:
    """ProseMirror (Tiptap) JSON of a document or element, as y-prosemirror would read it.

    Raises:
        TypeError: `source` is neither a `MeshDocument` nor an `Element`.
    """
    if isinstance(source, MeshDocument):
        source = source.root
    if not isinstance(source, Element):
        raise TypeError(f"expected a MeshDocument or Element, not {type(source).__name__}")
    return element_to_prosemirror(source)


def to_markdown(source: MeshDocument | Element) -> str:
    """Markdown for a whole document, or for one element (a block, a list item…).

    Raises:
        TypeError: `source` is neither a `MeshDocument` nor an `Element`.
    """
    return prosemirror_to_markdown(to_prosemirror(source))
