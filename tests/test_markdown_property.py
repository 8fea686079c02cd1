"""Property: any document in the rich-text schema survives document → Markdown → document.

Hypothesis builds random documents through the engine's element API (nested
lists and quotes, every mark combination Tiptap allows, text full of Markdown
syntax, edge whitespace, newlines, Unicode) and checks that writing them as
Markdown and reading that back gives the same document, `$id`s aside.

The generator leaves out only what Markdown cannot spell, as `meshdoc.markdown`
documents: empty paragraphs (but the first one of a list item), hard breaks
ending a block or inside headings of level 3-6, control characters, newlines
in inline code, and marks next to inline code (Tiptap's ``code`` excludes them).
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshdoc import Element, MeshDocument, TextNode
from meshdoc.markdown import (
    RICH_TEXT_SCHEMA,
    from_markdown,
    markdown_to_prosemirror,
    prosemirror_to_markdown,
    to_markdown,
    to_prosemirror,
)

JSON = dict[str, Any]

_SYNTAX = list(" \t\n\r*_~`[]()<>!#&;:\\-+=.|\"'1\u00a0\u3000")
_CHARS = st.characters(blacklist_categories=("Cs", "Cc"))
TEXT = st.text(_CHARS | st.sampled_from(_SYNTAX), min_size=1, max_size=10)
CODE_TEXT = st.text(_CHARS | st.sampled_from(list(" `\t*_\\")), min_size=1, max_size=8)
CODE_BLOCK = st.text(_CHARS | st.sampled_from(list("\n`~ \t#>-")), max_size=30)
HREFS = st.sampled_from(
    ["https://example.com", "https://e.org/a b", "/rel(1)", "", "a\\b", "mailto:q@w.e", "x&amp;y"]
)
TITLES = st.sampled_from([None, "Title", 'say "hi" \\ &amp;'])
LANGUAGES = st.sampled_from([None, "python", "c++", "a`b", "x\\y", "&lt;"])
MARK_ORDER = ("link", "bold", "code", "italic", "strike")


@st.composite
def text_nodes(draw: st.DrawFn) -> JSON:
    if draw(st.integers(0, 5)) == 0:
        return {"type": "text", "text": draw(CODE_TEXT), "marks": [{"type": "code"}]}
    marks: list[JSON] = []
    if draw(st.booleans()):
        attrs = {"href": draw(HREFS)}
        title = draw(TITLES)
        if title:
            attrs["title"] = title
        marks.append({"type": "link", "attrs": attrs})
    marks.extend({"type": name} for name in ("bold", "italic", "strike") if draw(st.booleans()))
    marks.sort(key=lambda mark: MARK_ORDER.index(mark["type"]))
    node: JSON = {"type": "text", "text": draw(TEXT)}
    if marks:
        node["marks"] = marks
    return node


def merged(nodes: list[JSON]) -> list[JSON]:
    """Neighbouring text nodes with the same marks are one node, as in ProseMirror."""
    out: list[JSON] = []
    for node in nodes:
        same = out and node["type"] == out[-1]["type"] == "text"
        if same and node.get("marks") == out[-1].get("marks"):
            out[-1] = {**out[-1], "text": out[-1]["text"] + node["text"]}
            continue
        out.append(node)
    while out and out[-1]["type"] == "hardBreak":
        out.pop()
    return out


def inline(breaks: bool, min_size: int = 0) -> st.SearchStrategy[list[JSON]]:
    item = text_nodes() | st.just({"type": "hardBreak"}) if breaks else text_nodes()
    firsts = st.lists(text_nodes(), min_size=min_size, max_size=min_size)
    return st.builds(
        lambda first, rest: merged([*first, *rest]), firsts, st.lists(item, max_size=5)
    )


def with_content(node: JSON, content: list[JSON]) -> JSON:
    return {**node, "content": content} if content else node


paragraphs = inline(True, 1).map(lambda c: with_content({"type": "paragraph"}, c))


@st.composite
def headings(draw: st.DrawFn) -> JSON:
    level = draw(st.integers(1, 6))
    content = draw(inline(breaks=level <= 2))
    return with_content({"type": "heading", "attrs": {"level": level}}, content)


@st.composite
def code_blocks(draw: st.DrawFn) -> JSON:
    node: JSON = {"type": "codeBlock"}
    language = draw(LANGUAGES)
    if language:
        node["attrs"] = {"language": language}
    code = draw(CODE_BLOCK)
    return with_content(node, [{"type": "text", "text": code}] if code else [])


def blocks(depth: int) -> st.SearchStrategy[JSON]:
    leaves = paragraphs | headings() | code_blocks() | st.just({"type": "horizontalRule"})
    if depth == 0:
        return leaves
    inner = blocks(depth - 1)

    @st.composite
    def items(draw: st.DrawFn) -> JSON:
        rest = draw(st.lists(inner, max_size=2))
        empty_first = draw(st.booleans()) and (not rest or rest[0]["type"] != "paragraph")
        first = {"type": "paragraph"} if empty_first else draw(paragraphs)
        return {"type": "listItem", "content": [first, *rest]}

    bullet = st.lists(items(), min_size=1, max_size=3).map(
        lambda i: {"type": "bulletList", "content": i}
    )
    ordered = st.builds(
        lambda start, i: {"type": "orderedList", "attrs": {"start": start}, "content": i},
        st.integers(0, 999),
        st.lists(items(), min_size=1, max_size=3),
    )
    quote = st.lists(inner, min_size=1, max_size=3).map(
        lambda c: {"type": "blockquote", "content": c}
    )
    return leaves | bullet | ordered | quote


documents = st.lists(blocks(2), min_size=1, max_size=5).map(lambda c: {"type": "doc", "content": c})


def build(parent: Element, node: JSON) -> None:
    """Write a ProseMirror JSON node through the element API (as an agent would)."""
    element = parent.append_child(node["type"], dict(node.get("attrs") or {}))
    for child in node.get("content") or []:
        if child["type"] == "text":
            marks = {m["type"]: dict(m.get("attrs") or {}) for m in child.get("marks") or []}
            last = element.get_children()[-1] if element.get_children() else None
            if isinstance(last, TextNode):
                last.insert(len(last), child["text"], marks)
            else:
                element.append_text(child["text"], marks)
        elif child["type"] == "hardBreak":
            element.append_child("hardBreak")
        else:
            build(element, child)


def without_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_ids(v) for k, v in value.items() if k != "$id"}
    if isinstance(value, list):
        return [without_ids(v) for v in value]
    return value


@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
@given(documents)
def test_document_to_markdown_to_document_is_lossless(tree: JSON) -> None:
    doc = MeshDocument(RICH_TEXT_SCHEMA)
    with doc.transaction():
        for block in tree["content"]:
            build(doc.root, block)
    assert doc.validate() == []
    assert to_prosemirror(doc) == tree
    markdown = to_markdown(doc)
    again = from_markdown(markdown)
    assert without_ids(again.to_json()) == without_ids(doc.to_json()), markdown
    assert to_markdown(again) == markdown


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(documents)
def test_prosemirror_json_to_markdown_and_back_is_lossless(tree: JSON) -> None:
    markdown = prosemirror_to_markdown(tree)
    assert markdown_to_prosemirror(markdown) == tree, markdown


MARKDOWN_PIECES = st.sampled_from(
    [
        *"ab1 \n\t*_~`[]()<>!#&;:\\-+=.|\"'",
        *("- ", "1. ", "2) ", "> ", "# ", "---", "```", "    ", "**", "~~", "\n\n"),
        *("&amp;", "&#32;", "[a](b)", "<http://x>", "é", "\\\n", "  \n"),
    ]
)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(MARKDOWN_PIECES, max_size=40).map("".join))
def test_any_markdown_reaches_a_fixed_point_in_one_pass(markdown: str) -> None:
    tree = markdown_to_prosemirror(markdown)
    written = prosemirror_to_markdown(tree)
    assert markdown_to_prosemirror(written) == tree, written
    assert prosemirror_to_markdown(markdown_to_prosemirror(written)) == written
