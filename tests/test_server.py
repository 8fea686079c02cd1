"""The server over real sockets: sync, relay, awareness, hooks, auth, read-only, ASGI."""

from __future__ import annotations

import time
from typing import Any

import anyio
import httpx
import pycrdt
import pytest
from conftest import open_raw_peer, run_server, serve_app
from starlette.applications import Starlette
from starlette.routing import Mount

from meshroom import Access, AuthenticationError, CloseCode, Extension, Limits, Server, create_app
from meshroom.protocol._messages import (
    AuthMessage,
    AwarenessEntry,
    AwarenessMessage,
    SyncMessage,
    SyncStep,
    decode_authenticated,
    decode_awareness_update,
    decode_message,
    decode_permission_denied,
    encode_auth_token,
    encode_awareness,
    encode_awareness_update,
    encode_query_awareness,
    encode_sync_step1,
    encode_update,
)
from meshroom.server import connection_pair

pytestmark = pytest.mark.anyio


def text_update(content: str, client_id: int | None = None) -> bytes:
    doc = pycrdt.Doc(client_id=client_id)
    doc.get("t", type=pycrdt.Text).insert(0, content)
    return doc.get_update()


def text_of(update: bytes) -> str:
    doc = pycrdt.Doc()
    doc.apply_update(update)
    return str(doc.get("t", type=pycrdt.Text))


def awareness(client_id: int, clock: int, state: dict | None) -> bytes:
    return encode_awareness(encode_awareness_update([AwarenessEntry(client_id, clock, state)]))


def is_awareness(message: Any) -> bool:
    return isinstance(message, AwarenessMessage)


# -- sync -----------------------------------------------------------------------------------------


async def test_sync_handshake_and_relay(live_server):
    url = live_server.url("sync room", "doc.md")
    async with open_raw_peer(url) as ann, open_raw_peer(url) as bob:
        assert await ann.recv() == SyncMessage(SyncStep.STEP1, b"\x00")
        assert await bob.recv() == SyncMessage(SyncStep.STEP1, b"\x00")
        await ann.send(encode_update(text_update("hello", client_id=1)))
        relayed = await bob.recv()
        assert relayed.step == SyncStep.UPDATE
        assert text_of(relayed.payload) == "hello"
        # A late joiner's step 1 is answered with everything.
        async with open_raw_peer(url) as late:
            first = await late.recv()
            assert first.step == SyncStep.STEP1 and first.payload != b"\x00"
            await late.send(encode_sync_step1(b"\x00"))
            answer = await late.recv_until(lambda m: isinstance(m, SyncMessage))
            assert answer.step == SyncStep.STEP2
            assert text_of(answer.payload) == "hello"
        # The sender does not get its own update back: the next thing Ann sees is Bob's.
        await bob.send(encode_update(text_update("!", client_id=2)))
        echo = await ann.recv_until(lambda m: isinstance(m, SyncMessage))
        assert text_of(echo.payload) == "!"


async def test_awareness_echo_late_joiner_query_and_removal(live_server):
    url = live_server.url("aware", "doc")
    async with open_raw_peer(url) as ann:
        await ann.recv()  # step 1
        await ann.send(awareness(11, 1, {"user": {"name": "Ann"}}))
        # Echoed to the sender, as the Node server does (keeps idle clients connected).
        echo = await ann.recv_until(is_awareness)
        assert decode_awareness_update(echo.update) == [
            AwarenessEntry(11, 1, {"user": {"name": "Ann"}})
        ]
        # An older clock is not relayed.
        await ann.send(awareness(11, 0, {"user": {"name": "stale"}}))
        async with open_raw_peer(url) as bob:
            await bob.recv()  # step 1
            everyone = await bob.recv_until(is_awareness)
            assert decode_awareness_update(everyone.update) == [
                AwarenessEntry(11, 1, {"user": {"name": "Ann"}})
            ]
            await bob.send(encode_query_awareness())
            again = await bob.recv_until(is_awareness)
            assert decode_awareness_update(again.update)[0].client_id == 11
            await bob.send(awareness(22, 3, {"user": {"name": "Bob"}}))
            seen = await ann.recv_until(is_awareness)
            assert decode_awareness_update(seen.update) == [
                AwarenessEntry(22, 3, {"user": {"name": "Bob"}})
            ]
        # Bob left: his state is removed for everyone, with a newer clock.
        removed = await ann.recv_until(is_awareness)
        assert decode_awareness_update(removed.update) == [AwarenessEntry(22, 4, None)]


