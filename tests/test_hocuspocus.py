"""Interop: the unmodified npm `@hocuspocus/provider` against the meshroom server.

Each test runs a real server (uvicorn with meshroom's transport, or the portable ASGI
path) and Node processes on `tests/node/hocuspocus_peer.mjs`: one Hocuspocus socket each,
with the providers a test attaches. They share documents, rooms, auth and presence with
y-websocket clients (`server_peer.mjs`) and Python `RoomClient`s. Bad input goes in
through raw sockets and never disturbs another document or connection.
"""

from __future__ import annotations

import json
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
            await wait_doc(
                hp, name, lambda d, i=index: d["text"] == f"[{i}]" and d["unsynced"] == 0
            )
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
        await ws.wait_for(
            lambda s: any(p["state"].get("user", {}).get("name") == "Hoc" for p in s["peers"])
        )
        await wait_doc(
            hp, "team/a", lambda d: any(p.get("user", {}).get("name") == "Web" for p in d["peers"])
        )
        await hp.request("detach", name="team/a")  # CLOSE: its awareness leaves at once
        await ws.wait_for(
            lambda s: not any(p["state"].get("user", {}).get("name") == "Hoc" for p in s["peers"]),
            timeout=5,
        )


async def test_auth_failure_then_recovery_on_the_same_socket():
    async with auth_server() as live, hocuspocus_peer(live.base_url) as hp:
        await hp.request("attach", name="team/a", token="not a token")
        await hp.request("attach", name="secret/b", token=token("ann"))  # no grant there
        await hp.request("attach", name="team/c", token=token("ann"))
        failed = await hp.wait_event("authenticationFailed")
        await wait_doc(hp, "team/c", lambda d: d["synced"] and d["authenticated"])
        await eventually(lambda: len(events(hp, "authenticationFailed")) == 2)
        reasons = {e["name"]: e["reason"] for e in events(hp, "authenticationFailed")}
        assert "token" in reasons["team/a"].lower() and failed["reason"]
        assert "secret" in reasons["secret/b"] or "grant" in reasons["secret/b"].lower()
        # The same provider retries with a good token: admitted, the socket never closed.
        await hp.request("token", name="team/a", token=token("ann"))
        await wait_doc(hp, "team/a", lambda d: d["synced"] and d["authenticated"])
        assert not events(hp, "disconnect")


async def test_read_only_gets_scope_readonly_and_refused_writes():
    reader = token("rita", Grant("team", ["*"], read_only=True))
    async with (
        auth_server() as live,
        hocuspocus_peer(live.base_url) as hp,
        hocuspocus_peer(live.base_url) as writer,
    ):
        await writer.request("attach", name="team/a", token=token("ann"))
        await wait_doc(writer, "team/a", lambda d: d["synced"])
        await writer.request("insert", name="team/a", text="from ann")
        await hp.request("attach", name="team/a", token=reader)
        doc = await wait_doc(hp, "team/a", lambda d: d["synced"] and d["text"] == "from ann")
        assert doc["scope"] == "readonly"
        await wait_doc(hp, "team/a", lambda d: d["unsynced"] == 0)  # its step 2 added nothing
        await hp.request("insert", name="team/a", text="!")
        await anyio.sleep(0.5)
        doc = await wait_doc(hp, "team/a", lambda d: True)
        assert doc["unsynced"] == 1  # SyncStatus 0: the write stays unsynced
        state = await writer.state()
        assert state["docs"]["team/a"]["text"] == "from ann"
        assert str(live.server.room("team").documents["a"].doc.get("t", type=_text())) == "from ann"


