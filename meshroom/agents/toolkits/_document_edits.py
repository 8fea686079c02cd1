"""What the documents toolkit does to a document: open, locate, edit atomically, undo, show.

Edits run in one transaction carrying the agent's origin, so observers, audit
and per-origin undo know the agent made them. A call that fails half-way (the
third of four inserted elements breaks the schema) is rolled back with the
agent's own undo manager, so a refused call changes nothing.

Text is rewritten as a minimal diff (difflib opcodes applied right to left):
replacing a sentence touches only the characters that differ, so a person
typing elsewhere in the same paragraph keeps every character they type.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .._tools import ToolContext

__all__ = ["DocumentAccess", "apply_text_diff", "outline"]

_OUTLINE_TEXT = 120


@dataclass
class DocumentAccess:
    """Opens documents through the agent's room peer and keeps one undo manager per document.

    Undo managers are made when the agent first opens a document, before its first
    edit, and kept for the life of the peer: "undo" means the agent's last edits,
    across runs.
    """

    schema: Any = None
    schemas: Mapping[str, Any] = field(default_factory=dict)
    fragment: str = "default"
    _undo: dict[tuple[int, str], Any] = field(default_factory=dict)

    def schema_for(self, path: str) -> Any:
        return self.schemas.get(path, self.schema)

    async def open(self, context: ToolContext, path: str) -> Any:
        if context.client is None:
            raise RuntimeError("the agent is not connected to a room")
        await _version_before_run(context, path)
        document = await context.client.open(path, self.schema_for(path), fragment=self.fragment)
        key = (id(context.client), path)
        if key not in self._undo:
            document.assign_missing_ids()
            self._undo[key] = document.undo_manager(context.origin, capture_timeout_millis=0)
        return document

    def undo_manager(self, context: ToolContext, path: str) -> Any:
        return self._undo.get((id(context.client), path))

    @contextmanager
    def edit(self, context: ToolContext, path: str, document: Any) -> Iterator[None]:
        """One atomic edit with the agent's origin: on error, whatever was written is undone.

        Raises:
            PermissionError: the server admitted the agent to `path` read-only; it would
                drop the edit without a word, so nothing is written.
        """
        read_only = getattr(context.client, "read_only", None)
        if read_only is not None and read_only(path):
            raise PermissionError(
                f"read-only access to {path!r}: the server admitted this participant "
                "read-only (its token's grant), so it refuses edits; nothing was written"
            )
        undo = self.undo_manager(context, path)
        depth = undo.undo_depth if undo is not None else 0
        try:
            with document.transaction(origin=context.origin):
                yield
        except BaseException:
            if undo is not None and undo.undo_depth > depth:
                undo.undo()
            raise
        if undo is not None and undo.undo_depth > depth:
            # a stopped run may be asked to take back what it did (Agent.stop(undo=True))
            context.state.setdefault("undo", []).append(undo.undo)


async def _version_before_run(context: ToolContext, path: str) -> None:
    """Have an embedded agent's server save the document's state the first time a run
    opens it, before the run can edit it ("undo everything the agent did" is then one
    restore). A connected agent's server does it by itself at the agent's first update."""
    versioned = context.state.setdefault("versioned", set())
    if path in versioned:
        return
    versioned.add(path)
    server = getattr(context.client, "server", None)
    for extension in getattr(server, "extensions", ()):
        save = getattr(extension, "save_agent_version", None)
        if save is not None:
            await save(context.room, path, context.caller)


def element(document: Any, element_id: str | None) -> Any:
    """The element with `$id` (the root for None), or a KeyError the model can read."""
    if element_id is None:
        return document.root
    found = document.get_node_by_id(element_id)
    if found is None:
        raise KeyError(
            f"no element has $id {element_id!r} (re-read the document: it may have changed)"
        )
    return found


def text_of(target: Any) -> Any:
    """The element's first text node (created if the schema allows text there)."""
    return target.text


def apply_text_diff(node: Any, new: str) -> tuple[int, int]:
    """Turn `node`'s text into `new` by editing only what differs; return the changed span.

    The span (start, end) is in the new text, for the agent's cursor.
    """
    old = str(node)
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    opcodes = [op for op in matcher.get_opcodes() if op[0] != "equal"]
    for tag, i1, i2, j1, j2 in reversed(opcodes):
        if tag in ("replace", "delete"):
            node.delete(i1, i2 - i1)
        if tag in ("replace", "insert"):
            node.insert(i1, new[j1:j2])
    if not opcodes:
        return (0, 0)
    return (opcodes[0][3], opcodes[-1][4])


def find_occurrence(text: str, find: str, occurrence: int | None) -> int:
    """Index of the `occurrence`-th (1-based) `find` in `text`; ambiguity is an error."""
    if not find:
        raise ValueError("'find' must not be empty")
    starts = []
    start = text.find(find)
    while start >= 0:
        starts.append(start)
        start = text.find(find, start + 1)
    if not starts:
        preview = text if len(text) <= 200 else text[:200] + "…"
        raise ValueError(f"{find!r} does not occur in the element's text: {preview!r}")
    if occurrence is None:
        if len(starts) > 1:
            raise ValueError(
                f"{find!r} occurs {len(starts)} times; pass 'occurrence' (1-based) "
                "or a longer 'find'"
            )
        return starts[0]
    if not 1 <= occurrence <= len(starts):
        raise ValueError(f"{find!r} occurs {len(starts)} times, not {occurrence}")
    return starts[occurrence - 1]


def outline(document: Any) -> list[str]:
    """One line per element, indented by depth: `[$id] tag attrs: text…`.

    The cheapest complete view for a model: every `$id` it may address, and enough
    text to recognise each element.
    """
    lines: list[str] = []

    def walk(node: Any, depth: int) -> None:
        for child in node.get_child_elements():
            attributes = {k: v for k, v in child.attributes.items() if v is not None}
            texts = [str(c) for c in child.get_children() if not hasattr(c, "get_children")]
            text = " ".join(texts)
            if len(text) > _OUTLINE_TEXT:
                text = text[: _OUTLINE_TEXT - 1] + "…"
            line = f"{'  ' * depth}[{child.id}] {child.tag_name}"
            if attributes:
                line += " " + " ".join(f"{k}={v!r}" for k, v in attributes.items())
            if texts:
                line += f": {text!r}"
            lines.append(line)
            walk(child, depth + 1)

    walk(document.root, 0)
    return lines


def show_cursor(
    context: ToolContext, path: str, node: Any, element_id: str | None, start: int, end: int
) -> None:
    """Publish the agent's selection in awareness: a Yjs relative position any editor resolves.

    `cursor` uses the y-prosemirror field names (`anchor`/`head` as relative positions);
    `selection` repeats it as plain indices for peers that do not resolve positions.
    """
    client = context.client
    if client is None or not hasattr(client, "set_awareness"):
        return
    try:
        anchor = node.sticky_index(start).to_json()
        head = node.sticky_index(end).to_json()
        client.set_awareness(
            path,
            {
                "cursor": {"anchor": anchor, "head": head},
                "selection": {"element": element_id, "start": start, "end": end},
            },
        )
    except Exception:  # a cursor is decoration: never fail an edit for it
        return


def show_element(context: ToolContext, path: str, element_id: str | None) -> None:
    """Publish which element the agent just worked on (inserted, moved), for highlighting."""
    client = context.client
    if client is None or not hasattr(client, "set_awareness") or element_id is None:
        return
    try:
        client.set_awareness(
            path, {"selection": {"element": element_id, "start": None, "end": None}}
        )
    except Exception:  # decoration only
        return
