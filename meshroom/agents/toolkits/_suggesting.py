"""The documents toolkit in suggestion mode, and its tools to list and resolve suggestions.

With ``documents_toolkit(schema, suggest=True)`` the edit tools propose instead of edit:
what they insert is marked as the agent's suggestion, what they delete is marked for
deletion and stays, through meshdoc's `Suggester` (so a person reviews the agent's work in
the editor and accepts or rejects it). `Edits` is the one switch the tools go through: the
same calls edit directly or suggest, so each tool is written once.

Attribute changes and moves have no suggestion form (a suggestion inserts or deletes), so in
suggestion mode they are refused, except inside the agent's own pending insertion, which is
its draft until someone resolves it.
"""

from __future__ import annotations

from typing import Any

from .._tools import Tool, ToolContext, tool
from ._document_edits import DocumentAccess, apply_text_diff

__all__ = ["Edits", "suggestion_tools"]


def _author(context: ToolContext) -> str:
    """Who the agent's suggestions are by: its participant id, as people see it in the room."""
    return context.caller or str(getattr(context.origin, "participant_id", "") or "agent")


class Edits:
    """The tools' edits on one document: direct, or (``suggest``) as the agent's suggestions."""

    def __init__(self, context: ToolContext, document: Any, *, suggest: bool) -> None:
        self.document = document
        self.suggester = (
            document.suggesting(author=_author(context), origin=context.origin) if suggest else None
        )

    def insert_json(self, parent: Any, index: int, data: dict[str, Any]) -> Any:
        if self.suggester is None:
            return parent.insert_json_at(index, data)
        return self.suggester.insert_json(parent, index, data)

    def insert_markdown(self, parent: Any, markdown: str, index: int) -> list[Any]:
        from meshdoc.markdown import insert_markdown, markdown_to_json

        if self.suggester is None:
            return insert_markdown(parent, markdown, index)
        blocks = markdown_to_json(markdown, self.document.schema)
        return [self.insert_json(parent, index + i, block) for i, block in enumerate(blocks)]

    def delete(self, element: Any) -> None:
        if self.suggester is None:
            element.delete()
        else:
            self.suggester.delete_element(element)

    def rewrite(self, node: Any, text: str) -> tuple[int, int]:
        """Make `node`'s text read `text`; the changed span, for the agent's cursor."""
        if self.suggester is None:
            return apply_text_diff(node, text)
        old = str(node)
        self.suggester.rewrite_text(node, text)
        start = 0
        while start < min(len(old), len(text)) and old[start] == text[start]:
            start += 1
        now = str(node)
        tail = 0
        while tail < min(len(old), len(text)) - start and old[-1 - tail] == text[-1 - tail]:
            tail += 1
        return start, len(now) - tail

    def check_direct(self, element: Any, what: str) -> None:
        """Refuse an edit that has no suggestion form, unless it is inside the agent's draft.

        Raises:
            PermissionError: in suggestion mode, on content that is not the agent's own
                pending insertion.
        """
        if self.suggester is None:
            return
        node = element
        while node is not None:
            suggestion = node.suggestion
            if suggestion is not None and suggestion.get("kind") == "insert":
                if suggestion.get("author") == self.suggester.author:
                    return
                break
            node = node.parent
        raise PermissionError(
            f"in suggestion mode {what} cannot be suggested (only insertions and deletions"
            " can); insert the changed element and delete the old one instead"
        )


def suggestion_tools(access: DocumentAccess) -> list[Tool]:
    """`list_suggestions` and `resolve_suggestions`, in either mode."""

    @tool(read_only=True)
    async def list_suggestions(
        context: ToolContext, path: str, author: str | None = None
    ) -> list[dict[str, Any]]:
        """List the pending suggestions of a document: insertions and deletions proposed by
        people or agents and not yet accepted or rejected.

        Args:
            path: Document path.
            author: Only this participant's suggestions (null: everyone's).
        """
        document = await access.open(context, path)
        return [suggestion.to_json() for suggestion in document.suggestions(author)]

    @tool
    async def resolve_suggestions(
        context: ToolContext, path: str, ids: list[str], accept: bool
    ) -> str:
        """Accept or reject suggestions: accepting an insertion keeps it, accepting a deletion
        deletes; rejecting does the opposite. Ids no longer pending are skipped.

        Args:
            path: Document path.
            ids: The suggestions' ids, from list_suggestions.
            accept: true to accept them, false to reject them.
        """
        document = await access.open(context, path)
        with access.edit(context, path, document):
            done = document.accept(*ids) if accept else document.reject(*ids)
        verb = "accepted" if accept else "rejected"
        return f"{verb} {done} suggestion(s)" + (
            f"; {len(set(ids)) - done} no longer pending" if done < len(set(ids)) else ""
        )

    return [list_suggestions, resolve_suggestions]