async def test_unknown_message_types_are_ignored(live_server):
    url = live_server.url("unknown", "doc")
    async with open_raw_peer(url) as peer:
        await peer.recv()
        await peer.send(b"\x09hello")
        await peer.send(b"\x7f")
        await peer.send(encode_auth_token("late token, ignored"))
        await peer.send(encode_sync_step1(b"\x00"))
        answer = await peer.recv_until(lambda m: isinstance(m, SyncMessage))
        assert answer.step == SyncStep.STEP2


# -- server-side documents and messages -----------------------------------------------------------


async def test_open_document_edits_reach_clients(live_server):
    server = live_server.server
    url = live_server.url("embed", "doc.md")
    async with open_raw_peer(url) as peer:
        await peer.recv()
        async with server.open_document("embed", "doc.md") as document:
            from meshdoc import MeshDocument

            assert isinstance(document, MeshDocument)
            text = document.doc.get("t", type=pycrdt.Text)
            with document.doc.transaction(origin="agent"):
                text.insert(0, "from the server")
        update = await peer.recv_until(lambda m: isinstance(m, SyncMessage))
        assert text_of(update.payload) == "from the server"
    # The client's edit shows in the server-side document too.
    async with open_raw_peer(url) as peer, server.open_document("embed", "doc.md") as document:
        await peer.recv()
        await peer.send(encode_update(text_update("client says hi ", client_id=77)))
        text = document.doc.get("t", type=pycrdt.Text)
        with anyio.fail_after(10):
            while "client says hi" not in str(text):
                await anyio.sleep(0.01)


async def test_send_message_reaches_the_room_document(live_server):
    server = live_server.server
    async with open_raw_peer(live_server.url("chat")) as peer:
        await peer.recv()
        message = await server.send_message("chat", "system", "hello room", to=None)
        assert message["text"] == "hello room" and message["from"] == "system"
        update = await peer.recv_until(lambda m: getattr(m, "step", None) == SyncStep.UPDATE)
        doc = pycrdt.Doc()
        doc.apply_update(update.payload)
        assert doc.get("messages", type=pycrdt.Array).to_py()[-1]["text"] == "hello room"
    with pytest.raises(ValueError, match="exactly one of 'text' or 'json'"):
        await server.send_message("chat", "system")
    with pytest.raises(ValueError, match="room name"):
        await server.send_message("", "system", "x")


# -- hooks ----------------------------------------------------------------------------------------


class Recorder(Extension):
    """Records every hook call as (name, priority, details)."""

    def __init__(self, priority: int, calls: list) -> None:
        self.priority = priority
        self.calls = calls

    def record(self, name: str, *details: Any) -> None:
        self.calls.append((name, self.priority, *details))

    async def on_startup(self) -> None:
        self.record("startup")

    async def on_shutdown(self) -> None:
        self.record("shutdown")

    async def on_authenticate(self, payload):
        self.record("authenticate", payload.room, payload.path)

    async def on_load_document(self, payload):
        self.record("load", payload.room, payload.path)
        if self.priority == 200:
            payload.doc.get("t", type=pycrdt.Text).insert(0, "stored ")

    async def on_change(self, payload):
        self.record("change", payload.path, type(payload.origin).__name__)

    async def on_store_document(self, payload):
        self.record(
            "store", payload.path, payload.reason, str(payload.doc.get("t", type=pycrdt.Text))
        )

    async def on_connect(self, payload):
        self.record("connect", payload.path, payload.access.participant_id)

    async def on_disconnect(self, payload):
        self.record("disconnect", payload.path, payload.access.participant_id)


