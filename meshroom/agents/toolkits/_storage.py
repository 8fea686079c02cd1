"""The storage toolkit: the room's files, and turning them into Markdown or documents.

Files live in the room's file area of a `FileStore` (e.g. `FsspecStorage`),
next to its documents. Conversion to Markdown uses `markitdown` (the `agents`
extra), which reads HTML, CSV, JSON, XML and, with its own extras, PDF, DOCX,
XLSX and PPTX; importing converts the Markdown into a document through
meshdoc's Markdown converter, as one edit the agent can undo.
"""

from __future__ import annotations

import functools
import io
import mimetypes
from pathlib import PurePosixPath
from typing import Any

from .._toolkit import Toolkit
from .._tools import ErrorResponse, FileResponse, ToolContext, tool
from ._documents import DocumentsToolkit, import_markdown_into

__all__ = ["convert_to_markdown", "storage_toolkit"]

_MARKDOWN = {".md", ".markdown", ".txt"}
#: Longest file `read_file` returns whole (a model's context is the real limit).
MAX_READ = 200_000


@functools.cache
def _converter() -> Any:
    """One MarkItDown per process: building one registers every converter (slow)."""
    from markitdown import MarkItDown

    return MarkItDown()


def convert_to_markdown(name: str, data: bytes) -> str:
    """Markdown of a file's bytes, by its extension (plain text and Markdown pass through).

    Raises:
        ValueError: markitdown cannot read this kind of file (or lacks the extra for it).
    """
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in _MARKDOWN:
        return data.decode("utf-8", errors="replace")
    try:
        from markitdown import MarkItDown, StreamInfo
    except ImportError as error:  # the agents extra is not installed
        raise ValueError(
            "converting files needs markitdown: pip install 'meshdoc[agents]'"
        ) from error
    try:
        result = MarkItDown().convert_stream(
            io.BytesIO(data), stream_info=StreamInfo(extension=suffix)
        )
    except Exception as error:
        raise ValueError(
            f"cannot convert {name!r} to Markdown ({type(error).__name__}: {error}); "
            "PDF, DOCX, XLSX and PPTX need markitdown's extras, e.g. 'markitdown[all]'"
        ) from error
    return result.text_content


def storage_toolkit(store: Any, *, documents: DocumentsToolkit | None = None) -> Toolkit:
    """Tools over the room's files in `store` (anything with the `FileStore` methods).

    Args:
        store: `list_files(room, prefix)`, `read_file(room, name)`, `write_file(room, name,
            data)`, e.g. `FsspecStorage`.
        documents: The agent's `documents_toolkit`: adds `import_file`, which appends a
            converted file to a document through it (same undo history). None leaves
            `import_file` out.
    """

    @tool(read_only=True)
    async def list_files(context: ToolContext, prefix: str = "") -> list[str]:
        """List the files stored in the room (names relative to the room's file area).

        Args:
            prefix: Only names starting with this (e.g. "reports/").
        """
        return await store.list_files(context.room, prefix)

    @tool(read_only=True)
    async def read_file(context: ToolContext, name: str) -> FileResponse | ErrorResponse:
        """Read a file from the room's storage (text files are returned as text).

        Args:
            name: File name, as list_files shows it.
        """
        data = await store.read_file(context.room, name)
        mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if PurePosixPath(name).suffix.lower() in _MARKDOWN:
            mime = "text/markdown"
        if len(data) > MAX_READ and mime.startswith("text/"):
            return ErrorResponse(f"{name} is {len(data)} bytes; convert or read it in parts")
        return FileResponse(name, data, mime)

    @tool
    async def write_file(context: ToolContext, name: str, text: str) -> str:
        """Write a text file into the room's storage (replaces a file of the same name).

        Args:
            name: File name, e.g. "notes/summary.md".
            text: The whole content.
        """
        data = text.encode("utf-8")
        await store.write_file(context.room, name, data)
        return f"wrote {name} ({len(data)} bytes)"

    @tool
    async def file_to_markdown(context: ToolContext, name: str, save_as: str | None = None) -> str:
        """Convert a stored file (PDF, DOCX, HTML, CSV, …) to Markdown and return it.

        Args:
            name: The file to convert.
            save_as: Also store the Markdown under this name; null does not store it.
        """
        markdown = convert_to_markdown(name, await store.read_file(context.room, name))
        if save_as is not None:
            await store.write_file(context.room, save_as, markdown.encode("utf-8"))
        return markdown

    tools = [list_files, read_file, write_file, file_to_markdown]
    if documents is not None:
        access = documents.access

        @tool
        async def import_file(context: ToolContext, name: str, document: str) -> str:
            """Convert a stored file to Markdown and append it to a document.

            Args:
                name: The file to import.
                document: Path of the document to append to (it is created if new).
            """
            markdown = convert_to_markdown(name, await store.read_file(context.room, name))
            return await import_markdown_into(access, context, document, markdown)

        tools.append(import_file)
    return Toolkit("storage", tools, rules=["Files are shared with everyone in the room."])
