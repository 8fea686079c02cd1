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

import functools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import pytest
import redis
import uvicorn
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from meshroom import Server, create_app
from meshroom.transport import uvicorn_websocket

ROOT = Path(__file__).resolve().parents[1]
NODE_DIR = ROOT / "tests" / "node"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# -- prerequisites: a missing one fails the test with one line saying what to install ---------

_INSTALL_ALL = "or run ./scripts/test, which installs everything"


@functools.cache
def _missing_node() -> str | None:
    if shutil.which("node") is None:
        return f"node is not installed: apt-get install nodejs npm ({_INSTALL_ALL})"
    for kit in ("tests/node", "benchmarks/node"):
        if not (ROOT / kit / "node_modules" / "yjs").is_dir():
            return f"the Node kit {kit} is not installed: cd {kit} && npm ci ({_INSTALL_ALL})"
    return None


@functools.cache
def _missing_browser() -> str | None:
    if shutil.which("chromium") is None and not Path("/usr/bin/chromium").exists():
        return f"chromium is not installed: apt-get install chromium ({_INSTALL_ALL})"
    if not (ROOT / "examples" / "web" / "dist" / "app.js").exists():
        return "examples/web/dist is not built: cd examples/web && npm ci && npm run build"
    return None


_PREREQUISITES: dict[str, Callable[[], str | None]] = {
    "interop": _missing_node,
    "browser": _missing_browser,
}


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail (never skip, never hang) a test whose marker names a prerequisite that is missing."""
    for marker, missing in _PREREQUISITES.items():
        if item.get_closest_marker(marker) is not None:
            problem = missing()
            if problem is not None:
                pytest.fail(problem, pytrace=False)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(name="free_port")
def free_port_fixture() -> int:
    return free_port()


async def eventually(
    predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.02
) -> None:
    """Wait until `predicate()` is true (time-outs fail the test; nothing else is timed)."""
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(interval)


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
async def serve_app(
    app: Any, port: int | None = None, *, ws: Any = "websockets-sansio"
) -> AsyncIterator[int]:
    """Serve an ASGI app with uvicorn inside this event loop.

    `ws` is uvicorn's WebSocket implementation: by default its own (the plain ASGI
    path, as an embedding app runs it); `run_server` passes meshroom's
    (`uvicorn_websocket`, as `meshroom serve` runs it).
    """
    port = port or free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        ws=ws,
        ws_per_message_deflate=False,
        lifespan="on",
        log_level="warning",
        timeout_graceful_shutdown=5,  # a peer that stopped reading never blocks teardown
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
    async with serve_app(create_app(server), port, ws=uvicorn_websocket(server)) as bound:
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


class NodePeer:
    """A live `tests/node/server_peer.mjs` process: send commands, read its state and events."""

    def __init__(self, process: anyio.abc.Process) -> None:
        self.process = process
        self.events: list[dict[str, Any]] = []
        self._replies: dict[int, dict[str, Any]] = {}
        self._next_id = 0
        self._changed = anyio.Event()

    async def _read(self) -> None:
        assert self.process.stdout is not None
        buffer = b""
        async for chunk in self.process.stdout:
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if not line.strip():
                    continue
                value = json.loads(line)
                if "id" in value:
                    self._replies[value["id"]] = value
                else:
                    self.events.append(value)
                self._changed.set()
                self._changed = anyio.Event()

    async def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send one command and wait for its answer."""
        self._next_id += 1
        request_id = self._next_id
        assert self.process.stdin is not None
        line = json.dumps({"id": request_id, "op": op, **fields}) + "\n"
        await self.process.stdin.send(line.encode())
        with anyio.fail_after(20):
            while request_id not in self._replies:
                await self._changed.wait()
        return self._replies.pop(request_id)

    async def state(self) -> dict[str, Any]:
        return await self.request("state")

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 20
    ) -> dict[str, Any]:
        """Poll the peer's state until `predicate(state)` holds (fails the test on timeout)."""
        with anyio.fail_after(timeout):
            while True:
                current = await self.state()
                if predicate(current):
                    return current
                await anyio.sleep(0.05)

    async def wait_event(self, event: str, timeout: float = 20) -> dict[str, Any]:
        with anyio.fail_after(timeout):
            while True:
                for value in self.events:
                    if value.get("event") == event:
                        return value
                await self._changed.wait()


@asynccontextmanager
async def open_node_peer(
    base_url: str,
    room: str,
    params: dict[str, str] | None = None,
    timings: dict[str, float] | None = None,
) -> AsyncIterator[NodePeer]:
    """Start a Node y-websocket peer on `room` ("name" or "name/doc path"); stop it on exit.

    `params` is the URL query; `timings` the peer's own (``watchdog``, ``renew``, in ms:
    see tests/node/server_peer.mjs).
    """
    args = ["node", "server_peer.mjs", base_url, room]
    if params or timings:
        args.append(json.dumps(params or {}))
    if timings:
        args.append(json.dumps(timings))
    process = await anyio.open_process(args, cwd=NODE_DIR, stderr=None)
    peer = NodePeer(process)
    async with process, anyio.create_task_group() as group:
        group.start_soon(peer._read)
        try:
            yield peer
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                if process.returncode is None:
                    process.terminate()
                    await process.wait()
            group.cancel_scope.cancel()