async def test_hooks_are_called_in_priority_order(server_factory):
    calls: list = []
    extensions = [Recorder(50, calls), Recorder(200, calls), Recorder(100, calls)]
    async with server_factory(extensions=extensions, grace_period=0.05) as live:
        url = live.url("hooks", "doc.md", id="ann")
        async with open_raw_peer(url) as peer:
            first = await peer.recv()
            assert first.step == SyncStep.STEP1
            await peer.send(encode_sync_step1(b"\x00"))
            loaded = await peer.recv_until(lambda m: isinstance(m, SyncMessage))
            assert text_of(loaded.payload) == "stored "  # loaded before any client syncs
            await peer.send(encode_update(text_update("typed", client_id=5)))
            with anyio.fail_after(10):
                while not any(call[0] == "change" for call in calls):
                    await anyio.sleep(0.01)
        with anyio.fail_after(10):
            while not any(call[0] == "store" for call in calls):
                await anyio.sleep(0.01)
    by_hook: dict[str, list] = {}
    for call in calls:
        by_hook.setdefault(call[0], []).append(call)
    for hook in ("startup", "authenticate", "load", "change", "connect", "disconnect", "store"):
        assert [c[1] for c in by_hook[hook]] == [200, 100, 50], hook
    assert [c[1] for c in by_hook["shutdown"]] == [50, 100, 200]  # reverse order, like exits
    assert by_hook["load"][0][2:] == ("hooks", "doc.md")
    assert by_hook["change"][0][2:] == ("doc.md", "Session")
    assert by_hook["connect"][0][2:] == ("doc.md", "ann")
    assert by_hook["store"][0][2:4] == ("doc.md", "room-close")
    assert "typed" in by_hook["store"][0][4]
    names = [c[0] for c in calls]
    assert names.index("load") < names.index("connect") < names.index("change")
    assert names.index("disconnect") < names.index("store") < names.index("shutdown")


# -- authentication -------------------------------------------------------------------------------


class TokenAuth(Extension):
    requires_token = True

    async def on_authenticate(self, payload):
        if payload.token == "good":
            return Access(participant_id="tok", name="Token", kind="agent")
        if payload.token == "viewer":
            return Access(participant_id="viewer", read_only=True)
        if payload.token == "banned":
            raise AuthenticationError("banned from this room", code=CloseCode.FORBIDDEN)
        return None


@pytest.mark.parametrize("how", ["query", "header", "message"])
async def test_token_ways(server_factory, how):
    async with server_factory(extensions=[TokenAuth()]) as live:
        if how == "query":
            context = open_raw_peer(live.url("auth", "doc", token="good"))
        elif how == "header":
            headers = {"Authorization": "Bearer good"}
            context = open_raw_peer(live.url("auth", "doc"), additional_headers=headers)
        else:
            context = open_raw_peer(live.url("auth", "doc"))
        async with context as peer:
            if how == "message":
                await peer.send(encode_auth_token("good"))  # the first message
                await peer.send(encode_sync_step1(b"\x00"))
            assert (await peer.recv()).step == SyncStep.STEP1
            if how == "message":
                answer = await peer.recv_until(lambda m: isinstance(m, SyncMessage))
                assert answer.step == SyncStep.STEP2
            room = live.server.room("auth")
            assert room is not None
            assert room.participants()["tok"]["kind"] == "agent"


@pytest.mark.parametrize(
    ("token", "code", "reason"),
    [
        ("wrong", CloseCode.UNAUTHENTICATED, "token not accepted"),
        ("banned", CloseCode.FORBIDDEN, "banned from this room"),
    ],
)
async def test_refused_before_any_content(server_factory, token, code, reason):
    async with server_factory(extensions=[TokenAuth()]) as live:
        async with open_raw_peer(live.url("auth", "doc", token=token)) as peer:
            denied = await peer.recv()
            assert isinstance(denied, AuthMessage)
            assert decode_permission_denied(denied.body) == reason
            assert await peer.closed() == (code, reason)
        assert live.server.room_names() == []


