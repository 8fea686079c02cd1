"""The documents toolkit: read and edit the room's documents by element `$id`.

The model sees documents as an outline (`[$id] tag: text`), JSON in the
schema's shape, or Markdown; it edits by `$id` and by exact text
(find-and-replace), never by character offsets it would have to count. With a
schema, `insert_elements` takes the schema's own strict JSON Schema as its
input, so the endpoint constrains what the model writes, and meshdoc refuses
anything that still breaks it, with the reason.

``suggest=True`` makes the edit tools propose instead of edit (`_suggesting`); both modes
have `list_suggestions` and `resolve_suggestions`.

Longer than 400 lines: one tool per function, each with the docstring the model reads, kept
together so the toolkit reads as the model sees it; what the tools do to a document lives in
`_document_edits` and `_suggesting`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal, TypedDict

import anyio.lowlevel

from .._toolkit import Toolkit
from .._tools import ErrorResponse, JsonResponse, Tool, ToolContext, tool
from ._document_edits import (
    DocumentAccess,
    element,
    find_occurrence,
    outline,
    show_cursor,
    show_element,
)
from ._suggesting import Edits, suggestion_tools

__all__ = ["DocumentsToolkit", "documents_toolkit", "import_markdown_into"]

Position = Literal["before", "after", "first_child", "last_child"]


class _AttributeDict(TypedDict):
    """One attribute to set."""

    name: str
    value: str | float | bool | None


def _index_for(target: Any, position: str) -> tuple[Any, int]:
    """(parent, child index) for placing something relative to `target`."""
    if position in ("first_child", "last_child"):
        size = len(target.get_children())
        return target, 0 if position == "first_child" else size
    parent = target.parent
    if parent is None:
        raise ValueError("'before'/'after' need a target element, not the root")
    siblings = parent.get_children()
    index = next(i for i, child in enumerate(siblings) if getattr(child, "id", None) == target.id)
    return parent, index if position == "before" else index + 1


class InsertElements(Tool):
    """Insert elements given as JSON; the input schema embeds the document schema's."""

    def __init__(
        self, access: DocumentAccess, element_schema: dict[str, Any] | None, suggest: bool = False
    ) -> None:
        self.access = access
        self.suggest = suggest
        path = {"type": "string", "description": "Document path, e.g. 'notes/plan'."}
        position = {
            "type": "string",
            "enum": ["before", "after", "first_child", "last_child"],
            "description": "Where, relative to target_id.",
        }
        target = {
            "type": ["string", "null"],
            "description": "$id of the reference element; null means the document root.",
        }
        if element_schema is not None:
            defs = dict(element_schema.get("$defs", {}))
            root_tag = next(iter(element_schema["properties"]))
            tags = [name for name in defs if not name.startswith("$") and name != root_tag]
            elements: dict[str, Any] = {
                "type": "array",
                "items": {"anyOf": [{"$ref": f"#/$defs/{tag}"} for tag in tags]},
                "description": "Elements to insert, in order; $id null for new ones.",
            }
        else:
            defs = {}
            elements = {
                "type": "string",
                "description": 'JSON array of elements, e.g. [{"p": {"children": '
                '[{"$text": [{"insert": "Hi", "marks": []}]}]}}].',
            }
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {
                "path": path,
                "position": position,
                "target_id": target,
                "elements": elements,
            },
            "required": ["path", "position", "target_id", "elements"],
            "additionalProperties": False,
        }
        if defs:
            schema["$defs"] = defs
        super().__init__(
            name="insert_elements",
            title="Insert elements",
            description="Insert new elements (JSON in the document's schema) before, after "
            "or inside an element. Returns the new elements' $ids.",
            input_schema=schema,
        )

    async def execute(self, context: ToolContext, **arguments: Any) -> Any:
        path = arguments["path"]
        items = arguments["elements"]
        if isinstance(items, str):
            try:
                items = json.loads(items)
            except json.JSONDecodeError as error:
                return ErrorResponse(f"'elements' is not valid JSON: {error}")
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                return ErrorResponse("'elements' must be a JSON array of objects")
        if not items:
            return ErrorResponse("'elements' is empty")
        document = await self.access.open(context, path)
        created = []
        edits = Edits(context, document, suggest=self.suggest)
        with self.access.edit(context, path, document):  # one transaction: reads included
            target = element(document, arguments["target_id"])
            parent, index = _index_for(target, arguments["position"])
            for offset, data in enumerate(items):
                node = edits.insert_json(parent, index + offset, data)
                created.append(getattr(node, "id", None))
        show_element(context, path, created[0])
        return JsonResponse({"inserted": created})


class DocumentsToolkit(Toolkit):
    """The documents toolkit; `access` opens documents and holds the agent's undo managers."""

    def __init__(self, access: DocumentAccess, tools: list[Tool], rules: list[str]) -> None:
        super().__init__("documents", tools, rules)
        self.access = access


