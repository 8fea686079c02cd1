"""RoomClient against the real meshroom server over real sockets on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import anyio
import pytest
from conftest import LiveServer, free_port
from pycrdt import Text

from meshroom import (
    Access,
    AuthenticatePayload,
    AuthenticationError,
    ClientError,
    ClientState,
    CloseCode,
    Extension,
    RoomClient,
    RoomNameError,
)
from meshroom.client import Backoff

pytestmark = pytest.mark.anyio

FAST = Backoff(initial=0.05, factor=2.0, maximum=0.3, jitter=0.5)


@pytest.fixture
def url(live_server: LiveServer) -> str:
    return live_server.base_url


def text_of(room: RoomClient, path: str) -> Text:
    return room.ydoc(path).get("text", type=Text)


async def test_two_clients_converge(url: str) -> None:
    async with (
        RoomClient(url, "team", name="Ann") as ann,
        RoomClient(url, "team", name="Bob") as bob,
    ):
        ann_text = (await ann.open_ydoc("notes/plan")).get("text", type=Text)
        bob_text = (await bob.open_ydoc("notes/plan")).get("text", type=Text)
        ann_text += "Ann writes. "
        bob_text += "Bob writes. "
        with anyio.fail_after(5):
            await ann.wait_for(lambda: "Bob" in str(ann_text) and "Ann" in str(ann_text))
            await bob.wait_for(lambda: str(bob_text) == str(ann_text))
        assert sorted(str(ann_text).split(". ")) == ["", "Ann writes", "Bob writes"]
        # a third peer joining late gets the whole document in its first sync
        async with RoomClient(url, "team", name="Cid") as cid:
            late = (await cid.open_ydoc("notes/plan")).get("text", type=Text)
            assert str(late) == str(ann_text)


async def test_participants_and_messages(url: str) -> None:
    async with (
        RoomClient(url, "team", name="Ann", id="ann") as ann,
        RoomClient(url, "team", name="Helper", kind="agent", id="bot") as bot,
    ):
        with anyio.fail_after(5):
            await ann.wait_for(lambda: {"ann", "bot"} <= set(ann.participants))
        assert ann.participants["bot"]["name"] == "Helper"
        assert ann.participants["bot"]["kind"] == "agent"
        assert ann.participants["ann"]["kind"] == "person"

        await ann.send_message("hello everyone")
        await bot.send_message({"done": True, "items": [1, 2]}, to="ann")
        with anyio.fail_after(5):
            await ann.wait_for(lambda: len(ann.messages) == 2)
            await bot.wait_for(lambda: len(bot.messages) == 2)
        by_sender = {message["from"]: message for message in ann.messages}
        assert by_sender["ann"]["text"] == "hello everyone"
        assert by_sender["ann"]["to"] is None
        assert by_sender["bot"]["json"] == {"done": True, "items": [1, 2]}
        assert by_sender["bot"]["to"] == "ann"
        assert bot.messages == ann.messages

        await bot.stop()
        with anyio.fail_after(5):
            await ann.wait_for(lambda: "bot" not in ann.participants)


async def test_awareness_published_and_seen(url: str) -> None:
    path = "notes/plan"
    async with (
        RoomClient(url, "team", name="Ann", id="ann") as ann,
        RoomClient(url, "team", name="Bob", id="bob") as bob,
    ):
        await ann.open_ydoc(path)
        await bob.open_ydoc(path)
        ann.set_awareness(path, {"cursor": {"anchor": 1, "head": 4}})
        ann_id = ann.client_id(path)

        def bob_sees_cursor() -> bool:
            state = bob.awareness(path).get(ann_id)
            return state is not None and state.get("cursor") == {"anchor": 1, "head": 4}

        with anyio.fail_after(5):
            await bob.wait_for(bob_sees_cursor)
        assert bob.awareness(path)[ann_id]["user"] == {"id": "ann", "name": "Ann", "kind": "person"}
        # room-level awareness is separate from the document's
        with anyio.fail_after(5):
            await bob.wait_for(lambda: ann.client_id("") in bob.awareness(""))
        assert "cursor" not in bob.awareness("")[ann.client_id("")]
        await ann.close_document(path)
        with anyio.fail_after(5):
            await bob.wait_for(lambda: ann_id not in bob.awareness(path))


ServerFactory = Callable[..., AbstractAsyncContextManager[LiveServer]]


async def test_reconnect_after_server_restart_does_not_duplicate(
    server_factory: ServerFactory,
) -> None:
    port = free_port()
    url = f"ws://127.0.0.1:{port}"
    path = "notes/plan"
    async with anyio.create_task_group() as group:
        ann = RoomClient(url, "team", name="Ann", backoff=FAST)
        bob = RoomClient(url, "team", name="Bob", backoff=FAST)
        async with server_factory(port=port):
            await group.start(ann.start)
            await group.start(bob.start)
            ann_text = (await ann.open_ydoc(path)).get("text", type=Text)
            bob_text = (await bob.open_ydoc(path)).get("text", type=Text)
            ann_text += "before. "
            with anyio.fail_after(5):
                await bob.wait_for(lambda: str(bob_text) == "before. ")
        # the server is gone: both edit offline
        with anyio.fail_after(5):
            await ann.wait_for(lambda: not ann.connected)
            await bob.wait_for(lambda: not bob.connected)
        ann_text += "ann offline. "
        bob_text.insert(0, "bob offline. ")
        async with server_factory(port=port):  # a fresh, empty server on the same port
            with anyio.fail_after(10):
                await ann.wait_for(lambda: ann.connections(path) == 2 and ann.connected)
                await bob.wait_for(lambda: bob.connections(path) == 2 and bob.connected)
                await ann.wait_for(
                    lambda: str(ann_text) == str(bob_text) and "bob" in str(ann_text)
                )
            final = str(ann_text)
            for piece in ("before. ", "ann offline. ", "bob offline. "):
                assert final.count(piece) == 1, final
            assert len(final) == len("before. ann offline. bob offline. ")
            # a newcomer sees exactly the same, once
            async with RoomClient(url, "team", name="Cid") as cid:
                assert str((await cid.open_ydoc(path)).get("text", type=Text)) == final
            await ann.stop()
            await bob.stop()
    assert ann.state is ClientState.CLOSED


class Refuse(Extension):
    requires_token = True

    async def on_authenticate(self, payload: AuthenticatePayload) -> None:
        if payload.token != "good":
            raise AuthenticationError("this room is private", code=4403)
        return None


async def test_refused_connection_raises_client_error(server_factory: ServerFactory) -> None:
    async with server_factory(extensions=[Refuse()]) as live:
        client = RoomClient(live.base_url, "private", name="Eve", token="bad")
        with pytest.raises(ClientError) as refused:
            async with client:
                pass
        assert refused.value.code == 4403
        assert client.state is ClientState.CLOSED


async def test_unreachable_server_raises_client_error() -> None:
    url = f"ws://127.0.0.1:{free_port()}"  # nothing listens there
    client = RoomClient(url, "team", connect_timeout=0.5, backoff=FAST)
    with pytest.raises(ClientError, match="cannot connect"):
        async with client:
            pass


async def test_an_unreachable_server_fails_at_the_connect_timeout_not_a_backoff_later() -> None:
    """The default backoff reaches delays of seconds: none may run past the deadline."""
    url = f"ws://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(ClientError, match="cannot connect"):
        async with RoomClient(url, "team", connect_timeout=2.0):
            pass
    assert time.monotonic() - started < 2.5


async def test_a_server_that_accepts_and_closes_fails_at_the_connect_timeout() -> None:
    """A socket closed before the first sync is retried, but its backoff sleep (30 s
    here) is cut at the connect deadline like a refused connection's."""
    from websockets.asyncio.server import ServerConnection, serve

    accepted = 0

    async def accept_and_close(websocket: ServerConnection) -> None:
        nonlocal accepted
        accepted += 1
        await websocket.close(1011, "not today")

    slow = Backoff(initial=30.0, factor=1.0, maximum=30.0, jitter=0.0)
    port = free_port()
    async with serve(accept_and_close, "127.0.0.1", port):
        client = RoomClient(f"ws://127.0.0.1:{port}", "team", connect_timeout=1.0, backoff=slow)
        started = time.monotonic()
        with pytest.raises(ClientError):  # closed, or not synced, by the deadline
            async with client:
                pass
        elapsed = time.monotonic() - started
    assert accepted >= 1
    assert elapsed < 10, f"gave up after {elapsed:.1f} s: a backoff sleep ran past 1 s"


