"""`meshroom serve`'s own WebSocket protocol (`uvicorn_websocket`), over real sockets.

What it promises beyond the protocol tests that every server fixture runs
through it: an admitted connection costs no task, the socket's back-pressure
merges queued updates rather than dropping a busy reader, a silent peer is cut
by the keepalive, fragmented messages are reassembled, bad handshakes get a
400, and shutdown tells clients to come back (1012).
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import anyio
import pycrdt
import pytest
from conftest import eventually, open_raw_peer, run_server, serve_app
from websockets.asyncio.client import connect
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri

from meshroom import Access, CloseCode, Limits, Server, create_app
from meshroom.protocol._messages import (
    AwarenessEntry,
    SyncMessage,
    SyncStep,
    decode_message,
    encode_awareness,
    encode_awareness_update,
    encode_sync_step1,
    encode_update,
)
from meshroom.server._session import Session
from meshroom.transport import uvicorn_websocket

pytestmark = pytest.mark.anyio


def _update(client_id: int, text: str) -> bytes:
    doc = pycrdt.Doc(client_id=client_id)
    doc.get("t", type=pycrdt.Text).insert(0, text)
    return doc.get_update()


def _connection_tasks() -> list[asyncio.Task[object]]:
    """Tasks running a WebSocket connection of meshroom's protocol (handshake and admission)."""
    return [
        task
        for task in asyncio.all_tasks()
        if getattr(task.get_coro(), "__qualname__", "") == "RoomWebSocketProtocol._serve"
    ]


async def test_admitted_connections_cost_no_task():
    async with run_server() as live, AsyncExitStack() as stack:
        peers = [
            await stack.enter_async_context(open_raw_peer(live.url("tasks", "doc")))
            for _ in range(10)
        ]
        for peer in peers:
            await peer.recv()  # sync step 1 from the server: admitted and pushing
        assert len(live.server.room("tasks").sessions) == 10
        assert _connection_tasks() == []
        # and they still work: an edit from the first reaches the last
        await peers[0].send(encode_update(_update(5, "hi")))
        with anyio.fail_after(10):
            while True:
                message = await peers[-1].recv()
                if isinstance(message, SyncMessage) and message.step == SyncStep.UPDATE:
                    break


class _StalledReader:
    """A WebSocket client over a raw socket with a small receive buffer, read only on demand.

    While it is not read, the server's socket to it fills up and stops being writable:
    what the server sends meanwhile waits in the session's queue.
    """

    def __init__(self, sock: socket.socket, protocol: ClientProtocol) -> None:
        self._sock = sock
        self._protocol = protocol
        #: Every binary frame received so far, decoded, in order.
        self.messages: list[object] = []

    async def read_until(self, predicate) -> None:  # type: ignore[no-untyped-def]
        loop = asyncio.get_running_loop()
        with anyio.fail_after(20):
            while not predicate():
                data = await loop.sock_recv(self._sock, 65536)
                assert data, "the server closed the connection"
                self._protocol.receive_data(data)
                for event in self._protocol.events_received():
                    if isinstance(event, Frame) and event.opcode == Opcode.BINARY:
                        self.messages.append(decode_message(event.data))
                for chunk in self._protocol.data_to_send():  # pongs
                    await loop.sock_sendall(self._sock, chunk)

    async def send_together(self, messages: list[bytes]) -> None:
        """Send `messages` as frames in one write: the server reads them all at once."""
        for message in messages:
            self._protocol.send_binary(message)
        data = b"".join(self._protocol.data_to_send())
        await asyncio.get_running_loop().sock_sendall(self._sock, data)


@asynccontextmanager
async def _stalled_reader(
    url: str, port: int, *, receive_buffer: int | None = 4096
) -> AsyncIterator[_StalledReader]:
    loop = asyncio.get_running_loop()
    with socket.socket() as sock:
        if receive_buffer is not None:  # before connect: a small window
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", port))
        protocol = ClientProtocol(parse_uri(url), max_size=None)
        protocol.send_request(protocol.connect())
        for chunk in protocol.data_to_send():
            await loop.sock_sendall(sock, chunk)
        yield _StalledReader(sock, protocol)


