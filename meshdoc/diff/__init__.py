"""Differences between two states of a document: by element `$id`, and as Markdown.

Versions of a document (meshroom keeps them) are only useful if one can see what changed
between them. Two views answer two questions:

- `diff_documents` says *what happened to which element*: each element is matched across
  the two states by its `$id` (an element keeps it whatever is edited around it), so an
  element is reported ``added``, ``removed``, ``moved`` (another parent, or another place
  among its siblings), with its ``attributes`` and its ``text`` changed, never as a delete
  plus an insert because a paragraph above it was inserted;
- `markdown_diff` says *how the document reads now against then*: a unified diff of the two
  Markdown renderings, the view a person reviews an agent's work with.

```py
from meshdoc.markdown import from_markdown
from meshdoc.diff import diff_documents

before = from_markdown("# Plan\\n\\nShip it.\\n")
after = type(before).from_update(None, before.get_update())
after.root.get_child_elements()[1].text.insert(8, " Friday")
changes = diff_documents(before, after)
assert [c.kind for c in changes.changes] == ["text"]
assert "+Ship it. Friday" in changes.markdown
```
"""

from __future__ import annotations

from ._structure import Change, DocumentDiff, diff_documents
from ._text import markdown_diff, render_document

__all__ = ["Change", "DocumentDiff", "diff_documents", "markdown_diff", "render_document"]