async def test_clean_close_and_no_reuse(url: str) -> None:
    watcher = RoomClient(url, "team", name="Watcher", id="watcher")
    async with watcher, anyio.create_task_group() as group:
        ann = RoomClient(url, "team", name="Ann", id="ann")
        await group.start(ann.start)  # the start/stop API
        await ann.open_ydoc("doc")
        await watcher.open_ydoc("doc")
        with anyio.fail_after(5):
            await watcher.wait_for(lambda: "ann" in watcher.participants)
            await watcher.wait_for(lambda: len(watcher.awareness("doc")) == 2)
        text_of(ann, "doc").insert(0, "last words")
        await ann.stop()  # flushes the edit, withdraws awareness, closes with 1000
        assert ann.state is ClientState.CLOSED
        with anyio.fail_after(5):
            await watcher.wait_for(lambda: str(text_of(watcher, "doc")) == "last words")
            await watcher.wait_for(lambda: "ann" not in watcher.participants)
            await watcher.wait_for(lambda: len(watcher.awareness("doc")) == 1)
        with pytest.raises(RuntimeError, match="more than once"):
            async with ann:
                pass
        with pytest.raises(ClientError, match="closed"):
            await ann.send_message("too late")


async def test_bad_input_is_refused_and_changes_nothing(url: str) -> None:
    with pytest.raises(ValueError, match="ws://"):
        RoomClient("http://127.0.0.1:1", "team")
    with pytest.raises(ValueError, match="kind"):
        RoomClient(url, "team", kind="robot")  # type: ignore[arg-type]
    with pytest.raises(RoomNameError):
        RoomClient(url, "a/b")
    async with RoomClient(url, "team", name="Ann") as ann:
        with pytest.raises(ValueError, match="JSON"):
            await ann.send_message({"when": object()})
        with pytest.raises(ValueError, match="participant id"):
            await ann.send_message("hi", to="")
        with pytest.raises(RoomNameError):
            await ann.open_ydoc("notes/../secrets")
        with pytest.raises(ValueError, match="dict"):
            ann.set_awareness("", ["cursor"])  # type: ignore[arg-type]
        with pytest.raises(ClientError, match="not open"):
            ann.set_awareness("never/opened", {"cursor": 1})
        before = ann.awareness("")[ann.client_id("")]
        with pytest.raises(ValueError, match="JSON"):
            ann.set_awareness("", {"cursor": float("nan")})
        assert ann.awareness("")[ann.client_id("")] == before
        assert ann.messages == []