def _updates(messages: list[object]) -> list[bytes]:
    return [
        message.payload
        for message in messages
        if isinstance(message, SyncMessage) and message.step == SyncStep.UPDATE
    ]


async def test_edits_reach_readers_and_a_merged_frame_is_one_update():
    burst = 50
    async with run_server() as live:
        url = live.url("relay", "doc")
        async with _stalled_reader(url, live.port) as stalled:
            await stalled.read_until(
                lambda: any(
                    isinstance(m, SyncMessage) and m.step == SyncStep.STEP1
                    for m in stalled.messages
                )
            )
            document = live.server.room("relay").documents["doc"]
            (stalled_session,) = document.sessions
            server_text = document.doc.get("t", type=pycrdt.Text)
            async with open_raw_peer(url) as writer, open_raw_peer(url) as reader:
                await writer.recv()
                await reader.recv()
                source = pycrdt.Doc(client_id=7)
                text = source.get("t", type=pycrdt.Text)

                async def send_edit(content: str) -> None:
                    state = source.get_state()
                    text.insert(len(text), content)
                    await writer.send(encode_update(source.get_update(state)))

                # Large edits until the server's socket to the stalled reader is full; each
                # is written to it whole while the socket is still writable.
                large = 0
                while stalled_session.connection.writable:
                    assert large < 64, "64 MiB sent and the stalled reader's socket never filled"
                    await send_edit("x" * 1024 * 1024)
                    large += 1
                    await eventually(lambda: len(server_text) == len(text))
                # A burst of small edits while it cannot be written: queued, then merged.
                before_burst = str(text)
                for index in range(burst):
                    await send_edit(f"{index},")
                await eventually(lambda: str(server_text) == str(text))
                assert not stalled_session.connection.writable
                # The reader that reads got everything.
                mirror = pycrdt.Doc()
                mirrored = mirror.get("t", type=pycrdt.Text)
                with anyio.fail_after(20):
                    while str(mirrored) != str(text):
                        message = await reader.recv()
                        if isinstance(message, SyncMessage) and message.step == SyncStep.UPDATE:
                            mirror.apply_update(message.payload)
                # The stalled reader reads again: each large edit came in a frame of its own,
                # the whole burst in one frame holding one update with all of it.
                stalled_mirror = pycrdt.Doc()
                stalled_text = stalled_mirror.get("t", type=pycrdt.Text)
                await stalled.read_until(lambda: len(_updates(stalled.messages)) >= large + 1)
                updates = _updates(stalled.messages)
                assert len(updates) == large + 1, f"{len(updates) - large} frames for {burst}"
                for update in updates[:-1]:
                    stalled_mirror.apply_update(update)
                assert str(stalled_text) == before_burst
                stalled_mirror.apply_update(updates[-1])
                assert str(stalled_text) == str(text)


class _BusySocket:
    """A `PushConnection` whose socket is full: nothing can be written for now."""

    writable = False

    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, message: bytes) -> None:
        self.written.append(message)

    def defer(self, callback) -> None:  # type: ignore[no-untyped-def]
        pass

    def start_pushing(self, on_message, on_close, on_writable) -> None:  # type: ignore[no-untyped-def]
        pass

    async def send(self, message: bytes) -> None:
        self.written.append(message)

    async def recv(self) -> bytes:
        raise AssertionError("not used")

    async def close(self, code: int = 1000, reason: str = "") -> None:
        pass


@asynccontextmanager
async def _session_on_a_full_socket(limits: Limits) -> AsyncIterator[Session]:
    """A session of a running server whose socket takes nothing for now."""
    async with Server(limits=limits) as server:
        room = server._acquire("busy")
        try:
            document = await room.open_document("doc")
            session = Session(_BusySocket(), room, document, Access("reader"), limits)
            session.start(on_end=lambda: None)
            yield session
        finally:
            server._release(room)