async def test_token_refresh_on_a_live_document():
    async with auth_server() as live, hocuspocus_peer(live.base_url) as hp:
        await hp.request("attach", name="team/a", token=token("ann", expires_in=3))
        await wait_doc(hp, "team/a", lambda d: d["synced"])
        await hp.request("token", name="team/a", token=token("ann", expires_in=3600))
        await eventually(lambda: len(events(hp, "authenticated", "team/a")) == 2)
        await anyio.sleep(3.5)  # past the first token's expiry: still served
        await hp.request("insert", name="team/a", text="still here")
        await wait_doc(hp, "team/a", lambda d: d["unsynced"] == 0)
        assert not events(hp, "close")
        # A token naming someone else is refused with a reason; the socket stays.
        await hp.request("attach", name="team/b", token=token("ann"))
        await wait_doc(hp, "team/b", lambda d: d["synced"])
        await hp.request("token", name="team/b", token=token("bob"))
        denied = await hp.wait_event("authenticationFailed")
        assert "another participant" in denied["reason"]
        closed = await hp.wait_event("close")
        assert closed["reason"].startswith("4403")
        await hp.request("insert", name="team/a", text="!")
        await wait_doc(hp, "team/a", lambda d: d["unsynced"] == 0)


async def test_reconnect_resyncs_every_document(free_port):
    async with (
        hocuspocus_peer(f"ws://127.0.0.1:{free_port}") as hp,
        run_server(port=free_port) as live,
    ):
        for name in ("team/a", "team/b", "team/c"):
            await hp.request("attach", name=name)
        for name in ("team/a", "team/b", "team/c"):
            await wait_doc(hp, name, lambda d: d["synced"])
        await hp.request("insert", name="team/b", text="before")
        await wait_doc(hp, "team/b", lambda d: d["unsynced"] == 0)
        await hp.request("disconnect")
        await hp.wait_event("disconnect")
        await hp.request("insert", name="team/b", text=" offline")
        await hp.request("connect")
        await eventually(lambda: len(events(hp, "synced", "team/c")) >= 2)
        await wait_doc(hp, "team/b", lambda d: d["unsynced"] == 0)
        room = live.server.room("team")
        assert str(room.documents["b"].doc.get("t", type=_text())) == "before offline"


async def test_stateless_posts_room_messages_and_carries_room_calls(live_server):
    async with (
        hocuspocus_peer(live_server.base_url) as hp,
        RoomClient(live_server.base_url, "team", id="agent", kind="agent") as agent,
    ):
        await hp.request("attach", name="team/a")
        await hp.request("attach", name="team")
        await wait_doc(hp, "team/a", lambda d: d["synced"])
        await wait_doc(hp, "team", lambda d: d["synced"])
        await hp.request(
            "stateless",
            name="team/a",
            payload=json.dumps({"type": "message", "text": "hi agent", "to": "agent"}),
        )
        await agent.wait_for(lambda: any(m.get("text") == "hi agent" for m in agent.messages))
        posted = next(m for m in agent.messages if m.get("text") == "hi agent")
        assert posted["to"] == "agent" and posted["from"].startswith("anonymous-")
        await agent.send_message("hello page", to=posted["from"])
        await eventually(
            lambda: any("hello page" in e["payload"] for e in events(hp, "stateless", "team/a"))
        )
        relayed = json.loads(
            next(
                e["payload"]
                for e in events(hp, "stateless", "team/a")
                if "hello page" in e["payload"]
            )
        )
        assert relayed["type"] == "message" and relayed["message"]["from"] == "agent"
        # Room calls are Stateless on the room document, as type 5 is for y-websocket.
        await hp.request(
            "stateless", name="team", payload=json.dumps({"type": "withdraw", "toolkit": "none"})
        )
        await eventually(
            lambda: any(
                '"withdrawn"' in e["payload"] or '"error"' in e["payload"]
                for e in events(hp, "stateless", "team")
            )
        )
        # On a document they are refused with an error, and a malformed message too.
        await hp.request("stateless", name="team/a", payload="not json")
        await eventually(
            lambda: any('"error"' in e["payload"] for e in events(hp, "stateless", "team/a"))
        )


def auth_frame(name: str, tok: str = "") -> bytes:
    return encode_frame(name, b"\x02\x00" + write_var_string(tok) + write_var_string("4.8.0"))