async def test_open_returns_a_synced_mesh_document(url: str) -> None:
    async with (
        RoomClient(url, "team", name="Ann") as ann,
        RoomClient(url, "team", name="Bob") as bob,
    ):
        ann_doc = await ann.open("notes/plan")
        ann_doc.root.append_child("paragraph").append_text("written before Bob came")
        bob_doc = await bob.open("notes/plan")  # returns after the first sync
        assert bob_doc.to_json() == ann_doc.to_json()
        assert "written before Bob came" in str(bob_doc.to_json())
        assert await bob.open("notes/plan") is bob_doc
        assert bob.open_documents == {"notes/plan": bob_doc}
        heading = bob_doc.root.append_child("heading")
        with anyio.fail_after(5):
            await ann.wait_for(lambda: heading.id in str(ann_doc.to_json()))
        assert ann_doc.to_json() == bob_doc.to_json()


async def test_dropped_socket_resyncs_without_duplicates(live_server: LiveServer) -> None:
    url, path = live_server.base_url, "notes/plan"
    slow_return = Backoff(initial=0.5, maximum=0.5, jitter=0.0)  # time to edit offline
    async with (
        RoomClient(url, "team", name="Ann", id="ann", backoff=slow_return) as ann,
        RoomClient(url, "team", name="Bob", id="bob") as bob,
    ):
        ann_text = (await ann.open_ydoc(path)).get("text", type=Text)
        bob_text = (await bob.open_ydoc(path)).get("text", type=Text)
        ann_text += "one. "
        with anyio.fail_after(5):
            await bob.wait_for(lambda: str(bob_text) == "one. ")
        room = live_server.server.room("team")
        assert room is not None
        for session in room.sessions:
            if session.access.participant_id == "ann" and session.document.path == path:
                session.kill(CloseCode.RATE_LIMITED, "slow down")  # transient: retried
        with anyio.fail_after(5):
            await ann.wait_for(lambda: not ann.connected)
        ann_text += "two. "  # offline
        bob_text += "three. "  # online: the server has it, Ann gets it on resync
        with anyio.fail_after(5):
            await ann.wait_for(lambda: ann.connections(path) == 2 and ann.connected)
            await bob.wait_for(lambda: str(bob_text) == str(ann_text) and "two" in str(bob_text))
        for piece in ("one. ", "two. ", "three. "):
            assert str(bob_text).count(piece) == 1, str(bob_text)
        assert len(str(bob_text)) == len("one. two. three. ")


