"""The structural half of a diff: elements matched by `$id` across two document states.

Each state is flattened into one record per element (tag, attributes, direct text, parent,
the elements before it among its siblings). Elements present in one state only are added
or removed; for an element in both, a new parent is a move, and so is a new place among
siblings that kept their own order: the siblings of a parent that stay are aligned with a
longest common subsequence, and those outside it are the ones that moved (inserting a
paragraph above others moves none of them). Attributes are compared key by key; text is
compared as plain text and, when that is equal, by its formatting.

Elements without a `$id` (an editor created them and nothing assigned one) cannot be
followed across edits: they are matched by their position instead.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ._text import markdown_diff, render_document

if TYPE_CHECKING:
    from ..tree import Element, MeshDocument

__all__ = ["Change", "DocumentDiff", "diff_documents"]

ChangeKind = Literal["added", "removed", "moved", "attributes", "text"]
#: The order changes are listed in, for one element.
_ORDER = {"removed": 0, "added": 1, "moved": 2, "attributes": 3, "text": 4}


@dataclass(frozen=True)
class Change:
    """One change to one element (an element may have several: moved and edited)."""

    kind: ChangeKind
    #: The element's `$id` (``@/0/2``, its position, for an element without one).
    id: str
    tag: str
    #: ``added``, ``moved``: the new parent's id; ``removed``: the old one ("" is the root).
    parent: str | None = None
    #: ``added``, ``moved``: the index among the new parent's elements; ``removed``: old one.
    index: int | None = None
    #: ``moved``: where it was (parent id and index).
    from_parent: str | None = None
    from_index: int | None = None
    #: ``attributes``: name -> [old, new] (None for a missing side).
    attributes: dict[str, list[Any]] = field(default_factory=dict)
    #: ``text``: the element's own text before and after; ``added``/``removed``: its text.
    before: str | None = None
    after: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The change as JSON, without its empty fields."""
        out: dict[str, Any] = {"kind": self.kind, "id": self.id, "tag": self.tag}
        for name in ("parent", "index", "from_parent", "from_index", "before", "after"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.attributes:
            out["attributes"] = self.attributes
        return out


@dataclass(frozen=True)
class DocumentDiff:
    """What changed from one state of a document to another."""

    changes: list[Change]
    #: A unified diff of the two states' Markdown ("" when they read the same).
    markdown: str

    def counts(self) -> dict[str, int]:
        """How many changes of each kind (every kind listed, zeros included)."""
        counts = dict.fromkeys(_ORDER, 0)
        for change in self.changes:
            counts[change.kind] += 1
        return counts

    def __bool__(self) -> bool:
        return bool(self.changes) or bool(self.markdown)

    def to_json(self) -> dict[str, Any]:
        return {
            "counts": self.counts(),
            "changes": [change.to_json() for change in self.changes],
            "markdown": self.markdown,
        }


@dataclass
class _Record:
    tag: str
    attributes: dict[str, Any]
    text: str
    formatting: str
    parent: str
    index: int
    siblings: list[str]


def _flatten(document: MeshDocument) -> tuple[dict[str, _Record], list[str]]:
    """Every element by key, and the keys in document order."""
    records: dict[str, _Record] = {}
    order: list[str] = []

    def visit(element: Element, key: str, position: str) -> None:
        children = element.get_child_elements()
        keys = []
        for index, child in enumerate(children):
            keys.append(child.id or f"@{position}/{index}")
        for index, (child, child_key) in enumerate(zip(children, keys, strict=True)):
            texts = [node for node in child.get_children() if not hasattr(node, "tag_name")]
            records[child_key] = _Record(
                tag=child.tag_name,
                attributes=child.attributes,
                text="".join(str(node) for node in texts),
                formatting=repr([node.to_delta() for node in texts]),  # type: ignore[union-attr]
                parent=key,
                index=index,
                siblings=keys,
            )
            order.append(child_key)
            visit(child, child_key, f"{position}/{index}")

    visit(document.root, "", "")
    return records, order


def _moved_among_siblings(before: list[str], after: list[str], common: set[str]) -> set[str]:
    """Keys that kept their parent but not their place: outside the longest kept order."""
    old = [key for key in before if key in common]
    new = [key for key in after if key in common]
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    kept = set()
    for block in matcher.get_matching_blocks():
        kept.update(old[block.a : block.a + block.size])
    return set(new) - kept


def diff_documents(
    before: MeshDocument,
    after: MeshDocument,
    *,
    before_name: str = "before",
    after_name: str = "after",
) -> DocumentDiff:
    """Compare two states of a document (see the module docstring for the rules).

    Changes are listed in document order: removed elements where they were, then the
    others where they are now. `before_name` and `after_name` head the Markdown diff.
    """
    old, old_order = _flatten(before)
    new, new_order = _flatten(after)
    changes: list[Change] = []
    for key in old_order:
        if key not in new:
            record = old[key]
            changes.append(
                Change(
                    "removed",
                    key,
                    record.tag,
                    parent=record.parent,
                    index=record.index,
                    before=record.text or None,
                )
            )
    checked_parents: dict[str, set[str]] = {}
    for key in new_order:
        record = new[key]
        previous = old.get(key)
        if previous is None:
            changes.append(
                Change(
                    "added",
                    key,
                    record.tag,
                    parent=record.parent,
                    index=record.index,
                    after=record.text or None,
                )
            )
            continue
        moved = previous.parent != record.parent
        if not moved:
            parent = record.parent
            if parent not in checked_parents:
                common = set(previous.siblings) & set(record.siblings)
                checked_parents[parent] = _moved_among_siblings(
                    previous.siblings, record.siblings, common
                )
            moved = key in checked_parents[parent]
        if moved:
            changes.append(
                Change(
                    "moved",
                    key,
                    record.tag,
                    parent=record.parent,
                    index=record.index,
                    from_parent=previous.parent,
                    from_index=previous.index,
                )
            )
        names = sorted(set(previous.attributes) | set(record.attributes))
        changed = {
            name: [previous.attributes.get(name), record.attributes.get(name)]
            for name in names
            if previous.attributes.get(name) != record.attributes.get(name)
        }
        if changed or previous.tag != record.tag:
            if previous.tag != record.tag:
                changed["$tag"] = [previous.tag, record.tag]
            changes.append(Change("attributes", key, record.tag, attributes=changed))
        if previous.text != record.text or previous.formatting != record.formatting:
            changes.append(Change("text", key, record.tag, before=previous.text, after=record.text))
    readable = markdown_diff(
        render_document(before),
        render_document(after),
        before_name=before_name,
        after_name=after_name,
    )
    return DocumentDiff(changes, readable)
