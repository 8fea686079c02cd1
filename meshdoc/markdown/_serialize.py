"""A ProseMirror-JSON tree in the rich-text schema → CommonMark text.

Blocks are rendered to lines and containers prefix their children's lines
(``> `` for a blockquote, the list marker then an indent for a list item), so
any nesting comes out right. The output is chosen to parse back to the same
tree with `meshdoc`'s own parser:

* blocks are separated by a blank line; a list is tight (one line per item)
  when each of its items holds one block;
* a list right after a list of the same kind switches marker (``-``/``*``,
  ``.``/``)``) so Markdown does not merge the two;
* code blocks are always fenced, with a fence longer than any inside the code;
* headings with a hard break use the setext form (levels 1 and 2).

What Markdown cannot spell is dropped or folded, never turned into other
content: an empty paragraph (except the one a list item or blockquote starts
with), a hard break ending a block, and a hard break inside a heading of level
3 to 6 (written as a space).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ._inline import serialize_inline

__all__ = ["serialize_markdown"]

JSON = dict[str, Any]

_LISTS = ("bulletList", "orderedList")
_THEMATIC_BREAK = re.compile(r"^ {0,3}(?:(?:-[ \t]*){3,}|(?:\*[ \t]*){3,}|(?:_[ \t]*){3,})$")


def serialize_markdown(blocks: list[JSON]) -> str:
    """Markdown for the block nodes of a ``doc``; ends with a newline unless empty.

    Args:
        blocks: ProseMirror JSON block nodes (the ``content`` of a ``doc``).

    Returns:
        CommonMark text (with ``~~strikethrough~~``). A node outside the
        rich-text schema is written as what it holds (its text as a paragraph,
        or its blocks).
    """
    lines = _blocks(blocks)
    return "\n".join(lines) + "\n" if lines else ""


def _blocks(blocks: list[JSON]) -> list[str]:
    out: list[str] = []
    for _, lines, _ in _rendered(blocks):
        if out:
            out.append("")
        out.extend(lines)
    return out


def _rendered(blocks: list[JSON]) -> Iterator[tuple[JSON, list[str], JSON | None]]:
    """Each block that has lines: the block, its lines and the block written before it.

    A list right after a list of its kind takes another marker, or Markdown
    would read the two as one list.
    """
    previous: JSON | None = None
    marker: str | None = None
    for block in blocks:
        same = previous is not None and previous.get("type") == block.get("type")
        used = None
        if block.get("type") in _LISTS:
            lines, used = _list(block, avoid=marker if same else None)
        else:
            lines = _block(block)
        if not lines:
            continue
        yield block, lines, previous
        previous, marker = block, used


def _block(node: JSON) -> list[str]:
    kind = node.get("type")
    content = node.get("content") or []
    attrs = node.get("attrs") or {}
    if kind == "paragraph":
        text = serialize_inline(content)
        return text.split("\n") if text else []
    if kind == "heading":
        return _heading(int(attrs.get("level") or 1), content)
    if kind == "codeBlock":
        return _code_block(attrs.get("language"), content)
    if kind == "horizontalRule":
        return ["---"]
    if kind == "blockquote":
        inner = _blocks(content)
        return [f"> {line}" if line else ">" for line in inner] or [">"]
    if kind in _LISTS:
        return _list(node, avoid=None)[0]
    # a node Markdown has no spelling for: keep what it holds
    if any(child.get("type") in ("text", "hardBreak") for child in content):
        return _block({"type": "paragraph", "content": content})
    return _blocks(content)


def _heading(level: int, content: list[JSON]) -> list[str]:
    level = min(max(level, 1), 6)
    breaks = any(node.get("type") == "hardBreak" for node in content)
    if breaks and level <= 2:
        text = serialize_inline(content)
        if "\n" in text:
            return [*text.split("\n"), "=" * 3 if level == 1 else "-" * 3]
    if breaks:
        content = [
            {"type": "text", "text": " "} if node.get("type") == "hardBreak" else node
            for node in content
        ]
    text = serialize_inline(content, heading=True)
    return ["#" * level + (" " + text if text else "")]


def _code_block(language: Any, content: list[JSON]) -> list[str]:
    code = "".join(
        "\n" if node.get("type") == "hardBreak" else node.get("text", "") for node in content
    )
    info = "" if language is None else str(language).strip()
    char = "~" if "`" in info else "`"
    longest = max((len(run) for run in re.findall(re.escape(char) + "+", code)), default=0)
    fence = char * max(3, longest + 1)
    info = re.sub(r"([\\&])", r"\\\1", info).replace("\n", "&#10;").replace("\r", "&#13;")
    return [fence + info, *(code.split("\n") if code else []), fence]


def _list(node: JSON, avoid: str | None) -> tuple[list[str], str]:
    """The list's lines and the marker used (``-``, ``*``, ``+``; ``.`` or ``)`` after numbers).

    The marker is the first one that differs from `avoid` (the previous
    list's) and does not turn an item's first line into a thematic break
    (``- - -``, for three nested empty items).
    """
    ordered = node["type"] == "orderedList"
    items = [item for item in node.get("content") or [] if item.get("type") == "listItem"]
    start = int((node.get("attrs") or {}).get("start", 1)) if ordered else 0
    rendered = [_item_lines(item) for item in items]
    tight = all(item_tight for _, item_tight in rendered)
    out: list[str] = []
    candidates = [m for m in ((".", ")") if ordered else ("-", "*", "+")) if m != avoid]
    for char in candidates:
        out = []
        for index, (lines, _) in enumerate(rendered):
            marker = f"{start + index}{char}" if ordered else char
            first = lines[0] if lines else ""
            if first == "---":
                first = "___"  # "- ---" would read as one thematic break
            indent = " " * (len(marker) + 1)
            if out and not tight:
                out.append("")
            out.append(f"{marker} {first}" if first else marker)
            out.extend(indent + line if line else "" for line in lines[1:])
        if not any(_THEMATIC_BREAK.match(line) for line in out):
            break
    return out, char


def _item_lines(item: JSON) -> tuple[list[str], bool]:
    """An item's lines, and whether they hold no blank line between blocks.

    A nested list may follow its item's paragraph on the next line when
    Markdown lets it interrupt a paragraph: a bullet list, or an ordered list
    starting at 1, whose first item is not empty.
    """
    out: list[str] = []
    tight = True
    for block, lines, previous in _rendered(_item_blocks(item)):
        if out:
            interrupts = (
                previous is not None
                and previous.get("type") == "paragraph"
                and _interrupts_paragraph(block, lines)
            )
            if not interrupts:
                out.append("")
                tight = False
        out.extend(lines)
    return out, tight


def _interrupts_paragraph(block: JSON, lines: list[str]) -> bool:
    if block.get("type") == "bulletList":
        return lines[0] not in ("-", "*", "+")
    if block.get("type") == "orderedList":
        start = int((block.get("attrs") or {}).get("start", 1))
        return start == 1 and not re.fullmatch(r"1[.)]", lines[0])
    return False


def _item_blocks(item: JSON) -> list[JSON]:
    """An item's blocks without the empty paragraph Tiptap puts first in a bare item."""
    content = item.get("content") or []
    if content and content[0].get("type") == "paragraph" and not content[0].get("content"):
        return content[1:]
    return content
