"""Tool responses as room-call results, and back, so a remote tool answers like a local one.

A text response travels as a JSON string and any other JSON value as itself, which
is what a JavaScript offerer naturally sends; links and files, which plain JSON
cannot tell from data, carry a ``$type`` marker. An error is the call's ``error``.
"""

from __future__ import annotations

import base64
from typing import Any

from ._tools import (
    ErrorResponse,
    FileResponse,
    JsonResponse,
    LinkResponse,
    TextResponse,
    ToolResponse,
)

__all__ = ["decode_result", "encode_response"]


def encode_response(response: ToolResponse) -> dict[str, Any]:
    """The ``result`` (or ``error``) fields of a room call's result for `response`."""
    match response:
        case ErrorResponse(message=message, details=details):
            return {"error": message} if details is None else {"error": message, "details": details}
        case TextResponse(text=text):
            return {"result": text}
        case JsonResponse(data=data):
            return {"result": data}
        case LinkResponse(url=url, name=name):
            return {"result": {"$type": "link", "url": url, "name": name}}
        case FileResponse(name=name, data=data, mime_type=mime_type):
            encoded = base64.b64encode(data).decode("ascii")
            return {
                "result": {"$type": "file", "name": name, "mimeType": mime_type, "data": encoded}
            }
    raise TypeError(f"not a tool response: {response!r}")


def decode_result(result: Any) -> ToolResponse:
    """The tool response a room call's ``result`` stands for (see `encode_response`)."""
    if isinstance(result, str):
        return TextResponse(result)
    if isinstance(result, dict) and result.get("$type") == "link":
        return LinkResponse(str(result.get("url", "")), str(result.get("name", "")))
    if isinstance(result, dict) and result.get("$type") == "file":
        data = base64.b64decode(str(result.get("data", "")))
        return FileResponse(
            str(result.get("name", "")),
            data,
            str(result.get("mimeType", "application/octet-stream")),
        )
    return JsonResponse(result)
