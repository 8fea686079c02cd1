"""A raw y-websocket peer for the auth and fuzz tests (no tests in this module).

Written from the protocol, not from the server's codec, so a codec bug on the
server cannot hide behind the same bug here. A peer can misbehave on purpose:
`write()` sends an update whatever its access, `send()` sends any bytes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

import anyio
from conftest import eventually
from pycrdt import Doc, Text
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parents[1]
NODE_DIR = ROOT / "tests" / "node"
SECRET = "correct horse battery staple 0123456789"
OLD_SECRET = "the previous secret, still accepted 987654321"


# -- lib0 encoding --------------------------------------------------------------------------------
def var_uint(number: int) -> bytes:
    out = bytearray()
    while number > 0x7F:
        out.append(0x80 | (number & 0x7F))
        number >>= 7
    out.append(number)
    return bytes(out)


def var_bytes(data: bytes) -> bytes:
    return var_uint(len(data)) + data


def read_var_uint(data: bytes, pos: int) -> tuple[int, int]:
    number = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        number |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return number, pos


def sync_step1(state: bytes) -> bytes:
    return b"\x00\x00" + var_bytes(state)


def sync_step2(update: bytes) -> bytes:
    return b"\x00\x01" + var_bytes(update)


def update_message(update: bytes) -> bytes:
    return b"\x00\x02" + var_bytes(update)


def awareness_message(client_id: int, clock: int, state: dict | None) -> bytes:
    body = var_uint(1) + var_uint(client_id) + var_uint(clock)
    body += var_bytes(json.dumps(state).encode())
    return b"\x01" + var_bytes(body)


def auth_message(token: str) -> bytes:
    return b"\x02" + var_bytes(token.encode())


def decode_awareness(body: bytes) -> list[tuple[int, int, dict | None]]:
    update, _ = _read_bytes(body, 0)
    count, pos = read_var_uint(update, 0)
    entries = []
    for _ in range(count):
        client_id, pos = read_var_uint(update, pos)
        clock, pos = read_var_uint(update, pos)
        state, pos = _read_bytes(update, pos)
        entries.append((client_id, clock, json.loads(state)))
    return entries


def _read_bytes(data: bytes, pos: int) -> tuple[bytes, int]:
    length, pos = read_var_uint(data, pos)
    return data[pos : pos + length], pos + length


# -- peer -----------------------------------------------------------------------------------------
def url_for(base: str, room: str, path: str = "", token: str | None = None) -> str:
    target = f"{base}/{quote(room, safe='')}" + (f"/{quote(path)}" if path else "")
    return target + (f"?token={quote(token, safe='')}" if token is not None else "")


class Peer:
    """One socket on one document; applies what the server sends into `doc`."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.doc = Doc()
        self.text = self.doc.get("t", type=Text)
        self.synced = anyio.Event()
        self.closed = anyio.Event()
        self.close_code: int | None = None
        self.close_reason = ""
        self.awareness: dict[int, dict | None] = {}
        #: Every awareness state ever received, removals included (None).
        self.awareness_seen: list[dict | None] = []
        self.received = 0
        self.step2_count = 0
        #: Message types received, in order (0 sync, 1 awareness, 2 auth…).
        self.types: list[int] = []

    async def _run(self) -> None:
        try:
            async for message in self.ws:
                self.received += 1
                if isinstance(message, str) or not message:
                    continue
                self.types.append(message[0])
                if message[0] == 0:
                    step, pos = read_var_uint(message, 1)
                    payload, _ = _read_bytes(message, pos)
                    if step == 0:
                        await self.ws.send(sync_step2(self.doc.get_update(payload)))
                    else:
                        if payload != b"\x00\x00":
                            self.doc.apply_update(payload)
                        if step == 1:
                            self.step2_count += 1
                            self.synced.set()
                elif message[0] == 1:
                    for client_id, _clock, state in decode_awareness(message[1:]):
                        self.awareness[client_id] = state
                        self.awareness_seen.append(state)
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.close_reason = self.ws.close_reason or ""
            self.closed.set()

    async def write(self, content: str, *, as_step2: bool = False) -> None:
        """Edit the local doc and send the update, whatever the server allows."""
        before = self.doc.get_state()
        self.text += content
        update = self.doc.get_update(before)
        await self.ws.send(sync_step2(update) if as_step2 else update_message(update))

    async def send(self, data: bytes) -> None:
        await self.ws.send(data)

    async def barrier(self, timeout: float = 10) -> None:
        """Wait until the server handled everything this peer sent before now.

        The server answers a sync step 1 after the messages before it (one connection's
        messages are handled in order), so its step 2 reply marks the point.
        """
        seen = self.step2_count
        await self.ws.send(sync_step1(self.doc.get_state()))
        await eventually(lambda: self.step2_count > seen or self.closed.is_set(), timeout)

    async def wait_closed(self, timeout: float = 10) -> int | None:
        with anyio.fail_after(timeout):
            await self.closed.wait()
        return self.close_code


