"""Markdown text → a ProseMirror-JSON tree in the rich-text schema.

The parser is `markdown-it-py` in CommonMark mode with strikethrough on and raw
HTML off (an HTML tag in the source stays visible text instead of vanishing).
Its token stream is folded into the same JSON shape ProseMirror and Tiptap use
(``{"type": "heading", "attrs": {"level": 2}, "content": [...]}``, text nodes
with ``marks``), so the tree can be written into a document, compared in tests
or handed to a JavaScript editor unchanged.

What Markdown has and the schema lacks is folded into what it has:

* a soft line break becomes one space (an editor shows a paragraph as one flow);
* an indented code block becomes a ``codeBlock`` without language;
* an image becomes its alt text (StarterKit has no image node);
* inline code drops the marks around it (bold, link…): Tiptap's ``code`` mark
  excludes all others, and ProseMirror keeps ``code`` when both meet;
* a list item or blockquote with no paragraph first gets an empty one, as
  Tiptap's ``listItem`` (``paragraph block*``) and ``blockquote`` (``block+``)
  require.
"""

from __future__ import annotations

from typing import Any

from markdown_it import MarkdownIt
from markdown_it.common.utils import unescapeAll
from markdown_it.token import Token

__all__ = ["MARK_ORDER", "make_parser", "normalize_inline", "parse_markdown"]

JSON = dict[str, Any]

#: Marks in the order ProseMirror keeps them on a text node (Tiptap StarterKit's rank).
MARK_ORDER: tuple[str, ...] = ("link", "bold", "code", "italic", "strike")

_INLINE_MARKS = {"strong": "bold", "em": "italic", "s": "strike"}
_BLOCK_TYPES = {
    "paragraph": "paragraph",
    "heading": "heading",
    "blockquote": "blockquote",
    "bullet_list": "bulletList",
    "ordered_list": "orderedList",
    "list_item": "listItem",
}


def make_parser() -> MarkdownIt:
    """A CommonMark parser with strikethrough, no raw HTML and links kept verbatim.

    Link destinations are not percent-encoded (``normalizeLink`` is the identity)
    so that an ``href`` read from a document and written back is the same string;
    `markdown-it`'s guard against ``javascript:``-style links stays in place.
    """
    # maxNesting: CommonMark's preset stops at 20 levels and drops what lies deeper;
    # 100 (markdown-it's default preset) keeps any document a person would nest.
    md = MarkdownIt("commonmark", {"html": False, "maxNesting": 100}).enable("strikethrough")
    md.normalizeLink = lambda url: url  # type: ignore[method-assign]
    md.normalizeLinkText = lambda url: url  # type: ignore[method-assign]
    return md


_PARSER = make_parser()


def parse_markdown(text: str) -> list[JSON]:
    """Parse Markdown into the block nodes of a ``doc`` (ProseMirror JSON).

    Args:
        text: Markdown source.

    Returns:
        The top-level block nodes, in order.

    Raises:
        TypeError: if ``text`` is not a string.
    """
    if not isinstance(text, str):
        raise TypeError(f"Markdown must be a str, not {type(text).__name__}")
    tokens = _PARSER.parse(text)
    root: JSON = {"type": "doc", "content": []}
    stack: list[JSON] = [root]
    for token in tokens:
        parent = stack[-1]
        kind = token.type
        if kind.endswith("_open"):
            node = _open_node(token)
            parent.setdefault("content", []).append(node)
            stack.append(node)
        elif kind.endswith("_close"):
            _finish_node(stack.pop())
        elif kind == "inline":
            inline = _inline_nodes(token.children or [])
            if inline:
                parent.setdefault("content", []).extend(inline)
        elif kind in ("fence", "code_block"):
            parent.setdefault("content", []).append(_code_block(token))
        elif kind == "hr":
            parent.setdefault("content", []).append({"type": "horizontalRule"})
    return root.get("content", [])


