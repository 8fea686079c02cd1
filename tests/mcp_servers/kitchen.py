"""A small MCP server of the kind found in the wild, for the `McpToolkit` tests (run over stdio).

Written with the official SDK's `MCPServer`, whose schemas are not strict: `add` has
an optional argument, `tag` takes a map of arbitrary keys, `fail` always fails, and
`unlock` adds a tool and tells listening clients the tool list changed.
"""

from __future__ import annotations

from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("kitchen", instructions="Kitchen helpers: sums, tags, failures.")


@server.tool()
def add(a: int, b: int = 1) -> int:
    """Add two numbers (b defaults to 1)."""
    return a + b


@server.tool()
def tag(labels: dict[str, str]) -> str:
    """Join labels as key=value pairs."""
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


@server.tool()
def fail(reason: str) -> str:
    """Always fail with the reason."""
    raise ValueError(f"kitchen refused: {reason}")


def secret() -> str:
    """Tell the secret (only after unlock)."""
    return "the secret is basil"


@server.tool()
async def unlock(ctx: Context) -> str:
    """Add the secret tool."""
    server.add_tool(secret)
    await ctx.notify_tools_changed()
    return "unlocked"


if __name__ == "__main__":
    server.run("stdio")
