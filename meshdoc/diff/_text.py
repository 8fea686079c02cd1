"""The readable half of a diff: two documents as Markdown, compared line by line.

Markdown is what people read documents as (`meshdoc.markdown`); a document whose elements
Markdown cannot spell still renders (unknown blocks as their text), so every document has
a readable diff, not only those in the rich-text schema.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..tree import MeshDocument

__all__ = ["markdown_diff", "render_document"]


def render_document(document: MeshDocument) -> str:
    """The document as Markdown (its XML when Markdown cannot render it)."""
    from ..markdown import to_markdown

    try:
        return to_markdown(document)
    except Exception:  # an untyped document with structures Markdown cannot hold
        return document.to_xml() + "\n"


def markdown_diff(
    before: str, after: str, *, before_name: str = "before", after_name: str = "after"
) -> str:
    """A unified diff (3 lines of context) of two Markdown texts; ``""`` when equal.

    ```py
    assert markdown_diff("a\\n", "b\\n").splitlines()[2:] == ["@@ -1 +1 @@", "-a", "+b"]
    ```
    """
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=before_name,
        tofile=after_name,
    )
    out = []
    for line in lines:
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)
