"""How meshroom's WebSocket protocol writes what sessions queued: in order, never left behind.

A read can hold hundreds of messages (a burst that piled up in the socket). What they
queue leaves when the read is handled, and every `_WRITE_AFTER` of a long one before
that, in the order it was queued; nothing stays queued once the loop is idle. And the
frame of a broadcast is built once for all its readers, but a large one is not kept.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pycrdt
import pytest
from conftest import open_raw_peer, run_server
from test_uvicorn_transport import _stalled_reader
from websockets.client import ClientProtocol
from websockets.frames import Frame
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from meshroom import Server
from meshroom.protocol._messages import SyncMessage, SyncStep, encode_update
from meshroom.transport import _uvicorn
from meshroom.transport import _wire as _ws_wire

pytestmark = pytest.mark.anyio


def _update(client_id: int, text: str) -> bytes:
    doc = pycrdt.Doc(client_id=client_id)
    doc.get("t", type=pycrdt.Text).insert(0, text)
    return doc.get_update()


class _Transport(asyncio.Transport):
    """Records what the protocol writes."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:  # type: ignore[override]
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 5000) if name == "peername" else default


def _pushing_protocol() -> tuple[_uvicorn.RoomWebSocketProtocol, _Transport, list[int]]:
    """An open connection whose session writes `b"<n>"` for the n-th message it gets,
    through `defer` as a session does; returns how many frames were out at each message."""
    state = SimpleNamespace(connections=set(), tasks=set())
    protocol = _uvicorn.RoomWebSocketProtocol(None, state, server=Server())
    transport = _Transport()
    protocol.connection_made(transport)
    protocol._conn = ServerProtocol(state=State.OPEN, max_size=2**20)
    seen: list[int] = []

    def on_message(message: bytes) -> None:
        seen.append(len(transport.written))
        protocol.defer(lambda: protocol.write(message))

    protocol.start_pushing(on_message, lambda code, reason: None, lambda: None)
    return protocol, transport, seen


def _frames(count: int) -> bytes:
    """`count` masked client frames in one chunk, as a burst arrives in one read."""
    client = ClientProtocol(parse_uri("ws://127.0.0.1/doc"), state=State.OPEN)
    for index in range(count):
        client.send_binary(str(index).encode())
    return b"".join(client.data_to_send())


def _payloads(written: list[bytes]) -> list[bytes]:
    """The payloads of the server's unmasked binary frames, in the order written."""
    reader = ClientProtocol(parse_uri("ws://127.0.0.1/doc"), state=State.OPEN)
    reader.receive_data(b"".join(written))
    return [bytes(event.data) for event in reader.events_received() if isinstance(event, Frame)]


async def test_what_a_read_queued_leaves_when_it_is_handled_in_order(monkeypatch):
    """Within `_WRITE_AFTER` (here: an hour), a read's messages leave together at its end."""
    monkeypatch.setattr(_uvicorn, "_WRITE_AFTER", 3600.0)
    protocol, transport, seen = _pushing_protocol()
    protocol.data_received(_frames(50))
    assert seen == [0] * 50
    assert _payloads(transport.written) == [str(index).encode() for index in range(50)]


async def test_a_long_read_writes_what_it_queued_as_it_goes(monkeypatch):
    """Past `_WRITE_AFTER` (here: at once) the queue is written before the next message."""
    monkeypatch.setattr(_uvicorn, "_WRITE_AFTER", 0.0)
    protocol, transport, seen = _pushing_protocol()
    protocol.data_received(_frames(20))
    assert seen == list(range(20))
    assert _payloads(transport.written) == [str(index).encode() for index in range(20)]
    await asyncio.sleep(0)  # the loop's turn: nothing was left for it
    assert len(transport.written) == 20


async def test_a_burst_read_at_once_reaches_every_reader_in_order_and_nothing_waits():
    """More updates than one batch (`_MAX_BATCH`), sent in one write: each reader gets
    them all in order (every frame follows on from the one before, so nothing waits
    for a gap), and the last of them leave while no more traffic comes."""
    from meshroom.server._outbox import _MAX_BATCH

    burst = _MAX_BATCH * 2 + 50
    async with run_server() as live:
        url = live.url("burst", "doc")
        async with (
            _stalled_reader(url, live.port, receive_buffer=None) as writer,
            open_raw_peer(url) as first,
            open_raw_peer(url) as second,
        ):
            await writer.read_until(
                lambda: any(
                    isinstance(m, SyncMessage) and m.step == SyncStep.STEP1 for m in writer.messages
                )
            )
            await first.recv()
            await second.recv()
            source = pycrdt.Doc(client_id=11)
            text = source.get("t", type=pycrdt.Text)
            updates = []
            for index in range(burst):
                state = source.get_state()
                text.insert(len(text), f"{index},")
                updates.append(encode_update(source.get_update(state)))
            await writer.send_together(updates)
            for reader in (first, second):
                mirror = pycrdt.Doc()
                mirrored = mirror.get("t", type=pycrdt.Text)
                frames = 0
                while str(mirrored) != str(text):
                    message = await reader.recv(timeout=20)
                    if isinstance(message, SyncMessage) and message.step == SyncStep.UPDATE:
                        frames += 1
                        before = len(mirrored)
                        mirror.apply_update(message.payload)
                        # a frame ahead of one it follows on from would wait, adding nothing
                        assert len(mirrored) > before, f"frame {frames} came out of order"
                        assert str(text).startswith(str(mirrored))
                assert frames <= burst
            document = live.server.room("burst").documents["doc"]
            assert [session._outbox for session in document.sessions] == [[], [], []]


def test_a_broadcast_frame_is_built_once_and_a_large_one_is_not_kept():
    """Readers of one broadcast share its frame; a large message's frame is not held on to
    after it left (a first sync the size of the document would stay in memory)."""
    small = encode_update(_update(21, "hello"))
    assert _ws_wire.binary_frame(small) is _ws_wire.binary_frame(small)
    other = encode_update(_update(22, "world"))
    assert _ws_wire.binary_frame(other) == bytes((0x82, len(other))) + other
    large = encode_update(_update(23, "x" * (_ws_wire._LAST_FRAME_BYTES + 1)))
    frame = _ws_wire.binary_frame(large)
    assert frame[:2] == b"\x82\x7f" and int.from_bytes(frame[2:10], "big") == len(large)
    assert frame[10:] == large
    assert _ws_wire._LastFrame.last == (None, b"")