async def frames_until(peer: Any, predicate: Any, timeout: float = 10) -> tuple[str, int, bytes]:
    with anyio.fail_after(timeout):
        while True:
            frame = decode_frame(await peer.websocket.recv())
            if predicate(frame):
                return frame


async def test_bad_input_closes_only_what_sent_it(live_server):
    root = live_server.base_url + "/"
    async with (
        hocuspocus_peer(live_server.base_url) as honest,
        open_raw_peer(root) as bad,
        open_raw_peer(root) as mixed,
    ):
        await honest.request("attach", name="team/a")
        await wait_doc(honest, "team/a", lambda d: d["synced"])
        # BroadcastStateless from a client: that document is closed with a reason...
        for name in ("team/a", "team/b"):
            await mixed.send(auth_frame(name))
            await mixed.send(encode_frame(name, encode_sync_step1(b"\x00")))
        await frames_until(mixed, lambda f: f[0] == "team/b" and f[1] == 0)
        await mixed.send(encode_frame("team/a", b"\x06" + write_var_string("to all")))
        name, _kind, body = await frames_until(mixed, lambda f: f[1] == 7)
        assert name == "team/a" and b"4422" in body and b"BroadcastStateless" in body
        # ...and the other document of that socket still answers.
        await mixed.send(encode_frame("team/b", encode_sync_step1(b"\x00")))
        await frames_until(mixed, lambda f: f[0] == "team/b" and f[1] == 0 and f[2][:1] == b"\x01")
        # A frame that is no Hocuspocus frame at all: that socket only, 4422.
        await bad.send(b"\xff" * 12)
        code, reason = await bad.closed()
        assert code == 4422 and "Hocuspocus" in reason
        await honest.request("insert", name="team/a", text="fine")
        await wait_doc(honest, "team/a", lambda d: d["unsynced"] == 0)


async def test_frames_wait_for_their_auth_within_caps():
    limits = Limits(documents_per_socket=2, auth_timeout=1.0)
    async with run_server(limits=limits) as live, open_raw_peer(live.base_url + "/") as raw:
        # Sync step 1 before the auth message: held, answered only once admitted.
        await raw.send(encode_frame("team/a", encode_sync_step1(b"\x00")))
        await raw.send(encode_frame("team/b", encode_sync_step1(b"\x00")))
        await raw.send(auth_frame("team/c"))  # a third document: refused, the socket stays
        name, _kind, body = await frames_until(raw, lambda f: f[1] == 2)
        assert (name, body[:1]) == ("team/c", b"\x01") and b"2 documents" in body
        await raw.send(auth_frame("team/a"))
        await frames_until(raw, lambda f: f[0] == "team/a" and f[1] == 0 and f[2][:1] == b"\x01")
        # team/b never sent its auth message: refused after auth_timeout.
        name, _kind, body = await frames_until(
            raw, lambda f: f[1] == 2 and f[0] == "team/b", timeout=5
        )
        assert body[:1] == b"\x01" and b"no auth message" in body


async def test_the_portable_asgi_path_and_session_awareness(free_port):
    server = Server(grace_period=0.2)
    async with serve_app(create_app(server), free_port):
        base = f"ws://127.0.0.1:{free_port}"
        async with (
            hocuspocus_peer(base, sessionAwareness=True) as hp,
            open_node_peer(base, "team/a", {"id": "ws"}) as ws,
        ):
            await hp.request("attach", name="team/a")
            await wait_doc(hp, "team/a", lambda d: d["synced"])
            await hp.request("insert", name="team/a", text="asgi")
            await ws.wait_for(lambda s: s["text"] == "asgi")
            await wait_doc(hp, "team/a", lambda d: d["unsynced"] == 0)


async def test_y_websocket_urls_are_unchanged(live_server):
    async with connect(live_server.url("team", "a")) as websocket:
        first = await websocket.recv()
        assert first[:2] == b"\x02\x02"  # the authenticated message, as before
