"""The built-in rich-text schema: Tiptap StarterKit's nodes and marks, as y-prosemirror stores them.

A document in this schema opens unchanged in a Tiptap editor bound to the
same `XmlFragment` (``Collaboration.configure({document, field: "default"})``)
and the reverse: node names are ProseMirror node type names (``bulletList``,
not ``ul``), node attributes are element attributes (``heading`` ``level``,
``orderedList`` ``start``, ``codeBlock`` ``language``), and marks are Yjs text
attributes (``{"bold": {}}``, ``{"link": {"href": ...}}``).

Tiptap's content rules that the schema language cannot state are kept by the
Markdown reader and writer instead: a ``listItem`` starts with a
``paragraph`` (``paragraph block*``); a ``codeBlock`` holds unmarked text.
``underline`` is declared so that documents edited in Tiptap stay valid,
though Markdown has no spelling for it.
"""

from __future__ import annotations

from ._schema import MeshSchema
from ._types import ChildProperty, ElementType, MarkType, ValueProperty

__all__ = ["BLOCK_TAGS", "RICH_TEXT_SCHEMA"]

#: Block nodes (Tiptap's ``block`` group), allowed in ``doc``, ``blockquote`` and ``listItem``.
BLOCK_TAGS: list[str] = [
    "paragraph",
    "heading",
    "bulletList",
    "orderedList",
    "blockquote",
    "codeBlock",
    "horizontalRule",
]


def _blocks(description: str) -> ChildProperty:
    return ChildProperty("children", list(BLOCK_TAGS), description=description)


def _inline(description: str) -> ChildProperty:
    return ChildProperty("children", ["hardBreak"], description=description)


RICH_TEXT_SCHEMA = MeshSchema(
    "doc",
    elements=[
        ElementType(
            "doc",
            properties=[_blocks("The document's blocks, in reading order.")],
            description="A rich-text document (Tiptap StarterKit, CommonMark).",
        ),
        ElementType(
            "paragraph",
            properties=[_inline("Text runs and line breaks.")],
            description="A paragraph of text.",
            rich_text=True,
        ),
        ElementType(
            "heading",
            properties=[
                ValueProperty(
                    "level",
                    type="number",
                    enum=[1, 2, 3, 4, 5, 6],
                    required=True,
                    description="1 for the title, 2 for a section, down to 6.",
                ),
                _inline("Text runs and line breaks."),
            ],
            description="A heading.",
            rich_text=True,
        ),
        ElementType(
            "bulletList",
            properties=[ChildProperty("children", ["listItem"], description="The items.")],
            description="A list with bullets.",
        ),
        ElementType(
            "orderedList",
            properties=[
                ValueProperty("start", type="number", description="Number of the first item."),
                ValueProperty("type", description="Numbering style (HTML ol type), e.g. 'a'."),
                ChildProperty("children", ["listItem"], description="The items."),
            ],
            description="A numbered list.",
        ),
        ElementType(
            "listItem",
            properties=[_blocks("A paragraph first, then any blocks (nested lists…).")],
            description="One list item.",
        ),
        ElementType(
            "blockquote",
            properties=[_blocks("The quoted blocks.")],
            description="A quotation.",
        ),
        ElementType(
            "codeBlock",
            properties=[
                ValueProperty("language", description="Language of the code, e.g. 'python'."),
            ],
            description="Preformatted code; its text carries no marks.",
            rich_text=True,
        ),
        ElementType("horizontalRule", description="A thematic break between sections."),
        ElementType("hardBreak", description="A line break inside a paragraph or heading."),
    ],
    marks=[
        MarkType("bold"),
        MarkType("italic"),
        MarkType("strike"),
        MarkType("code", description="Inline code."),
        MarkType("underline", description="Kept for Tiptap; Markdown has no underline."),
        MarkType(
            "link",
            [
                ValueProperty("href", required=True, description="The link target."),
                ValueProperty("title", description="Tooltip title."),
                ValueProperty("target"),
                ValueProperty("rel"),
                ValueProperty("class"),
            ],
            description="A hyperlink.",
        ),
    ],
)