async def test_a_busy_reader_gets_merged_updates_and_a_stalled_one_is_closed():
    limits = Limits(send_queue_size=8, send_queue_bytes=64 * 1024)
    async with _session_on_a_full_socket(limits) as session:
        # 100 updates while the socket is full: merged, never "too slow"
        for index in range(100):
            session.enqueue(encode_update(_update(1000 + index, "x")))
        assert session.close_reason is None
        assert len(session._outbox) < 8
        merged = pycrdt.Doc()
        for message in session._outbox:
            decoded = decode_message(message)
            if isinstance(decoded, SyncMessage) and decoded.step == SyncStep.UPDATE:
                merged.apply_update(decoded.payload)
        assert str(merged.get("t", type=pycrdt.Text)) == "x" * 100
        # awareness does not merge: a stalled reader's queue fills up and it is closed
        for index in range(8):
            entry = AwarenessEntry(client_id=index, clock=1, state={"n": index})
            session.enqueue(encode_awareness(encode_awareness_update([entry])))
        assert session.close_reason is not None
        assert session.close_reason[0] == CloseCode.SLOW_READER


async def test_the_byte_bound_closes_a_reader_that_stalls_on_large_updates():
    limits = Limits(send_queue_size=1000, send_queue_bytes=64 * 1024)
    async with _session_on_a_full_socket(limits) as session:
        for index in range(10):
            session.enqueue(encode_update(_update(2000 + index, "y" * 10_000)))
        assert session.close_reason is not None
        assert session.close_reason[0] == CloseCode.SLOW_READER
        assert "bytes waiting" in session.close_reason[1]


def _handshake(port: int, version: str = "13") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            "GET /silent/doc HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: {version}\r\n\r\n"
        ).encode()
    )
    return sock


async def test_a_bad_handshake_gets_400():
    async with run_server() as live:
        sock = await anyio.to_thread.run_sync(_handshake, live.port, "8")
        with sock:
            response = await anyio.to_thread.run_sync(sock.recv, 4096)
        assert response.startswith(b"HTTP/1.1 400")
        assert live.server.room_names() == []


async def test_a_silent_peer_is_cut_by_the_keepalive():
    server = Server(grace_period=0.1)
    async with serve_app(
        create_app(server), ws=uvicorn_websocket(server, ping_interval=0.2)
    ) as port:
        sock = await anyio.to_thread.run_sync(_handshake, port)
        with sock:
            # read the 101 and whatever the server sends, never answer: no pong, nothing
            def read_until_closed() -> bytes:
                received = b""
                while True:
                    try:
                        chunk = sock.recv(65536)
                    except (ConnectionResetError, TimeoutError):
                        return received
                    if not chunk:
                        return received
                    received += chunk

            with anyio.fail_after(5):
                received = await anyio.to_thread.run_sync(read_until_closed)
        assert received.startswith(b"HTTP/1.1 101")
        assert b"\x89" in received  # the server pinged before it gave up
        with anyio.fail_after(5):
            while server.room("silent") is not None and server.room("silent").sessions:
                await anyio.sleep(0.05)


async def test_fragmented_messages_are_reassembled():
    async with run_server() as live:
        url = live.url("fragments", "doc")
        async with open_raw_peer(url) as reader:
            await reader.recv()
            async with connect(url, compression=None) as writer:
                update = encode_update(_update(3, "fragmented"))
                await writer.send([update[:3], update[3:9], update[9:]])  # three frames
                with anyio.fail_after(10):
                    while True:
                        message = await reader.recv()
                        if isinstance(message, SyncMessage) and message.step == SyncStep.UPDATE:
                            doc = pycrdt.Doc()
                            doc.apply_update(message.payload)
                            assert str(doc.get("t", type=pycrdt.Text)) == "fragmented"
                            break


async def test_shutdown_tells_clients_to_come_back():
    server = Server(grace_period=0.1)
    async with serve_app(create_app(server), ws=uvicorn_websocket(server)) as port:
        websocket = await connect(f"ws://127.0.0.1:{port}/bye/doc", compression=None)
        await websocket.send(encode_sync_step1(b"\x00"))
        await websocket.recv()
    with anyio.fail_after(10):
        await websocket.wait_closed()
    assert websocket.close_code in (1012, CloseCode.GOING_AWAY)
