"""What an offered toolkit may look like: the checks of an ``offer`` room call.

Apart from `RoomCalls` (which routes calls) because these are rules of the wire format
docs/room-document.md documents, and nothing else: names, descriptions, schemas' shapes.
`CallError` carries the reason a caller reads (docs/room-document.md lists them).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["CallError", "check_offer", "check_tool"]

_TOOLKIT_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


class CallError(Exception):
    """A call that cannot go on: `reason` is one of docs/room-document.md's reasons."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def check_offer(offerer: str, toolkit: Any, max_tools: int) -> dict[str, Any]:
    """The `toolkits` entry of an offer by `offerer`.

    Raises:
        CallError: the toolkit is malformed (reason ``bad-request``).
    """
    if not isinstance(toolkit, dict):
        raise CallError("bad-request", "'toolkit' must be an object")
    name = toolkit.get("name")
    if not isinstance(name, str) or not _TOOLKIT_NAME.match(name):
        raise CallError("bad-request", f"a toolkit name must match {_TOOLKIT_NAME.pattern}")
    description = toolkit.get("description", "")
    if not isinstance(description, str):
        raise CallError("bad-request", "a toolkit's 'description' must be a string")
    tools = toolkit.get("tools")
    if not isinstance(tools, list) or not 1 <= len(tools) <= max_tools:
        raise CallError("bad-request", f"'tools' must be a list of 1 to {max_tools} tools")
    checked = [check_tool(tool) for tool in tools]
    names = [tool["name"] for tool in checked]
    if len(set(names)) != len(names):
        raise CallError("bad-request", "tool names must be unique in a toolkit")
    return {"name": name, "description": description, "offeredBy": offerer, "tools": checked}


def check_tool(tool: Any) -> dict[str, Any]:
    """One tool of an offer, as listed (its known fields only).

    Raises:
        CallError: the tool is malformed (reason ``bad-request``).
    """
    if not isinstance(tool, dict):
        raise CallError("bad-request", "each tool must be an object")
    name = tool.get("name")
    if not isinstance(name, str) or not _TOOL_NAME.match(name):
        raise CallError("bad-request", f"a tool name must match {_TOOL_NAME.pattern}")
    description = tool.get("description", "")
    if not isinstance(description, str):
        raise CallError("bad-request", f"tool {name!r}: 'description' must be a string")
    schema = tool.get("inputSchema")
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise CallError("bad-request", f"tool {name!r}: 'inputSchema' must be an object schema")
    checked = {"name": name, "description": description, "inputSchema": schema}
    output = tool.get("outputSchema")
    if output is not None:
        if not isinstance(output, dict):
            raise CallError("bad-request", f"tool {name!r}: 'outputSchema' must be an object")
        checked["outputSchema"] = output
    extra = set(tool) - {"name", "description", "inputSchema", "outputSchema"}
    if extra:
        raise CallError("bad-request", f"tool {name!r}: unknown fields {sorted(extra)}")
    return checked
