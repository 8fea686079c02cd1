"""Documents as MCP resources: ``meshdoc://ROOM/PATH``, read as Markdown and as JSON.

One resource per document of the room (the room document's ``documents`` map:
stored and open ones). Reading it gives two contents for the same URI, the
Markdown a model reads best and the JSON (with every ``$id``) a program or a
model that edits by id needs; ``?format=markdown`` or ``?format=json`` asks for
one. The room and the path are percent-encoded segment by segment, so every
valid room name and path has exactly one URI.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import mcp_types as types

__all__ = ["SCHEME", "document_uri", "parse_uri", "read_contents", "resource_of"]

SCHEME = "meshdoc"
_FORMATS = ("markdown", "json")


def document_uri(room: str, path: str) -> str:
    """``meshdoc://ROOM/PATH`` for the document `path` of `room`."""
    segments = "/".join(quote(segment, safe="") for segment in path.split("/"))
    return f"{SCHEME}://{quote(room, safe='')}/{segments}"


def parse_uri(uri: str, room: str) -> tuple[str, tuple[str, ...]]:
    """The document path a URI of `room` names, and the formats it asks for.

    Raises:
        ValueError: not a ``meshdoc://`` URI, another room's, or an unknown format.
    """
    parts = urlsplit(uri)
    if parts.scheme != SCHEME:
        raise ValueError(f"not a {SCHEME}:// URI: {uri!r}")
    if unquote(parts.netloc) != room:
        raise ValueError(f"{uri!r} is not in room {room!r} (this server serves {room!r} only)")
    path = "/".join(unquote(segment) for segment in parts.path.lstrip("/").split("/"))
    if not path:
        raise ValueError(f"{uri!r} names no document")
    formats: tuple[str, ...] = _FORMATS
    if parts.query:
        query = dict(item.partition("=")[::2] for item in parts.query.split("&"))
        wanted = query.get("format", "")
        if wanted not in _FORMATS:
            raise ValueError(f"unknown format {wanted!r} in {uri!r}: markdown or json")
        formats = (wanted,)
    return path, formats


def resource_of(room: str, path: str, entry: dict[str, Any]) -> types.Resource:
    """The MCP resource listing one document of the room (`entry`: its ``documents`` row)."""
    size = entry.get("size")
    return types.Resource(
        uri=document_uri(room, path),
        name=path,
        title=path.rsplit("/", 1)[-1],
        description=f"Document {path!r} of room {room!r}: Markdown, then JSON with every $id.",
        mime_type="text/markdown",
        size=size if isinstance(size, int) and size > 0 else None,
    )


def read_contents(uri: str, document: Any, formats: tuple[str, ...]) -> list[Any]:
    """The contents of a read: the document as Markdown and/or JSON, under `uri`."""
    contents: list[Any] = []
    if "markdown" in formats:
        contents.append(
            types.TextResourceContents(uri=uri, mime_type="text/markdown", text=_markdown(document))
        )
    if "json" in formats:
        text = json.dumps(document.to_json(), ensure_ascii=False)
        contents.append(
            types.TextResourceContents(uri=uri, mime_type="application/json", text=text)
        )
    return contents


def _markdown(document: Any) -> str:
    """Markdown of any document: Tiptap-shaped ones convert, others show their outline."""
    from meshdoc import markdown

    try:
        return markdown.to_markdown(document)
    except Exception:  # a schema whose blocks have no Markdown: its outline still reads
        from ..agents.toolkits._document_edits import outline

        return "\n".join(outline(document))
