"""Interop: unmodified Node yjs + y-websocket clients and pycrdt's Python provider.

They co-edit one document through the meshroom server and converge; awareness
reaches late joiners and disappears after a disconnect; `meshroom serve`,
started exactly as the README says, serves a Node client and stores on SIGTERM.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest
from conftest import WebsocketChannel, free_port, open_node_peer, serve_output, start_meshroom_serve
from pycrdt import Doc, Provider, Text
from websockets.asyncio.client import connect

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

#: The console script, exactly as the README runs it.
MESHROOM = shutil.which("meshroom") or str(Path(sys.executable).with_name("meshroom"))


@asynccontextmanager
async def python_provider(url: str, doc: Doc) -> AsyncIterator[Provider]:
    async with connect(url) as websocket, Provider(doc, WebsocketChannel(websocket, url)) as p:
        yield p


async def test_node_and_python_providers_converge(live_server):
    room = "interop room/notes/plan.md"  # the space travels percent-encoded
    doc = Doc()
    text = doc.get("t", type=Text)
    async with (
        open_node_peer(live_server.base_url, room, {"id": "ann", "name": "Ann"}) as ann,
        open_node_peer(live_server.base_url, room, {"id": "bob", "name": "Bob"}) as bob,
        python_provider(live_server.url("interop room", "notes/plan.md"), doc) as provider,
    ):
        await ann.wait_event("synced")
        await bob.wait_event("synced")
        with anyio.fail_after(10):
            await provider.synced.wait()
        # Concurrent edits from all three.
        await ann.request("insert", text="[ann]")
        await bob.request("insert", text="[bob]")
        text += "[py]"

        def converged(state):
            return all(part in state["text"] for part in ("[ann]", "[bob]", "[py]"))

        final_ann = await ann.wait_for(converged)
        final_bob = await bob.wait_for(lambda s: s["text"] == final_ann["text"])
        with anyio.fail_after(10):
            while str(text) != final_ann["text"]:
                await anyio.sleep(0.02)
        assert final_bob["text"] == str(text) == final_ann["text"]
        assert len(final_ann["text"]) == len("[ann][bob][py]")

    room_state = live_server.server.room("interop room")
    assert room_state is not None
    assert room_state.document_paths() == ["notes/plan.md"]


async def test_awareness_for_late_joiners_and_removal(live_server):
    room = "aware/doc"
    async with open_node_peer(live_server.base_url, room, {"name": "Ann"}) as ann:
        await ann.wait_event("synced")
        await ann.request("awareness", state={"user": {"name": "Ann"}, "cursor": 3})
        async with open_node_peer(live_server.base_url, room, {"name": "Bob"}) as bob:
            await bob.wait_event("synced")
            # The late joiner sees Ann's current state; Ann sees Bob.
            seen = await bob.wait_for(
                lambda s: any(p["state"].get("cursor") == 3 for p in s["peers"])
            )
            assert [p["state"]["user"]["name"] for p in seen["peers"]] == ["Ann"]
            await ann.wait_for(
                lambda s: [p["state"]["user"]["name"] for p in s["peers"]] == ["Bob"]
            )
            # No phantom entry for the server itself.
            assert len(seen["peers"]) == 1
            await bob.request("quit")
        # Bob's state disappears for Ann after his disconnect.
        await ann.wait_for(lambda s: s["peers"] == [])


async def test_idle_client_stays_connected_past_the_reconnect_watchdog(live_server):
    """y-websocket drops a socket that received nothing for 30 s: the echoed awareness prevents it.

    The server runs no timer for this: a client renews its awareness every 15 s and
    the server relays awareness to every session of the document, the sender
    included, as the Node server does. (Protocol pings do not count: y-websocket only
    sees messages.) The peer runs y-websocket's watchdog and renewal 30 and 60 times
    faster (1 s and 0.25 s); nobody edits for 2.5 watchdog periods and the one
    connection survives. A server that stopped echoing would leave the client
    without a message for more than a second: watchdog, close, reconnect.
    """
    timings = {"watchdog": 1000, "renew": 250}
    async with open_node_peer(live_server.base_url, "idle/doc", {"name": "Idle"}, timings) as idle:
        await idle.wait_event("synced")
        room = live_server.server.room("idle")
        (session,) = room.sessions
        await anyio.sleep(2.5)
        state = await idle.state()
        assert [e for e in idle.events if e.get("event") in ("watchdog", "close")] == []
        assert [e["status"] for e in idle.events if e.get("event") == "status"] == ["connected"]
        assert state["connected"] and state["synced"]
        assert room.sessions == [session]  # the same connection all along


def _start_serve(port: int, storage: str) -> subprocess.Popen:
    """The README's command, on a free port, through the console script."""
    return start_meshroom_serve(port, "--storage", storage, command=MESHROOM)


async def test_meshroom_serve_subprocess(tmp_path):
    port = free_port()
    storage = tmp_path / "rooms"
    process = _start_serve(port, str(storage))
    try:
        health = httpx.get(f"http://127.0.0.1:{port}/healthz").json()
        assert health["status"] == "ok"
        async with open_node_peer(f"ws://127.0.0.1:{port}", "team/readme.md", {"name": "A"}) as a:
            await a.wait_event("synced")
            await a.request("insert", text="served by meshroom serve")
            async with open_node_peer(f"ws://127.0.0.1:{port}", "team/readme.md") as b:
                await b.wait_for(lambda s: s["text"] == "served by meshroom serve")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        output = serve_output(process)
    # uvicorn re-raises the signal once shut down cleanly (the Unix convention).
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    assert "room 'team' opened" in output
    assert "connect" in output and "disconnect" in output
    assert any(storage.rglob("*")), f"nothing stored under {storage}:\n{output}"

    # A restarted server loads what the first one stored.
    process = _start_serve(port, str(storage))
    try:
        async with open_node_peer(f"ws://127.0.0.1:{port}", "team/readme.md") as c:
            await c.wait_for(lambda s: s["text"] == "served by meshroom serve")
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
