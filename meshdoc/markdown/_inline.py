"""Inline content (text with marks, hard breaks) → Markdown that parses back the same.

Markdown emphasis is decided by the characters around each delimiter
("left-flanking", "right-flanking" in CommonMark), so writing ``**`` around bold
text is not enough: ``a**"b"**`` is not bold, ``** b**`` is not bold, and a
space at the end of a line disappears. Rather than reject such text, the
serializer keeps every character and makes each delimiter unambiguous by
writing the neighbouring character as a numeric character reference
(``&#32;``): a reference starts with ``&`` and ends with ``;``, both
punctuation, which is what the flanking rules want, and it parses back to the
very same character. Ordinary prose never needs this; only the edges do.

Marks are written as a stack: a mark that goes on over the next text stays
open, and the marks that start together are opened longest-lived first, so
``**bold *both* bold**`` comes out as a person would write it.

A line holding emphasis is parsed back before it is accepted; in the rare
case where Markdown would pair the delimiters differently (runs that can both
open and close, as in ``***a**b**c***``), it is written again more
defensively: punctuation outside every delimiter, then ``_`` for italics.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from markdown_it.common.utils import isMdAsciiPunct, isPunctChar, isWhiteSpace

from ._parse import parse_markdown

__all__ = ["serialize_inline"]

JSON = dict[str, Any]

_DELIMITERS = {"bold": "**", "italic": "*", "strike": "~~"}
#: Opening order for marks that start and end together (outermost first).
_RANK = {"link": 0, "strike": 1, "bold": 2, "italic": 3}
_ALWAYS_ESCAPED = set("\\`*[]")
#: Every character `_escape_text` may have to spell differently.
_MAYBE_SYNTAX = re.compile(r"[\\`*\[\]~_<&\n\r]")
_ENTITY_LIKE = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]*);")
_LINE_START_SINGLE = set("#>-+=")
_ORDERED_MARKER = re.compile(r"[0-9]{1,9}[.)]")


def _reference(char: str) -> str:
    return f"&#{ord(char)};"


def _is_space(char: str | None) -> bool:
    return char is None or isWhiteSpace(ord(char)) or char.isspace()


def _is_punct(char: str | None) -> bool:
    return char is not None and (isMdAsciiPunct(ord(char)) or isPunctChar(char))


@dataclass
class _Text:
    """Plain text kept as one raw spelling per source character, so edges can be re-spelled."""

    chars: list[str]
    raw: list[str] = field(default_factory=list)

    def first(self) -> str | None:
        return self.raw[0][0] if self.raw else None

    def last(self) -> str | None:
        return self.raw[-1][-1] if self.raw else None

    def encode(self, index: int) -> bool:
        """Spell character ``index`` as a numeric reference; False if it already is one."""
        reference = _reference(self.chars[index])
        if self.raw[index] == reference:
            return False
        self.raw[index] = reference
        return True

    def render(self) -> str:
        return "".join(self.raw)


@dataclass
class _Delim:
    """An emphasis delimiter (``**``, ``*``, ``~~``), opening or closing."""

    text: str
    opening: bool
    span: int = 0  #: pairs an opening delimiter with its closing one

    def render(self) -> str:
        return self.text


@dataclass
class _Atom:
    """Syntax whose edges are fixed punctuation: link brackets, code spans."""

    text: str

    def render(self) -> str:
        return self.text


_Piece = _Text | _Delim | _Atom


def _escape_text(text: str) -> _Text:
    """Backslash-escape what Markdown would read as syntax anywhere inside a line.

    Only the characters that can be syntax are looked at (one regex scan finds them): a
    paragraph of prose is copied, not walked character by character.
    """
    raw = list(text)
    for found in _MAYBE_SYNTAX.finditer(text):
        i = found.start()
        char = text[i]
        prev = text[i - 1] if i else ""
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if char in _ALWAYS_ESCAPED:
            raw[i] = "\\" + char
        elif char == "~":
            if not prev or not nxt or "~" in (prev, nxt):
                raw[i] = "\\~"  # one tilde alone is text; two make a strikethrough
        elif char == "_":
            if not (prev.isalnum() and nxt.isalnum()):
                raw[i] = "\\_"
        elif char == "<":
            if not (nxt and nxt.isspace()):
                raw[i] = "\\<"
        elif char == "&":
            if _ENTITY_LIKE.match(text, i):
                raw[i] = "\\&"
        else:  # a line break
            raw[i] = _reference(char)
    return _Text(list(text), raw)


def _code_span(code: str) -> str:
    """A code span whose fence is a backtick run absent from ``code``."""
    runs = {len(run) for run in re.findall(r"`+", code)}
    fence = 1
    while fence in runs:
        fence += 1
    pad = code.startswith("`") or code.endswith("`")
    pad = pad or (code.startswith(" ") and code.endswith(" ") and code.strip(" ") != "")
    inner = f" {code} " if pad else code
    return "`" * fence + inner + "`" * fence


def _escape_attribute(value: str) -> str:
    """Backslashes and entity look-alikes escaped, line breaks as references (one line)."""
    escaped = _ENTITY_LIKE.sub(lambda m: "\\" + m.group(0), value.replace("\\", "\\\\"))
    return escaped.replace("\n", "&#10;").replace("\r", "&#13;")


def _destination(href: str) -> str:
    escaped = _escape_attribute(href)
    if not href or re.search(r"[\s<>()\x00-\x1f]", href):
        return "<" + escaped.replace("<", "\\<").replace(">", "\\>") + ">"
    return escaped


def _link_close(attrs: dict[str, Any]) -> str:
    out = "](" + _destination(str(attrs.get("href") or ""))
    title = attrs.get("title")
    if title:
        title = _escape_attribute(str(title)).replace('"', '\\"')
        out += f' "{title}"'
    return out + ")"


def _marks_of(node: JSON) -> dict[str, dict[str, Any]]:
    return {mark["type"]: dict(mark.get("attrs") or {}) for mark in node.get("marks") or []}


def _line_pieces(runs: list[JSON]) -> list[_Piece]:
    """Pieces for one line (text nodes between hard breaks), marks as a stack."""
    pieces: list[_Piece] = []
    stack: list[tuple[str, dict[str, Any]]] = []
    marks = [_marks_of(run) for run in runs]

    spans: list[int] = []

    def close(entry: tuple[str, dict[str, Any]]) -> None:
        name, attrs = entry
        span = spans.pop()
        if name == "link":
            pieces.append(_Atom(_link_close(attrs)))
        else:
            pieces.append(_Delim(_DELIMITERS[name], opening=False, span=span))

    for i, run in enumerate(runs):
        want = {name: attrs for name, attrs in marks[i].items() if name in _RANK}
        keep = 0
        while keep < len(stack) and want.get(stack[keep][0]) == stack[keep][1]:
            keep += 1
        for entry in reversed(stack[keep:]):
            close(entry)
        del stack[keep:]
        kept = {name for name, _ in stack}

        def lifetime(name: str, i: int = i) -> int:
            span = 1
            while i + span < len(runs) and marks[i + span].get(name) == marks[i].get(name):
                span += 1
            return span

        for name in sorted(
            (n for n in want if n not in kept), key=lambda n: (-lifetime(n), _RANK[n])
        ):
            stack.append((name, want[name]))
            spans.append(len(pieces))
            if name == "link":
                pieces.append(_Atom("["))
            else:
                pieces.append(_Delim(_DELIMITERS[name], opening=True, span=len(pieces)))
        if "code" in marks[i]:
            pieces.append(_Atom(_code_span(run["text"])))
        else:
            pieces.append(_escape_text(run["text"]))
    for entry in reversed(stack):
        close(entry)
    for before, after in pairwise(pieces):  # "!" then "[" would open an image
        bang = isinstance(before, _Text) and before.raw and before.raw[-1] == "!"
        if bang and after.render().startswith("["):
            before.raw[-1] = "\\!"  # type: ignore[union-attr]
    return pieces


def _use_underscores(pieces: list[_Piece]) -> None:
    """Write an italic span as ``_x_`` when a ``*`` would merge with a neighbouring ``**``.

    ``**a***b*`` (bold closes, italic opens) is one run of three asterisks that
    Markdown splits its own way; ``**a**_b_`` is unambiguous.
    """
    clashing: set[int] = set()
    for i, piece in enumerate(pieces):
        if not (isinstance(piece, _Delim) and piece.text == "*"):
            continue
        for j in (i - 1, i + 1):
            other = pieces[j] if 0 <= j < len(pieces) else None
            if (
                isinstance(other, _Delim)
                and other.text[0] == "*"
                and other.opening != piece.opening
            ):
                clashing.add(piece.span)
    for piece in pieces:
        if isinstance(piece, _Delim) and piece.span in clashing:
            piece.text = "_"


def _edge(pieces: list[_Piece], index: int, last: bool) -> str | None:
    if index < 0 or index >= len(pieces):
        return None
    piece = pieces[index]
    if isinstance(piece, _Text):
        return piece.last() if last else piece.first()
    text = piece.render()
    return text[-1] if last else text[0]


def _fix_flanking(pieces: list[_Piece], *, strict: bool) -> None:
    """Re-spell characters next to delimiters until every delimiter flanks the right way.

    ``strict`` also keeps letters off the outer side of every delimiter, so an
    opening one cannot be read as closing (``**a**b**c**`` inside ``*…*``).
    """
    changed = True
    while changed:
        changed = False
        for i, piece in enumerate(pieces):
            if isinstance(piece, _Delim):
                changed |= _fix_delimiter(pieces, i, piece, strict=strict)


def _encode_edge(piece: _Piece | None, *, last: bool) -> bool:
    if not isinstance(piece, _Text) or not piece.raw:
        return False
    return piece.encode(len(piece.raw) - 1 if last else 0)


def _fix_delimiter(pieces: list[_Piece], i: int, delim: _Delim, *, strict: bool) -> bool:
    before = pieces[i - 1] if i else None
    after = pieces[i + 1] if i + 1 < len(pieces) else None
    prev, nxt = _edge(pieces, i - 1, last=True), _edge(pieces, i + 1, last=False)
    # inner is the marked text's side, outer the surrounding text's side
    inner, inner_char, outer, outer_char = (
        (after, nxt, before, prev) if delim.opening else (before, prev, after, nxt)
    )
    inner_last, outer_last = not delim.opening, delim.opening
    outer_open = _is_space(outer_char) or _is_punct(outer_char)
    if (delim.text == "_" or strict) and not outer_open:
        return _encode_edge(outer, last=outer_last)
    if _is_space(inner_char):
        return _encode_edge(inner, last=inner_last)
    if _is_punct(inner_char) and not outer_open:
        return _encode_edge(outer, last=outer_last)
    return False


def _fix_line_edges(pieces: list[_Piece], *, heading: bool) -> None:
    """Keep edge whitespace and stop a line's first characters from reading as a block marker."""
    if pieces and isinstance(pieces[0], _Text) and pieces[0].raw:
        first = pieces[0]
        if first.raw[0] in (" ", "\t") or first.chars[0].isspace():
            first.encode(0)
        elif first.raw[0] in _LINE_START_SINGLE:
            first.raw[0] = "\\" + first.raw[0]
        else:
            head = "".join(first.raw[:11])
            marker = _ORDERED_MARKER.match(head)
            if marker:
                end = marker.end() - 1
                first.raw[end] = "\\" + first.raw[end]
    if pieces and isinstance(pieces[-1], _Text) and pieces[-1].raw:
        tail = pieces[-1]
        if tail.raw[-1] in (" ", "\t") or tail.chars[-1].isspace():
            tail.encode(len(tail.raw) - 1)
        elif heading and tail.raw[-1] == "#":
            tail.raw[-1] = "\\#"


