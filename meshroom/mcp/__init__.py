"""meshroom.mcp: rooms for agents of any framework, through the Model Context Protocol.

Two directions, both on the official `mcp` SDK (``pip install 'meshdoc[mcp]'``):

- `RoomMcpServer` (``meshroom mcp``): a room participant of kind "agent" that MCP
  clients drive. It exposes the documents toolkit, the room toolkit and every
  toolkit offered in the room as MCP tools, and the room's documents as
  ``meshdoc://ROOM/PATH`` resources, with change notifications. `serve_room`
  joins and serves it over stdio or streamable HTTP.
- `McpToolkit` (``meshroom offer-mcp``): any MCP server's tools as a meshroom
  toolkit, for an `Agent`, or offered to the whole room.
"""

from __future__ import annotations

from ._resources import document_uri as document_uri
from ._resources import parse_uri as parse_uri
from ._run import serve_http as serve_http
from ._run import serve_room as serve_room
from ._run import serve_stdio as serve_stdio
from ._server import RoomMcpServer as RoomMcpServer
from ._strict import server_arguments as server_arguments
from ._strict import strict_schema as strict_schema
from ._toolkit import McpTool as McpTool
from ._toolkit import McpToolkit as McpToolkit

__all__ = [
    "McpTool",
    "McpToolkit",
    "RoomMcpServer",
    "document_uri",
    "parse_uri",
    "serve_http",
    "serve_room",
    "serve_stdio",
    "server_arguments",
    "strict_schema",
]