class Gate(Extension):
    """Admits the tokens in `allowed`; a restarted server can revoke them."""

    requires_token = True

    def __init__(self, *allowed: str) -> None:
        self.allowed = set(allowed)

    async def on_authenticate(self, payload: AuthenticatePayload) -> Access:
        if payload.token not in self.allowed:
            raise AuthenticationError("token revoked", code=4401)
        return Access(participant_id="ann", name="Ann")


async def test_refusal_on_reconnect_surfaces_in_wait_for(server_factory: ServerFactory) -> None:
    port = free_port()
    url = f"ws://127.0.0.1:{port}"
    async with anyio.create_task_group() as group:
        ann = RoomClient(url, "team", name="Ann", token="good", backoff=FAST)
        async with server_factory(port=port, extensions=[Gate("good")]):
            await group.start(ann.start)
            await ann.open_ydoc("notes/plan")
        async with server_factory(port=port, extensions=[Gate()]):
            with anyio.fail_after(10), pytest.raises(ClientError) as refused:
                await ann.wait_for(lambda: False)
            assert refused.value.code == 4401
            assert "good" not in str(refused.value)  # the token never shows in messages
            await ann.stop()


def test_backoff_grows_caps_and_jitters() -> None:
    delays = Backoff(initial=0.1, factor=2.0, maximum=1.0, jitter=0.0).delays()
    assert [round(next(delays), 6) for _ in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    jittered = Backoff(initial=1.0, factor=1.0, maximum=1.0, jitter=0.5).delays()
    samples = [next(jittered) for _ in range(200)]
    assert all(0.5 <= delay <= 1.0 for delay in samples)
    assert len(set(samples)) > 100  # spread, not one value
    for bad in ({"initial": -1}, {"factor": 0.5}, {"jitter": 1.5}):
        with pytest.raises(ValueError):
            Backoff(**bad)  # type: ignore[arg-type]


async def test_garbage_from_the_server_reconnects_instead_of_crashing() -> None:
    from websockets.asyncio.server import ServerConnection, serve

    attempts: list[str] = []
    empty_step2 = b"\x00\x01\x02\x00\x00"  # sync step 2 carrying an empty update

    async def handler(websocket: ServerConnection) -> None:
        attempts.append(websocket.request.path if websocket.request else "")
        if len(attempts) == 1:
            await websocket.send(b"\x00\x02\x04\xff\xff\xff\xff")  # an update that is not Yjs
        else:
            await websocket.send(empty_step2)
        async for _ in websocket:
            pass

    async with serve(handler, "127.0.0.1", 0, compression=None) as raw:
        port = raw.sockets[0].getsockname()[1]
        async with RoomClient(f"ws://127.0.0.1:{port}", "team", backoff=FAST) as client:
            assert client.connected
            assert client.connections("") == 1
        assert len(attempts) == 2


async def test_room_document_starts_afresh_with_a_restarted_server(
    server_factory: ServerFactory,
) -> None:
    port = free_port()
    url = f"ws://127.0.0.1:{port}"

    def texts(room: RoomClient) -> list[str]:
        return [message.get("text") for message in room.messages]

    async with anyio.create_task_group() as group:
        ann = RoomClient(url, "team", name="Ann", id="ann", backoff=FAST)
        bob = RoomClient(url, "team", name="Bob", id="bob", backoff=FAST)
        carol = RoomClient(url, "team", name="Carol", id="carol", backoff=FAST)
        async with server_factory(port=port):
            for client in (ann, bob, carol):
                await group.start(client.start)
            await ann.send_message("before the restart")
            with anyio.fail_after(5):
                await bob.wait_for(lambda: len(bob.participants) == 3 and len(bob.messages) == 1)
        with anyio.fail_after(5):
            await ann.wait_for(lambda: not ann.connected)
        await carol.stop()  # leaves during the outage: never seen by the new server
        await ann.send_message("sent offline")  # waits for the next handshake
        async with server_factory(port=port):  # presence is ephemeral: a new, empty room
            with anyio.fail_after(10):
                await bob.wait_for(lambda: texts(bob) == ["sent offline"])
                await ann.wait_for(lambda: set(ann.participants) == {"ann", "bob"})
            await bob.send_message("after the restart")
            with anyio.fail_after(5):
                await ann.wait_for(lambda: texts(ann) == ["sent offline", "after the restart"])
            assert ann.connections("") == bob.connections("") == 2
            await ann.stop()
            await bob.stop()