def serialize_inline(content: list[JSON], *, heading: bool = False) -> str:
    """Markdown for a block's inline content; hard breaks become ``\\`` + newline.

    Args:
        content: ProseMirror JSON inline nodes (``text`` with ``marks``, ``hardBreak``).
        heading: the line ends an ATX heading, so a trailing ``#`` must be escaped.

    Returns:
        The Markdown, one line per hard break plus one.
    """
    lines: list[list[JSON]] = [[]]
    for node in content:
        if node.get("type") == "hardBreak":
            lines.append([])
        elif node.get("type") == "text" and node.get("text"):
            lines[-1].append(node)
    while len(lines) > 1 and not lines[-1]:
        lines.pop()  # a hard break that ends a block has no Markdown spelling
    return "\\\n".join(_line(runs, heading=heading) for runs in lines)


def _line(runs: list[JSON], *, heading: bool) -> str:
    """One line, checked by parsing it back when it holds emphasis delimiters.

    The first spelling is the natural one; if Markdown would read it otherwise
    (delimiter runs that can both open and close), every delimiter gets
    punctuation on its outer side, then every italic becomes ``_``.
    """
    text = ""
    for strict, underscores in ((False, False), (True, False), (True, True)):
        pieces = _line_pieces(runs)
        if underscores:
            for piece in pieces:
                if isinstance(piece, _Delim) and piece.text == "*":
                    piece.text = "_"
        else:
            _use_underscores(pieces)
        _fix_flanking(pieces, strict=strict)
        _fix_line_edges(pieces, heading=heading)
        text = "".join(piece.render() for piece in pieces)
        if not any(isinstance(piece, _Delim) for piece in pieces) or _reads_back(text, runs):
            break
    return text


def _canonical(runs: list[JSON]) -> list[tuple[str, tuple[tuple[str, Any, Any], ...]]]:
    out: list[tuple[str, tuple[tuple[str, Any, Any], ...]]] = []
    for run in runs:
        marks = tuple(
            sorted(
                (name, attrs.get("href") or "", attrs.get("title") or None)
                if name == "link"
                else (name, None, None)
                for name, attrs in _marks_of(run).items()
                if name in _RANK or name == "code"
            )
        )
        if out and out[-1][1] == marks:
            out[-1] = (out[-1][0] + run["text"], marks)
        else:
            out.append((run["text"], marks))
    return out


def _reads_back(text: str, runs: list[JSON]) -> bool:
    blocks = parse_markdown(text)
    if len(blocks) != 1 or blocks[0]["type"] != "paragraph":
        return False
    return _canonical(blocks[0].get("content") or []) == _canonical(runs)