@pytest.fixture
def node_peer() -> Callable[..., AbstractAsyncContextManager[NodePeer]]:
    """`async with node_peer(live.base_url, "room/doc.md", {"id": "ann"}) as peer:`."""
    return open_node_peer


# -- raw y-websocket peers ------------------------------------------------------------------------


class RawPeer:
    """A bare websocket speaking y-websocket by hand: send any bytes, read decoded messages."""

    def __init__(self, websocket: Any) -> None:
        self.websocket = websocket
        #: (scope, identity) of the server's authenticated message, once it arrived.
        self.authenticated: tuple[str, dict[str, Any]] | None = None

    async def send(self, data: bytes) -> None:
        await self.websocket.send(data)

    async def recv(self, timeout: float = 10) -> Any:
        """The next message, decoded (`meshroom.protocol._messages` types).

        The server's authenticated message (who this connection is) is kept in
        `authenticated` rather than returned, so tests read the protocol that follows.
        """
        from meshroom.protocol._messages import AuthMessage, decode_authenticated, decode_message

        with anyio.fail_after(timeout):
            while True:
                message = decode_message(await self.websocket.recv())
                if isinstance(message, AuthMessage) and message.body[:1] == b"\x02":
                    self.authenticated = decode_authenticated(message.body)
                    continue
                return message

    async def recv_until(self, predicate: Callable[[Any], bool], timeout: float = 10) -> Any:
        """Read messages until one satisfies `predicate`; return it."""
        with anyio.fail_after(timeout):
            while True:
                message = await self.recv(timeout)
                if predicate(message):
                    return message

    async def closed(self, timeout: float = 10) -> tuple[int | None, str]:
        """Wait for the server to close; return (code, reason), skipping pending messages."""
        from websockets.exceptions import ConnectionClosed

        with anyio.fail_after(timeout):
            try:
                while True:
                    await self.websocket.recv()
            except ConnectionClosed as closed:
                received = closed.rcvd
                if received is None:
                    return None, ""
                return received.code, received.reason


@asynccontextmanager
async def open_raw_peer(url: str, **connect_options: Any) -> AsyncIterator[RawPeer]:
    """Connect a `RawPeer` (websockets client, compression off like y-websocket over ws)."""
    from websockets.asyncio.client import connect

    connect_options.setdefault("compression", None)
    connect_options.setdefault("max_size", None)
    async with connect(url, **connect_options) as websocket:
        yield RawPeer(websocket)


@pytest.fixture
def raw_peer() -> Callable[..., AbstractAsyncContextManager[RawPeer]]:
    """`async with raw_peer(live.url("room", "doc")) as peer:`."""
    return open_raw_peer


# -- pycrdt's reference provider over a real websocket -----------------------------------------


class WebsocketChannel:
    """A `websockets` client connection as a pycrdt `Channel` (the Python reference provider)."""

    def __init__(self, websocket: ClientConnection, path: str) -> None:
        self._websocket = websocket
        self._path = path

    @property
    def path(self) -> str:
        return self._path

    def __aiter__(self) -> WebsocketChannel:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self.recv()
        except ConnectionClosed:
            raise StopAsyncIteration from None

    async def send(self, message: bytes) -> None:
        await self._websocket.send(message)

    async def recv(self) -> bytes:
        while True:  # y-websocket is binary; skip any text frame
            message = await self._websocket.recv()
            if isinstance(message, bytes):
                return message


# -- `meshroom serve` as a subprocess ----------------------------------------------------------


def start_meshroom_serve(
    port: int, *options: str, command: str | None = None
) -> subprocess.Popen[bytes]:
    """Start `meshroom serve --host 127.0.0.1 --port PORT OPTIONS…` and wait for `/healthz`.

    `command` is the executable (default: `python -m meshroom`, the same CLI as the
    console script). Raises RuntimeError with the server's output if it exits first.
    """
    program = [command] if command else [sys.executable, "-m", "meshroom"]
    output = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the server; not a pipe, so a chatty server never blocks)
    process = subprocess.Popen(
        [*program, "serve", "--host", "127.0.0.1", "--port", str(port), *options],
        cwd=ROOT,
        stdout=output,
        stderr=subprocess.STDOUT,
        env=dict(os.environ),
    )
    process.log_file = output  # type: ignore[attr-defined]  # read with `serve_output`
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(serve_output(process))
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=0.5) as reply:
                if reply.status == 200:
                    return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("meshroom serve did not start")


def serve_output(process: subprocess.Popen[bytes]) -> str:
    """Everything a `start_meshroom_serve` process printed so far."""
    log = process.log_file  # type: ignore[attr-defined]
    log.seek(0)
    return log.read().decode(errors="replace")


def start_redis(port: int) -> subprocess.Popen:
    """A redis-server without persistence on 127.0.0.1:`port`, answering (fails if missing)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(
            f"redis-server is not installed: apt-get install redis-server ({_INSTALL_ALL})",
            pytrace=False,
        )
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            assert process.poll() is None and time.monotonic() < deadline, "redis did not start"
            time.sleep(0.05)
    client.close()
    return process


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """A private redis-server on a free 127.0.0.1 port, one per test module."""
    port = free_port()
    process = start_redis(port)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(10)