@asynccontextmanager
async def open_peer(
    base: str,
    room: str,
    path: str = "",
    token: str | None = None,
    *,
    via: str = "query",
    wait_sync: bool = True,
    max_size: int | None = None,
) -> AsyncIterator[Peer]:
    """Connect, send sync step 1, and (by default) wait for the server's step 2.

    `via` is how the token travels: ``"query"``, ``"header"`` (Bearer) or ``"message"``.
    """
    headers = {}
    if token is not None and via == "header":
        headers["Authorization"] = f"Bearer {token}"
    url = url_for(base, room, path, token if via == "query" else None)
    async with connect(url, additional_headers=headers, max_size=max_size, open_timeout=10) as ws:
        peer = Peer(ws)
        async with anyio.create_task_group() as tg:
            tg.start_soon(peer._run)
            try:
                if token is not None and via == "message":
                    await ws.send(auth_message(token))
                await ws.send(sync_step1(peer.doc.get_state()))
            except ConnectionClosed:
                pass
            if wait_sync:
                with anyio.fail_after(10):
                    while not peer.synced.is_set():
                        if peer.closed.is_set():
                            raise AssertionError(
                                f"closed before sync: {peer.close_code} {peer.close_reason}"
                            )
                        await anyio.sleep(0.005)
            try:
                yield peer
            finally:
                tg.cancel_scope.cancel()


# -- server subprocess ---------------------------------------------------------------------------
def wait_port(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


SERVER_SCRIPT = """
import json
import os
import uvicorn
from meshroom import create_app, Limits, Server
from meshroom.auth import JwtAuth

limits = Limits(**json.loads(os.environ.get("LIMITS", "{}")))
server = Server(extensions=[JwtAuth(os.environ["SECRET"])], grace_period=0.2, limits=limits)
uvicorn.run(create_app(server), host="127.0.0.1", port=int(os.environ["PORT"]),
            ws="websockets-sansio", ws_per_message_deflate=False, log_level="warning",
            lifespan="on")
"""


def start_auth_server(port: int, limits: dict | None = None) -> subprocess.Popen:
    """A `JwtAuth` server (secret `SECRET`) in its own process, `Limits(**limits)`."""
    return start_server(SERVER_SCRIPT, port, {"SECRET": SECRET, "LIMITS": json.dumps(limits or {})})


def start_server(script: str, port: int, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Run `script` (Python source) in a subprocess with PORT set; wait until it listens."""
    full_env = {**os.environ, "PORT": str(port), **(env or {})}
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        env=full_env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_port(port, process)
    except Exception:
        process.kill()
        print(process.communicate(timeout=10)[0].decode(errors="replace"))
        raise
    return process


def stop_server(process: subprocess.Popen) -> str:
    process.terminate()
    try:
        out, _ = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate(timeout=10)
    return out.decode(errors="replace")


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


async def run_node(script: str, options: dict, timeout: float = 30) -> dict:
    """Run a Node peer from tests/node with JSON options; return its JSON report."""
    with anyio.fail_after(timeout):
        done = await anyio.run_process(
            ["node", str(NODE_DIR / script), json.dumps(options)], cwd=NODE_DIR, check=False
        )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return json.loads(done.stdout.decode().strip().splitlines()[-1])
