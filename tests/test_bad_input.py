"""Bad input closes only the offending socket: the room and every other client carry on."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import anyio
import pycrdt
import pytest
import uvicorn
from conftest import LiveServer, free_port, open_raw_peer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from meshroom import CloseCode, Limits, Server, create_app
from meshroom.protocol._messages import (
    AwarenessEntry,
    SyncMessage,
    SyncStep,
    decode_message,
    encode_awareness,
    encode_awareness_update,
    encode_sync_step1,
    encode_sync_step2,
    encode_update,
)

#: What a bad peer may be closed with; anything else (or a server crash) fails.
EXPECTED_CLOSES = {CloseCode.PROTOCOL_ERROR, CloseCode.MESSAGE_TOO_BIG, CloseCode.RATE_LIMITED}


def text_update(content: str, client_id: int) -> bytes:
    doc = pycrdt.Doc(client_id=client_id)
    doc.get("t", type=pycrdt.Text).insert(0, content)
    return doc.get_update()


# -- a server in a thread, for the synchronous property test ---------------------------------------


@pytest.fixture(scope="module")
def threaded_server() -> Iterator[LiveServer]:
    server = Server(grace_period=0.2, limits=Limits(max_message_size=4096))
    port = free_port()
    config = uvicorn.Config(
        create_app(server),
        host="127.0.0.1",
        port=port,
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        log_level="error",
    )
    runner = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(runner.serve()), daemon=True)
    thread.start()
    for _ in range(2000):
        if runner.started:
            break
        threading.Event().wait(0.01)
    assert runner.started
    yield LiveServer(server, port)
    runner.should_exit = True
    thread.join(timeout=20)


class GoodPeer:
    """A well-behaved client in the same document, checking the room still works."""

    def __init__(self, websocket: ClientConnection) -> None:
        self.websocket = websocket
        self.doc = pycrdt.Doc()
        self.text = self.doc.get("t", type=pycrdt.Text)

    def pump(self, until: str, timeout: float = 10) -> None:
        while until not in str(self.text):
            message = decode_message(self.websocket.recv(timeout=timeout))
            if isinstance(message, SyncMessage) and message.step != SyncStep.STEP1:
                self.doc.apply_update(message.payload)

    def write(self, content: str) -> None:
        state = self.doc.get_state()
        self.text += content
        self.websocket.send(encode_update(self.doc.get_update(state)))


_known_prefixes = st.sampled_from(
    [
        encode_update(text_update("abc", 5)),
        encode_sync_step2(text_update("xyz", 6)),
        encode_sync_step1(b"\x01\x05\x03"),
        encode_awareness(encode_awareness_update([AwarenessEntry(7, 1, {"a": 1})])),
        b"\x02",
        b"\x03",
    ]
)
_frames = st.one_of(
    st.binary(max_size=64),
    st.tuples(_known_prefixes, st.integers(0, 40)).map(lambda p: p[0][: p[1]]),
    st.tuples(_known_prefixes, st.binary(max_size=16)).map(lambda p: p[0][:3] + p[1]),
    st.tuples(st.sampled_from([b"\x00\x00", b"\x00\x01", b"\x00\x02", b"\x01"]),
              st.binary(max_size=32)).map(lambda p: p[0] + p[1]),
    st.just(b"\x00\x02" + b"\xff" * 5000),  # over max_message_size
)  # fmt: skip


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(frames=st.lists(_frames, min_size=1, max_size=6))
def test_garbage_closes_only_the_offender(threaded_server, frames):
    url = threaded_server.url("fuzz", "doc")
    with connect(url, compression=None) as first, connect(url, compression=None) as second:
        ann, bob = GoodPeer(first), GoodPeer(second)
        with connect(url, compression=None) as bad:
            for frame in frames:
                try:
                    bad.send(frame)
                except ConnectionClosed:
                    break
            # The room still relays between well-behaved peers, whatever the offender did.
            marker = f"<{len(frames)}:{sum(map(len, frames))}>"
            ann.write(marker)
            bob.pump(marker)
            try:
                while True:
                    bad.recv(timeout=0.05)
            except TimeoutError:
                pass  # still open: unknown types are ignored, never fatal
            except ConnectionClosed as closed:
                assert closed.rcvd is not None and closed.rcvd.code in EXPECTED_CLOSES, closed
    room = threaded_server.server.room("fuzz")
    assert room is not None and "doc" in room.documents


# -- limits, over real sockets --------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("/room/%2E%2E/secret", "'..' segment"),
        ("/room//doc", "empty segment"),
        ("/a%2Fb/doc", "may not contain '/'"),
        ("/room/bad%00name", "control character"),
        ("/", "names no room"),
    ],
)
async def test_bad_room_names_are_refused(live_server, target, reason):
    async with open_raw_peer(live_server.base_url + target) as peer:
        if target == "/":  # the Hocuspocus endpoint: refused at a y-websocket client's first frame
            await peer.send(encode_sync_step1(b"\x00"))
        code, text = await peer.closed()
    assert code == CloseCode.BAD_ROOM_NAME and reason in text
    assert live_server.server.room_names() == []


@pytest.mark.anyio
async def test_oversized_message_closes_with_1009(server_factory):
    async with server_factory(limits=Limits(max_message_size=1000)) as live:
        url = live.url("big", "doc")
        async with open_raw_peer(url) as peer, open_raw_peer(url) as other:
            await peer.recv()
            await other.recv()
            await peer.send(encode_update(b"\x00" * 2000))
            code, reason = await peer.closed()
            assert code == CloseCode.MESSAGE_TOO_BIG and "exceeds 1000" in reason
            await other.send(encode_sync_step1(b"\x00"))
            assert (await other.recv_until(lambda m: isinstance(m, SyncMessage))).step == 1


@pytest.mark.anyio
async def test_malformed_update_closes_only_that_socket(live_server):
    url = live_server.url("broken", "doc")
    async with open_raw_peer(url) as bad, open_raw_peer(url) as good:
        await bad.recv()
        await good.recv()
        await bad.send(encode_update(b"\x05\x01\x02"))  # framed well, not a Yjs update
        code, reason = await bad.closed()
        assert code == CloseCode.PROTOCOL_ERROR and "not a Yjs update" in reason
        await good.send(encode_update(text_update("fine", 3)))
        async with live_server.server.open_document("broken", "doc") as document:
            text = document.doc.get("t", type=pycrdt.Text)
            with anyio.fail_after(10):
                while str(text) != "fine":
                    await anyio.sleep(0.01)


@pytest.mark.anyio
async def test_rate_limited(server_factory):
    async with server_factory(limits=Limits(messages_per_second=1, messages_burst=3)) as live:
        async with open_raw_peer(live.url("rate", "doc")) as peer:
            await peer.recv()
            for _ in range(20):
                await peer.send(encode_sync_step1(b"\x00"))
            code, reason = await peer.closed()
        assert code == CloseCode.RATE_LIMITED and "messages per second" in reason


@pytest.mark.anyio
async def test_connections_per_address(server_factory):
    async with server_factory(limits=Limits(max_connections_per_ip=2)) as live:
        url = live.url("ip", "doc")
        async with open_raw_peer(url) as one, open_raw_peer(url) as two:
            await one.recv()
            await two.recv()
            async with open_raw_peer(url) as three:
                code, reason = await three.closed()
                assert code == CloseCode.RATE_LIMITED and "connections from 127.0.0.1" in reason
        async with open_raw_peer(url) as again:
            assert (await again.recv()).step == SyncStep.STEP1


def small_socket(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16_384)
    sock.connect(("127.0.0.1", port))
    return sock


@pytest.mark.anyio
async def test_slow_reader_is_disconnected_without_slowing_others(server_factory):
    limits = Limits(
        send_queue_size=64,
        send_queue_bytes=1024 * 1024,
        messages_per_second=10_000,
        messages_burst=10_000,
    )
    async with server_factory(limits=limits) as live:
        url = live.url("slow", "doc")
        async with (
            # The slow peer reads nothing until the server decided to drop it; a small
            # receive buffer keeps the kernel from absorbing megabytes on its behalf.
            open_raw_peer(
                live.url("slow", "doc", id="slow"), max_queue=1, sock=small_socket(live.port)
            ) as slow,
            open_raw_peer(url) as fast,
            open_raw_peer(url) as writer,
        ):
            await fast.recv()
            await writer.recv()
            room = live.server.room("slow")
            (slow_session,) = [
                session for session in room.sessions if session.access.participant_id == "slow"
            ]
            # Big edits fill the socket buffers (~4 MB), then the slow peer's queue (1 MiB:
            # updates merge, so only bytes fill it), then small ones follow; the fast peer
            # keeps up all along.
            sizes = [65_536] * 100 + [10] * 300
            fast_doc = pycrdt.Doc()
            fast_text = fast_doc.get("t", type=pycrdt.Text)
            outcome: list[tuple[int | None, str]] = []

            async def read_fast() -> None:
                while len(fast_text) < sum(sizes):
                    message = await fast.recv(timeout=30)
                    if isinstance(message, SyncMessage) and message.step == SyncStep.UPDATE:
                        fast_doc.apply_update(message.payload)

            async def drain_slow_once_dropped() -> None:
                with anyio.fail_after(60):
                    while slow_session.close_reason is None:
                        await anyio.sleep(0.01)
                outcome.append(await slow.closed(timeout=30))

            doc = pycrdt.Doc(client_id=42)
            text = doc.get("t", type=pycrdt.Text)
            try:
                async with anyio.create_task_group() as group:
                    group.start_soon(read_fast)
                    group.start_soon(drain_slow_once_dropped)
                    for size in sizes:
                        state = doc.get_state()
                        text += "x" * size
                        await writer.send(encode_update(doc.get_update(state)))
            finally:
                slow.websocket.transport.abort()  # never leave a stuck socket behind
            # The fast reader got every edit; the slow one was closed with its reason.
            assert str(fast_text) == str(text)
            assert outcome == [(CloseCode.SLOW_READER, outcome[0][1])]
            assert "too slow" in outcome[0][1]
