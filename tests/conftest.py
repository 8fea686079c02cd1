"""Shared fixtures: free ports, a real meshroom server on 127.0.0.1, Node peers.

Everything runs for real: `run_server()` serves a `meshroom.Server` through
uvicorn (the transport `meshroom serve` uses) on a free port, inside the
test's event loop, so a test can inspect the server object while clients talk
to it over sockets.

```py
pytestmark = pytest.mark.anyio

async def test_something(live_server):
    url = live_server.url("my room", "notes.md")  # ws://127.0.0.1:PORT/my%20room/notes.md
    ...
    assert live_server.server.room_names() == ["my room"]
```
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import pytest
import uvicorn

from meshroom import Server

ROOT = Path(__file__).resolve().parents[1]
NODE_DIR = ROOT / "tests" / "node"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(name="free_port")
def free_port_fixture() -> int:
    return free_port()


@dataclass
class LiveServer:
    """A server reachable over real sockets."""

    server: Server
    port: int
    host: str = "127.0.0.1"

    @property
    def base_url(self) -> str:
        """``ws://host:port`` (what a y-websocket `WebsocketProvider` takes as server URL)."""
        return f"ws://{self.host}:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, room: str, path: str = "", **query: str) -> str:
        """The websocket URL of a room document (path ``""``) or a document, percent-encoded."""
        target = quote(room, safe="")
        if path:
            target += "/" + "/".join(quote(segment, safe="") for segment in path.split("/"))
        url = f"{self.base_url}/{target}"
        if query:
            url += "?" + "&".join(f"{key}={quote(value, safe='')}" for key, value in query.items())
        return url


@asynccontextmanager
async def serve_app(app: Any, port: int | None = None) -> AsyncIterator[int]:
    """Serve an ASGI app with uvicorn (websockets, no compression) inside this event loop."""
    port = port or free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        lifespan="on",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    async with anyio.create_task_group() as group:
        group.start_soon(server.serve)
        with anyio.fail_after(20):
            while not server.started:
                if server.should_exit:
                    raise RuntimeError("uvicorn failed to start")
                await anyio.sleep(0.01)
        try:
            yield port
        finally:
            server.should_exit = True


@asynccontextmanager
async def run_server(port: int | None = None, **server_options: Any) -> AsyncIterator[LiveServer]:
    """Run `Server(**server_options)` (default grace period 0.2 s) on a free port."""
    server_options.setdefault("grace_period", 0.2)
    server = Server(**server_options)
    async with serve_app(server.app, port) as bound:
        yield LiveServer(server, bound)


@pytest.fixture
def server_factory() -> Callable[..., AbstractAsyncContextManager[LiveServer]]:
    """`async with server_factory(extensions=[...], limits=Limits(...)) as live:`."""
    return run_server


@pytest.fixture
async def live_server() -> AsyncIterator[LiveServer]:
    """A default server (no extensions, grace period 0.2 s) on a free port."""
    async with run_server() as live:
        yield live


# -- Node peers -----------------------------------------------------------------------------------


@dataclass
class NodeResult:
    returncode: int
    stdout: str
    stderr: str

    def json_lines(self) -> list[Any]:
        """Every stdout line that is a JSON value, parsed."""
        values = []
        for line in self.stdout.splitlines():
            line = line.strip()
            if line.startswith(("{", "[")):
                values.append(json.loads(line))
        return values


async def run_node(script: str, *args: str, timeout: float = 60) -> NodeResult:
    """Run `tests/node/<script>` with node (cwd tests/node) and return its output."""
    env = {**os.environ, "NODE_NO_WARNINGS": "1"}
    with anyio.fail_after(timeout):
        process = await anyio.run_process(
            ["node", script, *args], cwd=NODE_DIR, env=env, check=False
        )
    return NodeResult(
        process.returncode,
        process.stdout.decode(errors="replace"),
        process.stderr.decode(errors="replace"),
    )


@pytest.fixture
def node() -> Callable[..., Any]:
    """`result = await node("server_peer.mjs", url, ...)`: run a Node peer to completion."""
    return run_node
