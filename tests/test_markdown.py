"""meshdoc.markdown: a corpus of CommonMark-style examples round-trips, and what it builds.

Round trip: Markdown → document → Markdown → document gives the same document
(``$id``s aside) and the second Markdown is the first one again. The corpus
covers every construct of the rich-text schema; ``CANONICAL`` examples are
already in the writer's own style and must come back byte for byte.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc, XmlFragment, XmlText

import meshdoc
from meshdoc import (
    ChildProperty,
    ElementType,
    MeshDocument,
    MeshSchema,
    NodeNotFoundError,
    SchemaError,
    StructureError,
)
from meshdoc.markdown import (
    RICH_TEXT_SCHEMA,
    from_markdown,
    insert_markdown,
    markdown_to_json,
    markdown_to_prosemirror,
    prosemirror_to_markdown,
    to_markdown,
    to_prosemirror,
)

NODE_DIR = Path(__file__).resolve().parent / "node"

#: Examples written as the serializer writes them: Markdown → doc → Markdown is the identity.
CANONICAL: dict[str, str] = {
    "paragraphs": "Hello world.\n\nA second paragraph.\n",
    "headings": "# One\n\n## Two\n\n### Three\n\n#### Four\n\n##### Five\n\n###### Six\n",
    "marks": "Some *italic*, **bold**, ~~struck~~ and `code` text.\n",
    "mixed marks": "***both*** **bold *and italic* here** *it **nested** it*\n",
    "marks in a link": "[**bold** link *it*](https://example.com) after\n",
    "link with title": '[a link](https://example.com "The title") and [another](/path)\n',
    "link with spaces": "[space](<https://example.com/a b>)\n",
    "link with parens": "[p](<https://en.wikipedia.org/wiki/A_(b)>)\n",
    "bullet list": "- one\n- two\n- three\n",
    "nested lists": "- a\n  - b\n    - c\n  - d\n- e\n  1. f\n  2. g\n",
    "ordered start": "3. three\n4. four\n5. five\n",
    "ordered zero": "0. zero\n1. one\n",
    "loose list": "- first paragraph\n\n  second paragraph\n\n- next\n",
    "adjacent lists": "- a\n- b\n\n* c\n\n- d\n\n1. x\n\n1) y\n",
    "code fence language": "```python\ndef f():\n    return 1\n```\n",
    "code fence plain": "```\nplain\n\n  indented\n```\n",
    "code fence with fences": "````md\n```js\nx\n```\n````\n",
    "empty code": "```\n```\n",
    "blockquote": "> quoted\n>\n> two\n",
    "blockquote with list": "> - a\n> - b\n>\n> 1. c\n",
    "nested blockquote": "> > deep\n>\n> shallow\n",
    "list with blockquote and code": "- > q\n\n  ```sh\n  ls\n  ```\n",
    "horizontal rule": "above\n\n---\n\nbelow\n",
    "hard breaks": "line one\\\nline two\\\n**bold** three\n",
    "setext heading with break": "Title\\\nsecond line\n===\n",
    "escaping": "\\*not em\\* \\_not\\_ \\`not code\\` \\[not link\\] \\~\\~no\\~\\~ a\\\\b\n",
    "line starts": "\\# not a heading\n\n\\- not a list\n\n1\\. not ordered\n\n\\> not quoted\n",
    "entities kept": "\\&amp; stays literal, & alone too; snake_case_name\n",
    "angle brackets": "a \\<b> c < d\n",
    "edge whitespace": "&#32;leading and trailing&#32;\n",
    "punctuation around bold": 'say &#97;**"quoted"** &#32;\n',
    "empty list item": "-\n- b\n",
    "item starting with a list": "- - inner\n- outer\n",
    "unicode": "Ünïcödé — 日本語 😀 **émphase**\n",
    "heading marks": "## A *styled* `heading`\n",
}

#: CommonMark spellings the writer normalises (another marker, setext, indented code…).
VARIANTS: dict[str, str] = {
    "star bullets": "* a\n* b\n",
    "plus bullets": "+ a\n+ b\n",
    "underscore emphasis": "_it_ and __bold__\n",
    "setext": "Title\n=====\n\nSub\n---\n",
    "indented code": "    indented code\n    more\n",
    "tilde fence": "~~~ruby\nputs 1\n~~~\n",
    "soft breaks": "one\ntwo\nthree\n",
    "two-space hard break": "one  \ntwo\n",
    "closing hashes": "# Title ##\n",
    "star rule": "***\n",
    "underscore rule": "___\n",
    "autolink": "<https://example.com>\n",
    "email autolink": "<me@example.com>\n",
    "reference link": "[ref][r]\n\n[r]: https://example.com 'Ref title'\n",
    "image as alt text": "![alt text](img.png)\n",
    "raw html stays text": "<b>not bold</b>\n",
    "entities": "&copy; &#65; &#x42;\n",
    "lazy blockquote": "> a\nb\n",
    "ordered paren": "1) a\n2) b\n",
    "loose nested": "1. a\n\n   - b\n\n2. c\n",
    "empty blockquote": ">\n",
    "empty": "",
    "only blank lines": "\n\n\n",
    "tabs": "-\tone\n-\ttwo\n",
    "backslash break": "a\\\nb\n",
    "code in a link or bold": "[`code` link](https://example.com/a) **`b`**\n",
}

CORPUS = {**CANONICAL, **VARIANTS}


def without_ids(value: Any) -> Any:
    """The document JSON with every `$id` removed."""
    if isinstance(value, dict):
        return {k: without_ids(v) for k, v in value.items() if k != "$id"}
    if isinstance(value, list):
        return [without_ids(v) for v in value]
    return value


@pytest.mark.parametrize("markdown", CORPUS.values(), ids=CORPUS.keys())
def test_corpus_round_trip(markdown: str) -> None:
    first = from_markdown(markdown)
    written = to_markdown(first)
    second = from_markdown(written)
    assert without_ids(second.to_json()) == without_ids(first.to_json())
    assert to_markdown(second) == written
    assert first.validate() == []
    assert to_prosemirror(first) == markdown_to_prosemirror(markdown)


@pytest.mark.parametrize("markdown", CANONICAL.values(), ids=CANONICAL.keys())
def test_canonical_markdown_is_written_back_unchanged(markdown: str) -> None:
    assert to_markdown(from_markdown(markdown)) == markdown


def blocks(markdown: str) -> list[dict[str, Any]]:
    return markdown_to_prosemirror(markdown).get("content", [])


def text(value: str, *marks: Any) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "text", "text": value}
    if marks:
        node["marks"] = [{"type": m} if isinstance(m, str) else m for m in marks]
    return node


def para(*content: dict[str, Any]) -> dict[str, Any]:
    return {"type": "paragraph", "content": list(content)}


def test_every_construct_reads_as_tiptap_nodes() -> None:
    link = {"type": "link", "attrs": {"href": "https://x.org", "title": "T"}}
    assert blocks('## H\n\n*i* **b** ~~s~~ `c` [l](https://x.org "T")\\\nx\n') == [
        {"type": "heading", "attrs": {"level": 2}, "content": [text("H")]},
        para(
            text("i", "italic"),
            text(" "),
            text("b", "bold"),
            text(" "),
            text("s", "strike"),
            text(" "),
            text("c", "code"),
            text(" "),
            text("l", link),
            {"type": "hardBreak"},
            text("x"),
        ),
    ]
    assert blocks("5. a\n   - b\n") == [
        {
            "type": "orderedList",
            "attrs": {"start": 5},
            "content": [
                {
                    "type": "listItem",
                    "content": [
                        para(text("a")),
                        {
                            "type": "bulletList",
                            "content": [{"type": "listItem", "content": [para(text("b"))]}],
                        },
                    ],
                }
            ],
        }
    ]
    assert blocks("> ```js\n> x\n> ```\n\n---\n") == [
        {
            "type": "blockquote",
            "content": [{"type": "codeBlock", "attrs": {"language": "js"}, "content": [text("x")]}],
        },
        {"type": "horizontalRule"},
    ]


def test_document_holds_the_elements_y_prosemirror_writes() -> None:
    doc = from_markdown("# T\n\n**b** [l](u)\\\nx\n\n1. i\n")
    heading, paragraph, ordered = doc.root.get_child_elements()
    assert (heading.tag_name, heading.get_attribute("level")) == ("heading", 1)
    assert ordered.get_attribute("start") == 1
    assert all(e.id for e in (heading, paragraph, ordered))
    kinds = [type(c).__name__ for c in paragraph.get_children()]
    assert kinds == ["TextNode", "Element", "TextNode"]
    first = paragraph.get_children()[0]
    assert first.to_delta() == [
        {"insert": "b", "attributes": {"bold": {}}},
        {"insert": " "},
        {"insert": "l", "attributes": {"link": {"href": "u"}}},
    ]
    assert paragraph.get_children()[1].tag_name == "hardBreak"


def test_rich_text_schema_is_exported() -> None:
    assert meshdoc.RICH_TEXT_SCHEMA is RICH_TEXT_SCHEMA
    tags = {e.tag_name for e in RICH_TEXT_SCHEMA.elements}
    assert tags == {
        "doc",
        "paragraph",
        "heading",
        "bulletList",
        "orderedList",
        "listItem",
        "blockquote",
        "codeBlock",
        "horizontalRule",
        "hardBreak",
    }
    assert {m.name for m in RICH_TEXT_SCHEMA.marks} >= {"bold", "italic", "strike", "code", "link"}
    assert from_markdown("x").schema is RICH_TEXT_SCHEMA


def test_one_transaction_per_conversion() -> None:
    doc = MeshDocument(RICH_TEXT_SCHEMA)
    seen: list[Any] = []
    doc.observe(seen.append)
    from_markdown("# a\n\n- b\n- c\n\n> d\n", document=doc)
    assert len(seen) == 1
    assert to_markdown(doc) == "# a\n\n- b\n- c\n\n> d\n"


def test_fills_an_existing_document_and_element() -> None:
    doc = from_markdown("first\n", fragment="prosemirror")
    assert doc.fragment_name == "prosemirror"
    from_markdown("second\n", document=doc)
    quote = insert_markdown(doc.root, "> q\n", index=0)[0]
    insert_markdown(quote, "- in\n")
    assert to_markdown(doc) == "> q\n>\n> - in\n\nfirst\n\nsecond\n"
    assert to_markdown(quote) == "> q\n>\n> - in\n"
    item = quote.get_child_elements()[1].get_child_elements()[0]
    assert to_markdown(item) == "in\n"


def test_element_json_appends_like_the_document_tools_do() -> None:
    blocks = markdown_to_json("# T\n\n- a **b**\n", RICH_TEXT_SCHEMA)
    assert [next(iter(block)) for block in blocks] == ["heading", "bulletList"]
    doc = MeshDocument(RICH_TEXT_SCHEMA)
    for block in blocks:
        doc.root.append_json(block)
    assert to_markdown(doc) == "# T\n\n- a **b**\n"
    custom = MeshSchema(
        "doc",
        elements=[
            ElementType("doc", properties=[ChildProperty("blocks", ["paragraph"])]),
            ElementType(
                "paragraph", properties=[ChildProperty("inline", ["hardBreak"])], rich_text=True
            ),
            ElementType("hardBreak"),
        ],
    )
    assert markdown_to_json("x\\\ny", custom) == [
        {
            "paragraph": {
                "inline": [
                    {"$text": [{"insert": "x", "marks": []}]},
                    {"hardBreak": {}},
                    {"$text": [{"insert": "y", "marks": []}]},
                ]
            }
        }
    ]


def test_writes_carry_the_given_origin_so_undo_is_per_author() -> None:
    doc = from_markdown("mine\n")
    agent_undo = doc.undo_manager("agent")
    insert_markdown(doc.root, "the agent's\n", origin="agent")
    from_markdown("more of the agent's\n", document=doc, origin="agent")
    assert to_markdown(doc) == "mine\n\nthe agent's\n\nmore of the agent's\n"
    while agent_undo.can_undo():
        agent_undo.undo()
    assert to_markdown(doc) == "mine\n"


def test_deep_nesting_keeps_its_text() -> None:
    quotes = "> " * 40 + "deep\n"
    lists = "".join("  " * level + "- x\n" for level in range(30))
    for markdown in (quotes, lists):
        assert to_markdown(from_markdown(markdown)) == markdown


def test_refused_markdown_changes_nothing() -> None:
    doc = from_markdown("para\n")
    before = doc.get_update()
    paragraph = doc.root.get_child_elements()[0]
    with pytest.raises(SchemaError) as info:
        insert_markdown(paragraph, "# heading inside a paragraph\n")
    assert info.value.rule == "child-not-allowed"
    with pytest.raises(StructureError):
        insert_markdown(doc.root, "x", index=5)
    quote = insert_markdown(doc.root, "> q\n")[0]
    quote.delete()
    before = doc.get_update()
    with pytest.raises(NodeNotFoundError):
        insert_markdown(quote, "x")
    with pytest.raises(TypeError):
        from_markdown(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        from_markdown("x", document="not a document")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        to_markdown("not a document")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        prosemirror_to_markdown({"content": []})
    assert doc.get_update() == before


def test_a_schema_without_code_blocks_refuses_the_whole_text() -> None:
    schema = MeshSchema(
        "doc",
        elements=[
            ElementType("doc", properties=[ChildProperty("children", ["paragraph"])]),
            ElementType(
                "paragraph", properties=[ChildProperty("children", ["hardBreak"])], rich_text=True
            ),
            ElementType("hardBreak"),
        ],
    )
    doc = MeshDocument(schema)
    from_markdown("kept\n", document=doc)
    before = doc.get_update()
    with pytest.raises(SchemaError) as info:
        from_markdown("ok\n\n```\ncode\n```\n", document=doc)
    assert info.value.rule == "unknown-tag"
    assert doc.get_update() == before
    assert to_markdown(doc) == "kept\n"


def test_reads_what_an_editor_wrote() -> None:
    """Foreign shapes: hashed mark names, null link attributes, underline, unknown tags."""
    ydoc = Doc()
    fragment = ydoc.get("default", type=XmlFragment)
    from pycrdt import XmlElement

    paragraph = fragment.children.append(XmlElement("paragraph"))
    run = paragraph.children.append(XmlText())
    run.insert(0, "u", {"underline": {}})
    run.insert(1, "l", {"link--aGVsbG8h": {"href": "h", "target": None, "class": None}})
    figure = fragment.children.append(XmlElement("figure"))
    caption = figure.children.append(XmlElement("caption"))
    caption.children.append(XmlText()).insert(0, "cap")
    doc = MeshDocument(RICH_TEXT_SCHEMA, doc=ydoc)
    assert to_markdown(doc) == "u[l](h)\n\ncap\n"


# ---------------------------------------------------------------- the CommonMark spec

SPEC = NODE_DIR / "node_modules" / "commonmark-spec" / "spec.txt"


def spec_examples() -> list[str]:
    """The Markdown of every example in the CommonMark spec (npm ``commonmark-spec``)."""
    assert SPEC.exists(), "run `npm ci` in tests/node for the CommonMark spec examples"
    fence = "`" * 32
    pattern = rf"^{fence} example\n(.*?)^\.\n.*?^{fence}$"
    found = re.findall(pattern, SPEC.read_text(encoding="utf-8"), re.S | re.M)
    return [markdown.replace("\u2192", "\t") for markdown in found]  # the spec shows tabs as →


def test_commonmark_spec_examples_round_trip() -> None:
    examples = spec_examples()
    assert len(examples) > 600
    for number, markdown in enumerate(examples, start=1):
        first = from_markdown(markdown)
        written = to_markdown(first)
        second = from_markdown(written)
        where = f"spec example {number}: {markdown!r} -> {written!r}"
        assert without_ids(second.to_json()) == without_ids(first.to_json()), where
        assert to_markdown(second) == written, where


# ---------------------------------------------------------------- Node: y-prosemirror + Tiptap


def _node_cases() -> list[dict[str, Any]]:
    cases = []
    spec = {f"spec example {i}": md for i, md in enumerate(spec_examples(), start=1)}
    for name, markdown in {**CORPUS, **spec}.items():
        doc = from_markdown(markdown)
        cases.append(
            {
                "name": name,
                "fragment": "default",
                "update": base64.b64encode(doc.get_update()).decode(),
                "expected": markdown_to_prosemirror(markdown),
            }
        )
    return cases


@pytest.mark.interop
def test_tiptap_reads_the_documents_as_y_prosemirror_writes_them(tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node is not None, "Node.js is required for the interop tests"
    cases = _node_cases()
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(cases))
    run = subprocess.run(
        [node, "markdown_check.mjs", str(path)],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    results = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r["name"] for r in results] == [c["name"] for c in cases]
    for result, case in zip(results, cases, strict=True):
        assert result["ours"] == result["theirs"], result["name"]
        assert result["structureEqual"], result["name"]
        assert result["pmError"] is None, (result["name"], result["pmError"])
        assert result["pmEqual"], result["name"]
        # and the reverse: the document Tiptap would have made reads back as the same Markdown
        theirs = MeshDocument.from_update(
            RICH_TEXT_SCHEMA, base64.b64decode(result["tiptapUpdate"])
        )
        ours = MeshDocument.from_update(RICH_TEXT_SCHEMA, base64.b64decode(case["update"]))
        assert to_markdown(theirs) == to_markdown(ours), result["name"]
        assert to_prosemirror(theirs) == case["expected"], result["name"]
