"""Prebuilt toolkits: documents, room, storage, versions."""

from __future__ import annotations

from ._document_edits import DocumentAccess as DocumentAccess
from ._documents import DocumentsToolkit as DocumentsToolkit
from ._documents import documents_toolkit as documents_toolkit
from ._documents import import_markdown_into as import_markdown_into
from ._room import room_toolkit as room_toolkit
from ._storage import convert_to_markdown as convert_to_markdown
from ._storage import storage_toolkit as storage_toolkit
from ._versions import versions_toolkit as versions_toolkit

__all__ = [
    "DocumentAccess",
    "DocumentsToolkit",
    "convert_to_markdown",
    "documents_toolkit",
    "import_markdown_into",
    "room_toolkit",
    "storage_toolkit",
    "versions_toolkit",
]