def documents_toolkit(
    schema: Any = None,
    *,
    schemas: Mapping[str, Any] | None = None,
    fragment: str = "default",
    storage: Any = None,
    suggest: bool = False,
) -> DocumentsToolkit:
    """Tools to read and edit the room's documents.

    Args:
        schema: The `MeshSchema` documents are opened with (None: untyped documents).
        schemas: Per-path schemas that override `schema`.
        fragment: Name of the root fragment editors bind to.
        storage: A `StorageProvider` whose `list_documents(room)` lists stored documents
            for `list_documents`. Not needed with a meshroom server: the room document
            lists the room's stored and open documents, which `list_documents` reads.
        suggest: Edit in suggestion mode: what the tools insert is marked as the agent's
            suggestion and what they delete is marked for deletion, for people to accept or
            reject; attribute changes and moves are refused outside the agent's own pending
            insertions.
    """
    access = DocumentAccess(schema=schema, schemas=dict(schemas or {}), fragment=fragment)

    @tool(read_only=True)
    async def list_documents(context: ToolContext) -> list[str]:
        """List the room's documents (those stored and those open now)."""
        client = context.client
        paths = set(getattr(client, "open_documents", {}) or {})
        listing = getattr(client, "list_documents", None)
        if listing is not None:  # the room document's `documents` map
            paths.update(await listing())
        if storage is not None:
            paths.update(await storage.list_documents(context.room))
        return sorted(paths)

    @tool(read_only=True)
    async def read_document(
        context: ToolContext,
        path: str,
        format: Literal["outline", "json", "markdown"] = "outline",
    ) -> Any:
        """Read a document (opening it if needed).

        Args:
            path: Document path, e.g. "notes/plan".
            format: "outline" (one line per element: [$id] tag: text), "json" (the
                schema's shape, with every $id), or "markdown".
        """
        document = await access.open(context, path)
        # Editors create elements without `$id` (y-prosemirror drops attributes the editor's
        # schema does not declare); the model addresses elements by the ids it reads here.
        document.assign_missing_ids()
        if format == "json":
            return document.to_json()
        if format == "markdown":
            from meshdoc import markdown

            return markdown.to_markdown(document)
        lines = outline(document)
        pending = document.suggestions()
        if pending:  # the outline's texts show both sides of a suggestion: say which is which
            lines.append("pending suggestions (resolve_suggestions accepts or rejects them):")
            lines += [
                f"  {{{x.id}}} {x.author}: {x.kind} {x.target} in [{x.element_id}]: {x.text!r}"
                for x in pending
            ]
        return "\n".join(lines) if lines else "(empty document)"

    @tool(read_only=True)
    async def get_element(context: ToolContext, path: str, id: str) -> dict[str, Any]:
        """Get one element as JSON, with its parent's $id and its index there.

        Args:
            path: Document path.
            id: The element's $id.
        """
        document = await access.open(context, path)
        target = element(document, id)
        parent = target.parent
        siblings = parent.get_children() if parent is not None else []
        index = next((i for i, c in enumerate(siblings) if getattr(c, "id", None) == id), None)
        return {
            "element": target.to_json(),
            "parent_id": parent.id if parent else None,
            "index": index,
        }

    @tool
    async def update_attributes(
        context: ToolContext, path: str, id: str, attributes: list[_AttributeDict]
    ) -> str:
        """Set attributes of an element (a null value removes an optional attribute).

        Args:
            path: Document path.
            id: The element's $id.
            attributes: Name/value pairs to set.
        """
        document = await access.open(context, path)
        target = element(document, id)
        Edits(context, document, suggest=suggest).check_direct(target, "attribute changes")
        with access.edit(context, path, document):
            for item in attributes:
                target.set_attribute(item["name"], item["value"])
        return f"updated {len(attributes)} attribute(s) of {id}"

    @tool
    async def move_element(
        context: ToolContext, path: str, id: str, position: Position, target_id: str | None
    ) -> str:
        """Move an element (with its content and $id) before, after or inside another.

        Args:
            path: Document path.
            id: $id of the element to move.
            position: Where, relative to target_id.
            target_id: $id of the reference element; null means the document root.
        """
        document = await access.open(context, path)
        moving = element(document, id)
        Edits(context, document, suggest=suggest).check_direct(moving, "moves")
        target = element(document, target_id)
        parent, index = _index_for(target, position)
        if parent == moving.parent:
            current = next(
                i for i, c in enumerate(parent.get_children()) if getattr(c, "id", None) == id
            )
            if current < index:
                index -= 1
        with access.edit(context, path, document):
            moving.move(parent, index)
        show_element(context, path, id)
        return f"moved {id}"

    @tool
    async def delete_elements(context: ToolContext, path: str, ids: list[str]) -> str:
        """Delete elements (and everything inside them).

        Args:
            path: Document path.
            ids: $ids of the elements to delete.
        """
        document = await access.open(context, path)
        targets = [element(document, item) for item in ids]
        edits = Edits(context, document, suggest=suggest)
        with access.edit(context, path, document):
            for target in targets:
                edits.delete(target)
        return f"deleted {len(targets)} element(s)"

    @tool
    async def replace_text(
        context: ToolContext,
        path: str,
        id: str,
        find: str,
        replace: str,
        occurrence: int | None = None,
    ) -> str:
        """Replace exact text inside an element's text (no character counting needed).

        Args:
            path: Document path.
            id: $id of the element holding the text.
            find: The exact text to replace, as it appears now.
            replace: The new text.
            occurrence: Which occurrence (1-based) when `find` occurs several times.
        """
        document = await access.open(context, path)
        target = element(document, id)
        node = target.text
        start = find_occurrence(str(node), find, occurrence)
        with access.edit(context, path, document):
            before = str(node)
            new = before[:start] + replace + before[start + len(find) :]
            span = Edits(context, document, suggest=suggest).rewrite(node, new)
        await anyio.lowlevel.checkpoint()  # the edit leaves first; the cursor can wait
        # the cursor spans the whole replacement (a suggestion's span holds the kept old text)
        show_cursor(context, path, node, id, *(span if suggest else (start, start + len(replace))))
        return f"replaced in {id}: now {str(node)!r}"

    @tool
    async def rewrite_text(context: ToolContext, path: str, id: str, text: str) -> str:
        """Set the whole text of an element; only the characters that differ are changed,
        so concurrent typing elsewhere in it is kept.

        Args:
            path: Document path.
            id: $id of the element holding the text.
            text: The new text.
        """
        document = await access.open(context, path)
        node = element(document, id).text
        with access.edit(context, path, document):
            start, end = Edits(context, document, suggest=suggest).rewrite(node, text)
        await anyio.lowlevel.checkpoint()  # the edit leaves first; the cursor can wait
        show_cursor(context, path, node, id, start, end)
        return f"rewrote {id}"

    @tool
    async def insert_markdown(
        context: ToolContext, path: str, position: Position, target_id: str | None, markdown: str
    ) -> dict[str, Any]:
        """Insert blocks written in Markdown (headings, paragraphs, lists, quotes, code)
        before, after or inside an element; documents with Tiptap's block names only.

        Args:
            path: Document path.
            position: Where, relative to target_id.
            target_id: $id of the reference element; null means the document root.
            markdown: The Markdown to insert.
        """
        document = await access.open(context, path)
        parent, index = _index_for(element(document, target_id), position)
        with access.edit(context, path, document):
            blocks = Edits(context, document, suggest=suggest).insert_markdown(
                parent, markdown, index
            )
        show_element(context, path, blocks[0].id if blocks else None)
        return {"inserted": [block.id for block in blocks]}

    @tool
    async def undo(context: ToolContext, path: str, steps: int = 1) -> str:
        """Undo your own last edits in a document (other people's edits are kept).

        Args:
            path: Document path.
            steps: How many of your edits to undo.
        """
        await access.open(context, path)
        manager = access.undo_manager(context, path)
        done = 0
        for _ in range(max(1, steps)):
            if not manager.undo():
                break
            done += 1
        return f"undid {done} edit(s)" if done else "nothing of yours to undo"

    element_schema = schema.to_json() if schema is not None else None
    tools = [
        list_documents,
        read_document,
        get_element,
        InsertElements(access, element_schema, suggest),
        insert_markdown,
        update_attributes,
        move_element,
        delete_elements,
        replace_text,
        rewrite_text,
        undo,
        *suggestion_tools(access),
    ]
    rules = [
        "Address elements by their $id; read the outline first, and re-read after "
        "others may have edited.",
        "To change words, prefer replace_text with the exact current text.",
    ]
    if suggest:
        rules.append(
            "Your edits are suggestions that people accept or reject: what you insert is "
            "marked as yours and what you delete stays, marked, until someone resolves it."
        )
    return DocumentsToolkit(access, tools, rules=rules)


async def import_markdown_into(
    access: DocumentAccess, context: ToolContext, path: str, text: str
) -> str:
    """Append Markdown to a document as elements (one undoable edit by the agent).

    Raises:
        SchemaError: the document's schema refuses a block (nothing is written).
    """
    from meshdoc.markdown import insert_markdown

    document = await access.open(context, path)
    with access.edit(context, path, document):
        blocks = insert_markdown(document.root, text)
    return f"imported {len(blocks)} block(s) into {path}"