async def test_auth_timeout(server_factory):
    limits = Limits(auth_timeout=0.3)
    async with (
        server_factory(extensions=[TokenAuth()], limits=limits) as live,
        open_raw_peer(live.url("auth", "doc")) as peer,
    ):
        code, reason = await peer.closed()  # a client that says nothing at all
        assert code == CloseCode.AUTH_TIMEOUT and "no token" in reason


async def test_a_client_without_a_token_is_refused_at_once(server_factory):
    """y-websocket opens with sync step 1: no token can follow, so waiting is pointless."""
    async with (
        server_factory(extensions=[TokenAuth()], limits=Limits(auth_timeout=30)) as live,
        open_raw_peer(live.url("auth", "doc")) as peer,
    ):
        started = time.monotonic()
        await peer.send(encode_sync_step1(b"\x00"))
        code, reason = await peer.closed()
        assert code == CloseCode.UNAUTHENTICATED and reason.startswith("token required")
        assert time.monotonic() - started < 2


async def test_pre_auth_bytes_are_capped(server_factory):
    limits = Limits(pre_auth_bytes=1000)
    async with (
        server_factory(extensions=[TokenAuth()], limits=limits) as live,
        open_raw_peer(live.url("auth", "doc")) as peer,
    ):
        await peer.send(encode_auth_token("x" * 2000))  # a first message over the cap
        code, reason = await peer.closed()
        assert code == CloseCode.UNAUTHENTICATED and "before authenticating" in reason


async def test_open_access_identity_from_query(live_server):
    url = live_server.url("open", "", id="ann", name="Ann", kind="agent")
    async with open_raw_peer(url) as peer:
        await peer.recv()
        room = live_server.server.room("open")
        assert room is not None
        entry = room.participants()["ann"]
        assert (entry["name"], entry["kind"]) == ("Ann", "agent")
    async with open_raw_peer(live_server.url("open", "", kind="robot")) as peer:
        code, reason = await peer.closed()
        assert code == CloseCode.PROTOCOL_ERROR and "'kind' must be" in reason


async def test_read_only_writes_are_dropped_then_closed(server_factory):
    limits = Limits(read_only_violations=2)
    async with server_factory(extensions=[TokenAuth()], limits=limits) as live:
        writer_url = live.url("ro", "doc", token="good")
        viewer_url = live.url("ro", "doc", token="viewer")
        async with open_raw_peer(writer_url) as writer, open_raw_peer(viewer_url) as viewer:
            await writer.recv()
            await viewer.recv()
            # The viewer's sync step 1 is answered and its awareness relayed...
            await viewer.send(encode_sync_step1(b"\x00"))
            assert (await viewer.recv_until(lambda m: isinstance(m, SyncMessage))).step == 1
            await viewer.send(awareness(5, 1, {"user": {"name": "viewer"}}))
            relayed = await writer.recv_until(is_awareness)
            assert decode_awareness_update(relayed.update)[0].client_id == 5
            # ...but its writes are never applied.
            for index in range(3):
                await viewer.send(encode_update(text_update(f"nope{index}", client_id=90 + index)))
            code, reason = await viewer.closed()
            assert code == CloseCode.READ_ONLY_VIOLATION and "read-only" in reason
        async with live.server.open_document("ro", "doc") as document:
            assert str(document.doc.get("t", type=pycrdt.Text)) == ""


# -- ASGI -----------------------------------------------------------------------------------------


async def test_healthz(live_server):
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{live_server.http_url}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "rooms": 0}


