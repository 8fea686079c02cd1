"""Schemas shared by the meshdoc engine tests."""

from __future__ import annotations

from meshdoc import ChildProperty, ElementType, MeshSchema, ValueProperty


def article_schema() -> MeshSchema:
    """A small editor-like schema: headings, paragraphs with hard breaks, ordered sections."""
    return MeshSchema(
        "doc",
        elements=[
            ElementType(
                "doc",
                properties=[
                    ValueProperty("title", description="Document title"),
                    ChildProperty("children", ["heading", "paragraph", "section"]),
                ],
            ),
            ElementType(
                "heading",
                properties=[
                    ValueProperty("level", type="number", enum=[1, 2, 3], required=True),
                    ChildProperty("children", []),
                ],
                rich_text=True,
            ),
            ElementType(
                "paragraph",
                properties=[
                    ValueProperty("align", enum=["left", "center", "right"]),
                    ChildProperty("children", ["hardBreak"]),
                ],
                rich_text=True,
            ),
            ElementType("hardBreak"),
            ElementType(
                "section",
                description="A titled group of paragraphs",
                properties=[
                    ValueProperty("name", required=True),
                    ValueProperty("collapsed", type="boolean"),
                    ValueProperty("weight", type="number"),
                    ChildProperty("items", ["title", "paragraph", "section"], ordered=True),
                ],
            ),
            ElementType("title", properties=[ChildProperty("children", [])], rich_text=True),
        ],
    )