def _open_node(token: Token) -> JSON:
    name = token.type[: -len("_open")]
    node_type = _BLOCK_TYPES.get(name)
    if node_type is None:  # pragma: no cover - every CommonMark block is mapped
        raise ValueError(f"unexpected Markdown block {token.type!r}")
    node: JSON = {"type": node_type}
    if node_type == "heading":
        node["attrs"] = {"level": int(token.tag[1:])}
    elif node_type == "orderedList":
        start = token.attrGet("start")
        node["attrs"] = {"start": 1 if start is None else int(start)}
    return node


def _finish_node(node: JSON) -> None:
    """Give containers the first child Tiptap's schema requires."""
    content = node.get("content", [])
    if node["type"] == "listItem" and (not content or content[0]["type"] != "paragraph"):
        node["content"] = [{"type": "paragraph"}, *content]
    elif node["type"] == "blockquote" and not content:
        node["content"] = [{"type": "paragraph"}]


def _code_block(token: Token) -> JSON:
    code = token.content
    if code.endswith("\n"):
        code = code[:-1]
    node: JSON = {"type": "codeBlock"}
    language = unescapeAll(token.info).strip() if token.type == "fence" else ""
    if language:
        node["attrs"] = {"language": language}
    if code:
        node["content"] = [{"type": "text", "text": code}]
    return node


def _inline_nodes(children: list[Token]) -> list[JSON]:
    """Fold inline tokens into text nodes with marks and ``hardBreak`` nodes."""
    out: list[JSON] = []
    active: dict[str, dict[str, Any]] = {}
    links: list[dict[str, Any]] = []

    def add_text(text: str, extra: dict[str, dict[str, Any]] | None = None) -> None:
        if not text:
            return
        marks = dict(active)
        if extra:
            marks.update(extra)
        out.append(_text_node(text, marks))

    for token in children:
        kind = token.type
        if kind in ("text", "text_special", "html_inline"):
            add_text(token.content)
        elif kind == "softbreak":
            add_text(" ")
        elif kind == "hardbreak":
            out.append({"type": "hardBreak"})
        elif kind == "code_inline":
            add_text(token.content, {"code": {}})
        elif kind == "image":
            add_text("".join(child.content for child in token.children or []))
        elif kind == "link_open":
            attrs: dict[str, Any] = {"href": str(token.attrGet("href") or "")}
            title = token.attrGet("title")
            if title:
                attrs["title"] = str(title)
            links.append(attrs)
            active["link"] = attrs
        elif kind == "link_close":
            links.pop()
            if links:
                active["link"] = links[-1]
            else:
                active.pop("link", None)
        elif kind.endswith("_open") and kind[:-5] in _INLINE_MARKS:
            active[_INLINE_MARKS[kind[:-5]]] = {}
        elif kind.endswith("_close") and kind[:-6] in _INLINE_MARKS:
            active.pop(_INLINE_MARKS[kind[:-6]], None)
    return normalize_inline(out)


def _text_node(text: str, marks: dict[str, dict[str, Any]]) -> JSON:
    if "code" in marks:  # Tiptap's code mark excludes every other mark
        marks = {"code": {}}
    node: JSON = {"type": "text", "text": text}
    if marks:
        node["marks"] = [
            {"type": name, "attrs": dict(marks[name])} if marks[name] else {"type": name}
            for name in MARK_ORDER
            if name in marks
        ]
    return node


def normalize_inline(nodes: list[JSON]) -> list[JSON]:
    """Merge neighbouring text nodes with equal marks and drop empty ones (as ProseMirror does)."""
    out: list[JSON] = []
    for node in nodes:
        if node["type"] == "text":
            if not node["text"]:
                continue
            if out and out[-1]["type"] == "text" and out[-1].get("marks") == node.get("marks"):
                out[-1] = {**out[-1], "text": out[-1]["text"] + node["text"]}
                continue
        out.append(node)
    return out