async def test_healthz_of_an_auth_server_tells_an_anonymous_caller_nothing_more():
    async with (
        run_server(extensions=[TokenAuth()]) as live,
        httpx.AsyncClient() as client,
        open_raw_peer(live.url("secret-room", "doc", token="good")) as peer,
    ):
        await peer.recv()
        response = await client.get(f"{live.http_url}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_mounted_in_another_app():
    server = Server(grace_period=0.05)
    parent = Starlette(routes=[Mount("/collab", app=create_app(server))], lifespan=server.lifespan)
    async with (
        serve_app(parent) as port,
        open_raw_peer(f"ws://127.0.0.1:{port}/collab/my%20room/a.md") as peer,
    ):
        assert (await peer.recv()).step == SyncStep.STEP1
        assert server.room_names() == ["my room"]
        assert server.room("my room").document_paths() == ["a.md"]


@pytest.mark.parametrize("api", ["context_manager", "start_stop"])
async def test_in_memory_connections_and_both_apis(api):
    server = Server(grace_period=0.01)
    async with anyio.create_task_group() as group:
        if api == "context_manager":
            await server.__aenter__()
        else:
            await group.start(server.start)
        server_side, client_side = connection_pair()
        group.start_soon(server.serve, server_side, "/memory/doc")
        scope, identity = decode_authenticated(decode_message(await client_side.recv()).body)
        assert scope == "read-write" and identity["id"].startswith("anonymous-")
        assert decode_message(await client_side.recv()).step == SyncStep.STEP1
        await client_side.send(encode_update(text_update("in memory", client_id=3)))
        async with server.open_document("memory", "doc") as document:
            text = document.doc.get("t", type=pycrdt.Text)
            with anyio.fail_after(5):
                while str(text) != "in memory":
                    await anyio.sleep(0.01)
        await client_side.close()
        if api == "context_manager":
            await server.__aexit__(None, None, None)
        else:
            await server.stop()
    with pytest.raises(Exception, match="only be started once"):
        async with server:
            pass


def test_queued_updates_are_coalesced_in_order():
    from meshroom.protocol._merge import coalesce_updates

    source = pycrdt.Doc(client_id=8)
    text = source.get("t", type=pycrdt.Text)
    updates = []
    for word in ("one ", "two ", "three "):
        state = source.get_state()
        text += word
        updates.append(source.get_update(state))
    presence = awareness(1, 1, {"a": 1})
    batch = [encode_update(updates[0]), encode_update(updates[1]), presence]
    batch.append(encode_update(updates[2]))
    frames = coalesce_updates(batch)
    assert len(frames) == 3 and frames[1] == presence and frames[2] == batch[3]
    target = pycrdt.Doc()
    for frame in frames:
        message = decode_message(frame)
        if isinstance(message, SyncMessage):
            target.apply_update(message.payload)
    assert str(target.get("t", type=pycrdt.Text)) == "one two three "
    assert coalesce_updates([presence]) == [presence]


async def test_explicit_store_and_server_side_origin(server_factory):
    calls: list = []
    async with server_factory(extensions=[Recorder(100, calls)]) as live:
        server = live.server
        async with server.open_document("explicit", "doc", origin="my-agent") as document:
            document.root.append_child("paragraph").append_text("through meshdoc")
            await server.store("explicit")
            with pytest.raises(KeyError, match="not open"):
                await server.store("nowhere")
        assert ("store", 100, "doc", "explicit", "") in calls
        assert ("change", 100, "doc", "str") in calls  # the origin reached on_change


class BrokenAuth(Extension):
    async def on_authenticate(self, payload):
        if payload.room == "broken":
            raise RuntimeError("bug in an extension")
        return None


async def test_a_failing_hook_closes_only_that_connection(server_factory):
    async with server_factory(extensions=[BrokenAuth()]) as live:
        async with open_raw_peer(live.url("broken", "doc")) as peer:
            code, reason = await peer.closed()
        assert code == 1011 and "RuntimeError" in reason
        async with open_raw_peer(live.url("fine", "doc")) as peer:
            assert (await peer.recv()).step == SyncStep.STEP1
