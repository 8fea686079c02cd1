"""Tool results across the MCP boundary: meshroom's tool responses as MCP results, and back.

Both directions keep what the other side can act on. A meshroom `ErrorResponse`
becomes an MCP result with ``isError`` (a tool error the calling model reads, as
the MCP specification asks, never a protocol error that ends the client's turn);
JSON becomes text for the model plus ``structuredContent`` for programs; files
and links keep their kind. An MCP result coming back into meshroom becomes the
response a local tool would have given.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import mcp_types as types

from ..agents import (
    ErrorResponse,
    FileResponse,
    JsonResponse,
    LinkResponse,
    TextResponse,
    ToolResponse,
)

__all__ = ["to_call_result", "to_tool_response"]


def to_call_result(response: ToolResponse) -> types.CallToolResult:
    """The MCP ``tools/call`` result for a meshroom tool's `response`."""
    if isinstance(response, ErrorResponse):
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=response.to_content())], is_error=True
        )
    if isinstance(response, JsonResponse):
        structured = response.data if isinstance(response.data, dict) else None
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=response.to_content())],
            structured_content=structured,
        )
    if isinstance(response, FileResponse):
        return types.CallToolResult(content=[_file_content(response)])
    if isinstance(response, LinkResponse):
        link = types.ResourceLink(type="resource_link", uri=response.url, name=response.name or "")
        return types.CallToolResult(content=[link])
    return types.CallToolResult(content=[types.TextContent(type="text", text=response.text)])


def _file_content(response: FileResponse) -> Any:
    if response.mime_type.startswith("image/"):
        data = base64.b64encode(response.data).decode("ascii")
        return types.ImageContent(type="image", data=data, mime_type=response.mime_type)
    text = response.to_content()
    if not text.startswith("[file "):  # a text file: its text
        return types.TextContent(type="text", text=text)
    blob = types.BlobResourceContents(
        uri=f"file:///{response.name}",
        mime_type=response.mime_type,
        blob=base64.b64encode(response.data).decode("ascii"),
    )
    return types.EmbeddedResource(type="resource", resource=blob)


def to_tool_response(result: types.CallToolResult) -> ToolResponse:
    """The meshroom tool response for an MCP server's ``tools/call`` `result`.

    An error result is an `ErrorResponse` with the server's words; structured
    content is JSON; a single image or binary resource is a file; anything else
    is the text of its parts, one per line.
    """
    texts = [_text_of(part) for part in result.content]
    text = "\n".join(part for part in texts if part)
    if result.is_error:
        return ErrorResponse(text or "the MCP tool failed without saying why")
    structured = result.structured_content
    if structured is not None:
        if set(structured) == {"result"} and text in (str(structured["result"]), _json(structured)):
            # the SDK wraps a tool's plain return value so; the value is what it said
            value = structured["result"]
            return TextResponse(value) if isinstance(value, str) else JsonResponse(value)
        return JsonResponse(structured)
    if len(result.content) == 1:
        single = _file_of(result.content[0])
        if single is not None:
            return single
    if len(result.content) == 1 and isinstance(result.content[0], types.TextContent):
        try:  # a server that answers with JSON text means JSON
            return (
                JsonResponse(json.loads(text)) if text[:1] in "[{" and text else TextResponse(text)
            )
        except json.JSONDecodeError:
            return TextResponse(text)
    return TextResponse(text)


def _json(structured: dict[str, Any]) -> str:
    return json.dumps(structured["result"], ensure_ascii=False)


def _text_of(part: Any) -> str:
    if isinstance(part, types.TextContent):
        return part.text
    if isinstance(part, types.EmbeddedResource) and isinstance(
        part.resource, types.TextResourceContents
    ):
        return part.resource.text
    if isinstance(part, types.ResourceLink):
        return f"{part.name}: {part.uri}" if part.name else str(part.uri)
    if isinstance(part, types.ImageContent):
        return f"[image: {part.mime_type}]"
    return ""


def _file_of(part: Any) -> ToolResponse | None:
    if isinstance(part, types.ImageContent):
        return FileResponse("image", base64.b64decode(part.data), part.mime_type)
    if isinstance(part, types.EmbeddedResource) and isinstance(
        part.resource, types.BlobResourceContents
    ):
        name = str(part.resource.uri).rsplit("/", 1)[-1] or "file"
        data = base64.b64decode(part.resource.blob)
        return FileResponse(name, data, part.resource.mime_type or "application/octet-stream")
    if isinstance(part, types.ResourceLink):
        return LinkResponse(str(part.uri), part.name)
    return None
