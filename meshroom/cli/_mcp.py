"""`meshroom mcp` and `meshroom offer-mcp`: rooms and MCP servers, each usable from the other.

```sh
meshroom mcp --url ws://127.0.0.1:8765 --room team --name Writer --dev            # stdio
meshroom mcp --url ws://127.0.0.1:8765 --room team --name Writer --dev --http --port 8808
meshroom offer-mcp --url ws://127.0.0.1:8765 --room team --dev -- python -m files_server
```

`meshroom mcp` joins the room as a participant of kind "agent" and serves it to
one MCP client over stdio (the client starts the command; stdout is the
protocol, so every message of ours goes to stderr), or to any number over
streamable HTTP with `--http`. `meshroom offer-mcp` starts an MCP server command
and offers its tools to the room until it is stopped. A dead room, a refused
token or an MCP server that will not start is one line on stderr and exit 3.
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import typer

from . import app
from ._agent import _load_schema
from ._connect import DEV_OPTION, TOKEN_OPTION, connect_deadline, room_token
from ._errors import CliError, error_text

_EXIT_FAILED = 3


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@app.command("mcp")
def mcp_command(
    url: str = typer.Option(..., "--url", "-u", help="Server URL, ws://host:port."),
    room: str = typer.Option(..., "--room", "-r", help="Room to join."),
    name: str = typer.Option(..., "--name", "-n", help="Display name in the room."),
    token: str | None = TOKEN_OPTION,
    dev: bool = DEV_OPTION,
    document: list[str] = typer.Option(
        [], "--document", "-d", help="Open this document from the start (repeatable)."
    ),
    schema: Path | None = typer.Option(
        None, "--schema", exists=True, dir_okay=False, help="MeshSchema as JSON (to_dict form)."
    ),
    http: bool = typer.Option(
        False, "--http", help="Serve streamable HTTP at http://HOST:PORT/mcp instead of stdio."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to serve HTTP on."),
    port: int = typer.Option(8808, "--port", "-p", min=0, max=65535, help="HTTP port."),
    connect_timeout: float = typer.Option(
        10.0, "--connect-timeout", min=0.1, help="Seconds to reach the room, retries included."
    ),
) -> None:
    """Serve a room to MCP clients: its documents, room and offered tools, documents as resources.

    Joins as a participant of kind "agent"; its edits carry its own origin and cursor.
    Exit status: 0 the client left, 2 bad options, 3 the room failed (one line on stderr).
    """
    from ..mcp import serve_room

    token = room_token(url, room, name, token, dev)
    mesh_schema = _load_schema(schema)

    async def main() -> None:
        with connect_deadline(url, connect_timeout, exit_code=_EXIT_FAILED) as connected:

            def joined(_server: object) -> None:
                connected()
                if not http:
                    _say(f"meshroom mcp: joined room {room!r} as {name}; serving MCP on stdio")

            await serve_room(
                url,
                room,
                name=name,
                token=token,
                documents=document,
                schema=mesh_schema,
                http=http,
                host=host,
                port=port,
                connect_timeout=connect_timeout,
                on_joined=joined,
                on_ready=lambda endpoint: _say(
                    f"meshroom mcp: joined room {room!r} as {name}; MCP endpoint {endpoint}"
                ),
            )

    _run(main)


@app.command("offer-mcp")
def offer_mcp_command(
    command: list[str] = typer.Argument(..., help="The MCP server to run: PROGRAM ARGS…"),
    url: str = typer.Option(..., "--url", "-u", help="Server URL, ws://host:port."),
    room: str = typer.Option(..., "--room", "-r", help="Room to offer the tools in."),
    toolkit: str | None = typer.Option(
        None, "--toolkit", "-t", help="Toolkit name in the room (default: the MCP server's)."
    ),
    name: str = typer.Option("MCP tools", "--name", "-n", help="Display name in the room."),
    token: str | None = TOKEN_OPTION,
    dev: bool = DEV_OPTION,
    connect_timeout: float = typer.Option(
        10.0, "--connect-timeout", min=0.1, help="Seconds to reach the room, retries included."
    ),
) -> None:
    """Offer an MCP server's tools to everyone in a room, until stopped.

    Put the command after `--`. Agents in the room see them as TOOLKIT_TOOL; the tool
    list follows the MCP server's changes. Exit status: 3 the room or the MCP server
    failed (one line on stderr).
    """
    from ..client import RoomClient
    from ..mcp import McpToolkit

    token = room_token(url, room, name, token, dev)

    async def main() -> None:
        async with anyio.create_task_group() as group:
            kit = McpToolkit(toolkit or "mcp", list(command))
            async with kit:
                if toolkit is None:
                    kit.name = _toolkit_name(kit)
                with connect_deadline(url, connect_timeout, exit_code=_EXIT_FAILED) as connected:
                    client = RoomClient(
                        url,
                        room,
                        name=name,
                        kind="agent",
                        token=token,
                        connect_timeout=connect_timeout,
                    )
                    async with client:
                        connected()
                        await client.offer(kit)
                        kit.on_change = lambda changed: group.start_soon(client.offer, changed)
                        _say(
                            f"meshroom offer-mcp: offering {kit.name} ({len(kit)} tools) in "
                            f"room {room!r} as {client.participant_id}/{kit.name}"
                        )
                        await client.wait_for(lambda: False)  # until stopped, or refused

    _run(main)


def _toolkit_name(kit: object) -> str:
    import re

    info = getattr(kit, "server_info", None)
    raw = getattr(info, "name", "") or "mcp"
    return re.sub(r"[^a-zA-Z0-9_.-]+", "-", raw).strip("-")[:64] or "mcp"


def _run(main: object) -> None:
    try:
        anyio.run(main)  # type: ignore[arg-type]
    except CliError:
        raise
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except Exception as error:
        raise CliError(error_text(error), exit_code=_EXIT_FAILED) from None
