"""Interop: the unmodified npm `@hocuspocus/provider` against the meshroom server.

Each test runs a real server (uvicorn with meshroom's transport, or the portable ASGI
path) and Node processes on `tests/node/hocuspocus_peer.mjs`: one Hocuspocus socket each,
with the providers a test attaches. They share documents, rooms, auth and presence with
y-websocket clients (`server_peer.mjs`) and Python `RoomClient`s. Bad input goes in
through raw sockets and never disturbs another document or connection.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from conftest import (
    NODE_DIR,
    LiveServer,
    NodePeer,
    eventually,
    open_node_peer,
    open_raw_peer,
    run_server,
    serve_app,
)
from websockets.asyncio.client import connect

from meshroom import Limits, RoomClient, Server, create_app
from meshroom.auth import Grant, JwtAuth, mint_token
from meshroom.protocol._hocuspocus import decode_frame, encode_frame
from meshroom.protocol._messages import encode_sync_step1, write_var_string

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

SECRET = "hocuspocus-tests-secret-of-32-bytes!!"


def token(pid: str, *grants: Grant, expires_in: float = 3600) -> str:
    return mint_token(
        secret=SECRET,
        grants=list(grants) or [Grant("team", ["*"])],
        participant_id=pid,
        name=pid.title(),
        expires_in=expires_in,
    )


@asynccontextmanager
async def hocuspocus_peer(base_url: str, **options: Any) -> AsyncIterator[NodePeer]:
    """A Node process with one Hocuspocus socket to `base_url` (providers attach on demand)."""
    args = ["node", "hocuspocus_peer.mjs", base_url, json.dumps(options)]
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


async def wait_doc(peer: NodePeer, name: str, predicate: Any, timeout: float = 20) -> dict:
    state = await peer.wait_for(
        lambda s: name in s["docs"] and predicate(s["docs"][name]), timeout=timeout
    )
    return state["docs"][name]


def events(peer: NodePeer, kind: str, name: str | None = None) -> list[dict]:
    return [
        e for e in peer.events if e.get("event") == kind and (name is None or e["name"] == name)
    ]


@asynccontextmanager
async def auth_server(**options: Any) -> AsyncIterator[LiveServer]:
    async with run_server(extensions=[JwtAuth(SECRET, leeway=0)], **options) as live:
        yield live


async def test_three_documents_on_one_socket_with_a_y_websocket_client(live_server):
    names = ["team/a", "team/b", "other/notes/c"]
    async with (
        hocuspocus_peer(live_server.base_url) as hp,
        open_node_peer(live_server.base_url, "team/a", {"id": "ws"}) as ws,
    ):
        for name in names:
            await hp.request("attach", name=name)
        for name in names:
            await wait_doc(hp, name, lambda d: d["synced"] and d["scope"] == "read-write")
        await ws.wait_event("synced")
        for index, name in enumerate(names):
            await hp.request("insert", name=name, text=f"[{index}]")
        await ws.request("insert", text="[ws]")
        a = await wait_doc(hp, "team/a", lambda d: "[ws]" in d["text"] and "[0]" in d["text"])
        await ws.wait_for(lambda s: s["text"] == a["text"])
        for index, name in enumerate(names[1:], start=1):
            await wait_doc(hp, name, lambda d, i=index: d["text"] == f"[{i}]" and d["unsynced"] == 0)
        # One socket: every document counts in its room, none leaked into another.
        server = live_server.server
        assert set(server.room_names()) == {"team", "other"}
        assert server.room("other").document_paths() == ["notes/c"]
        assert str(server.room("team").documents["b"].doc.get("t", type=_text())) == "[1]"


def _text() -> type:
    from pycrdt import Text

    return Text


async def test_the_bare_room_name_is_the_room_document(live_server):
    async with hocuspocus_peer(live_server.base_url) as hp:
        await hp.request("attach", name="team")
        await hp.request("attach", name="team/doc")
        await wait_doc(hp, "team", lambda d: d["synced"])
        room = live_server.server.room("team")
        await eventually(lambda: "doc" in (room.presence.entries("documents") or {}))


async def test_awareness_between_hocuspocus_and_y_websocket(live_server):
    async with (
        hocuspocus_peer(live_server.base_url) as hp,
        open_node_peer(live_server.base_url, "team/a", {"id": "ws"}) as ws,
    ):
        await hp.request("attach", name="team/a")
        await wait_doc(hp, "team/a", lambda d: d["synced"])
        await hp.request("awareness", name="team/a", state={"user": {"name": "Hoc"}})
        await ws.request("awareness", state={"user": {"name": "Web"}})
        await ws.wait_for(lambda s: any(p["state"].get("user", {}).get("name") == "Hoc" for p in s["peers"]))
        await wait_doc(hp, "team/a", lambda d: any(p.get("user", {}).get("name") == "Web" for p in d["peers"]))
        await hp.request("detach", name="team/a")  # CLOSE: its awareness leaves at once
        await ws.wait_for(lambda s: not any(p["state"].get("user", {}).get("name") == "Hoc" for p in s["peers"]), timeout=5)
