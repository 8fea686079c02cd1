"""Over real sockets: structs that follow a gap in their client's clocks wait until it fills.

yrs (pycrdt 0.14) links such structs into the text at once while the state vector stays
at the gap; Yjs keeps them pending. meshdoc's `MeshDocument.apply_update` holds them back
(see test_convergence_regressions.py); these tests check every place meshroom applies a
peer's update does too: a room's live document (whose server-side `MeshDocument` would
otherwise edit from a view its own state vector does not describe, and split a character),
a client's link (whose documents agents edit), storage (a snapshot taken while structs
wait keeps them) and the Redis cluster.

The author (client 1) writes a paragraph "x"; later it sets the title (the clock the others
miss for a while) and types "é" before the "x": the "é" update alone follows a gap.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from _meshdoc_schemas import article_schema
from conftest import open_node_peer, open_raw_peer, run_server
from pycrdt import Doc, XmlFragment
from test_cluster import cluster_server
from websockets.asyncio.server import ServerConnection, serve

from meshdoc import MeshDocument
from meshroom import RoomClient
from meshroom._retry import Backoff
from meshroom.client._link import DocumentLink
from meshroom.protocol._messages import (
    SyncMessage,
    SyncStep,
    decode_message,
    encode_sync_step1,
    encode_sync_step2,
    encode_update,
)
from meshroom.storage import FsspecStorage, StorageExtension

pytestmark = pytest.mark.anyio

SCHEMA = article_schema()
ROOM = "gaps"
PATH = "notes.md"


class Author:
    """Client 1's edits, each transaction's update kept apart."""

    def __init__(self) -> None:
        self.document = MeshDocument(SCHEMA, doc=Doc(client_id=1))
        self.updates: list[bytes] = []
        self.document.doc.observe(lambda event: self.updates.append(event.update))
        self.document.root.append_json(
            {"paragraph": {"$id": "p", "children": [{"$text": [{"insert": "x"}]}]}}
        )
        self.base = self.updates[-1]

    def gap_and_gapped(self) -> tuple[bytes, bytes]:
        """The title (a clock the others lack) and the "é" typed after it."""
        self.document.root.set_attribute("title", "t")
        gap = self.updates[-1]
        self.document.get_node_by_id("p").text.insert(0, "é")
        return gap, self.updates[-1]


def _text(document: MeshDocument) -> str | None:
    paragraph = document.get_node_by_id("p")
    return None if paragraph is None else str(paragraph.text)


def _rendered(doc: Doc) -> str:
    return str(doc.get("default", type=XmlFragment))


def _encoded(doc: Doc) -> str:
    """What a fresh replica built from `doc`'s encoded state shows."""
    fresh = Doc()
    fresh.apply_update(doc.get_update())
    return _rendered(fresh)


async def _until(predicate: Callable[[], object], timeout: float = 10) -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.01)


async def _synced(agent: RoomClient, predicate: Callable[[], object]) -> None:
    with anyio.fail_after(10):
        await agent.wait_for(predicate)


async def _handled(peer: Any, replica: MeshDocument | None = None) -> list[bytes]:
    """Return once the server handled what `peer` sent so far (a session answers in order);
    the updates relayed to it meanwhile are returned (and applied to `replica`, if any)."""
    await peer.send(encode_sync_step1(b"\x00"))
    relayed: list[bytes] = []

    def answer(message: Any) -> bool:
        if isinstance(message, SyncMessage) and message.step is SyncStep.UPDATE:
            relayed.append(message.payload)
            if replica is not None:
                replica.apply_update(message.payload)
        return isinstance(message, SyncMessage) and message.step is SyncStep.STEP2

    await peer.recv_until(answer)
    return relayed


@pytest.mark.interop
async def test_the_server_holds_a_gapped_update_and_every_replica_converges():
    author = Author()
    expected_delta = [
        {"insert": "é"},
        {"insert": "x", "attributes": {"bold": {}}},
        {"insert": "!yü😀"},
    ]
    async with (
        run_server() as live,
        RoomClient(live.base_url, ROOM, name="agent", kind="agent") as agent,
        open_raw_peer(live.url(ROOM, PATH)) as peer,
    ):
        await peer.send(encode_update(author.base))
        await _handled(peer)
        async with (
            live.server.open_document(ROOM, PATH, SCHEMA) as served,
            open_node_peer(live.base_url, f"{ROOM}/{PATH}") as node,
        ):
            await node.wait_event("synced")
            client = await agent.open(PATH, SCHEMA)
            await _synced(agent, lambda: _text(client) == "x")
            served.get_node_by_id("p").text.insert(1, "y")  # the server's text reads "xy"
            author.document.apply_update(served.get_update())
            gap, gapped = author.gap_and_gapped()

            await peer.send(encode_update(gapped))
            await _handled(peer)
            assert _text(served) == "xy"  # as in Yjs: nothing shows, nothing is lost
            live_document = live.server.room(ROOM).documents[PATH]
            assert live_document.unsettled.updates == [gapped]
            assert served.get_update(served.get_state())[:1] != b"\x00"  # what waits

            # Edits from the view the server's replicas show, through MeshDocuments:
            # server-side (an embedding process) and an agent's client.
            text = served.get_node_by_id("p").text
            text.format(0, 1, {"bold": {}})  # "x"; without the hold, a byte of "é"
            text.insert(1, "!")
            await _synced(agent, lambda: _text(client) == "x!y")
            client.get_node_by_id("p").text.insert(3, "ü😀")
            await _until(lambda: _text(served) == "x!yü😀")

            await peer.send(encode_update(gap))  # the gap fills: the "é" goes in
            await _until(lambda: _text(served) == "éx!yü😀")
            await _synced(agent, lambda: _text(client) == "éx!yü😀")
            state = await node.wait_for(lambda s: s["xml"] == served.to_xml())

            assert live_document.unsettled.updates == []
            for document in (served, client):
                assert document.get_node_by_id("p").text.to_delta() == expected_delta
                assert _rendered(document.doc) == _encoded(document.doc)
            assert client.to_xml() == served.to_xml()
            from_node = MeshDocument.from_update(SCHEMA, base64.b64decode(state["update"]))
            assert _rendered(from_node.doc) == _rendered(served.doc)
            author.document.apply_update(served.get_update())
            assert _rendered(author.document.doc) == _rendered(served.doc)


async def test_sync_step_2_leaves_out_what_waits():
    """A peer could not integrate it before the gap fills either (and one that links early,
    as yrs does, would split characters); it reaches every peer once it is in."""
    author = Author()
    gap, gapped = author.gap_and_gapped()
    async with run_server() as live, open_raw_peer(live.url(ROOM, PATH)) as first:
        await first.send(encode_update(author.base))
        await first.send(encode_update(gapped))
        await _handled(first)
        async with open_raw_peer(live.url(ROOM, PATH)) as second:
            await second.send(encode_sync_step1(b"\x00"))
            step2 = await second.recv_until(
                lambda m: isinstance(m, SyncMessage) and m.step is SyncStep.STEP2
            )
            reader = MeshDocument(SCHEMA)
            reader.apply_update(step2.payload)
            assert _text(reader) == "x"
            assert reader.get_update(reader.get_state())[:1] == b"\x00"  # nothing waits

            await first.send(encode_update(gap))
            # The sender of the "é" gets it back once it is in: what settles is relayed to
            # every session (what waited could have come from any of them).
            sent = MeshDocument(SCHEMA)
            sent.apply_update(author.base)
            sent.apply_update(gap)
            await _handled(first, sent)  # the relays to `second` are queued by then too
            assert _text(sent) == "éx"

            relayed = await _handled(second, reader)
            assert _text(reader) == "éx"  # from the relays alone, the "é" once
            assert sum("é".encode() in update for update in relayed) == 1
            assert _rendered(reader.doc) == _encoded(reader.doc)


async def test_a_snapshot_taken_while_structs_wait_keeps_them():
    author = Author()
    gap, gapped = author.gap_and_gapped()
    url = f"memory://gaps-{uuid.uuid4().hex}"

    def storage() -> StorageExtension:
        return StorageExtension(FsspecStorage(url))

    async with run_server(extensions=[storage()]) as live:
        async with open_raw_peer(live.url(ROOM, PATH)) as peer:
            await peer.send(encode_update(author.base))
            await peer.send(encode_update(gapped))
            await _handled(peer)
        await live.server.store(ROOM)  # a snapshot while the "é" waits
    async with (
        run_server(extensions=[storage()]) as live,
        live.server.open_document(ROOM, PATH, SCHEMA) as served,
    ):
        assert _text(served) == "x"
        async with open_raw_peer(live.url(ROOM, PATH)) as peer:
            await peer.send(encode_update(gap))  # only the gap: the "é" came from storage
            await _handled(peer)
        assert _text(served) == "éx"
        assert _rendered(served.doc) == _encoded(served.doc)


@asynccontextmanager
async def _gapping_server(author: Author) -> AsyncIterator[tuple[str, Any]]:
    """A y-websocket server of the author's document that pushes what the test gives it.

    Yields the document URL and a send function; what the client sends is applied to
    the author's document.
    """
    send_stream, receive_stream = anyio.create_memory_object_stream[bytes](100)

    async def handler(websocket: ServerConnection) -> None:
        async def push() -> None:
            async for message in receive_stream:
                await websocket.send(message)

        async with anyio.create_task_group() as group:
            group.start_soon(push)
            await websocket.send(encode_sync_step1(author.document.get_state()))
            async for data in websocket:
                message = decode_message(data)
                if isinstance(message, SyncMessage):
                    if message.step is SyncStep.STEP1:
                        update = author.document.get_update(message.payload)
                        await websocket.send(encode_sync_step2(update))
                    else:
                        author.document.apply_update(message.payload)
            group.cancel_scope.cancel()

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/{ROOM}/{PATH}", send_stream.send


async def test_a_client_holds_a_gapped_update_until_the_gap_fills():
    """A Yjs server (y-websocket's, Hocuspocus) sends structs that wait with its sync step 2;
    the link's doc, which agents edit through a `MeshDocument`, must hold them back too."""
    author = Author()
    doc = Doc(client_id=2)
    client = MeshDocument(SCHEMA, doc=doc)
    changed = anyio.Event()

    def on_change() -> None:
        nonlocal changed
        changed.set()
        changed = anyio.Event()

    async def until(predicate: Callable[[], object]) -> None:
        with anyio.fail_after(10):
            while not predicate():
                await changed.wait()

    async with _gapping_server(author) as (url, push), anyio.create_task_group() as group:
        link = DocumentLink(
            url,
            doc,
            user={"name": "agent"},
            backoff=Backoff(),
            connect_timeout=5,
            on_change=on_change,
        )
        await group.start(link.run)
        await until(lambda: _text(client) == "x")
        client.get_node_by_id("p").text.insert(1, "y")  # the client's text reads "xy"
        await _until(lambda: _text(author.document) == "xy")
        gap, gapped = author.gap_and_gapped()

        await push(encode_update(gapped))
        await _until(lambda: link._unsettled.updates == [gapped])
        assert _text(client) == "xy"
        text = client.get_node_by_id("p").text
        text.format(0, 1, {"bold": {}})
        text.insert(1, "!")
        await _until(lambda: _text(author.document) == "éx!y")

        await push(encode_update(gap))
        await until(lambda: _text(client) == "éx!y")
        assert link._unsettled.updates == []
        assert _rendered(doc) == _encoded(doc) == _rendered(author.document.doc)
        assert client.get_node_by_id("p").text.to_delta() == [
            {"insert": "é"},
            {"insert": "x", "attributes": {"bold": {}}},
            {"insert": "!y"},
        ]
        await link.close()
        group.cancel_scope.cancel()


@pytest.mark.interop
async def test_the_cluster_publishes_what_waited_once_it_is_in(redis_url):
    """Process one holds the "é" (it publishes only what its doc integrated); the gap
    reaches process two, through Redis reaches one, and the "é" settles there: it is then
    published (not as a Redis update), so process two gets it too."""
    prefix = "gaps" + uuid.uuid4().hex[:12]
    author = Author()
    gap, gapped = author.gap_and_gapped()
    bold_x = [{"insert": "x", "attributes": {"bold": {}}}, {"insert": "y"}]
    async with (
        cluster_server(redis_url, prefix) as one,
        cluster_server(redis_url, prefix) as two,
        one.server.open_document(ROOM, PATH, SCHEMA) as first,
        two.server.open_document(ROOM, PATH, SCHEMA) as second,
    ):
        async with open_raw_peer(one.url(ROOM, PATH)) as peer:
            await peer.send(encode_update(author.base))
            await peer.send(encode_update(gapped))
            await _handled(peer)
        await _until(lambda: _text(second) == "x")
        assert _text(first) == "x"
        second.get_node_by_id("p").text.insert(1, "y")
        await _until(lambda: _text(first) == "xy")
        first.get_node_by_id("p").text.format(0, 1, {"bold": {}})  # where "é" would be
        await _until(lambda: second.get_node_by_id("p").text.to_delta() == bold_x)

        async with open_raw_peer(two.url(ROOM, PATH)) as peer:
            await peer.send(encode_update(gap))
            await _handled(peer)
        await _until(lambda: _text(first) == _text(second) == "éxy")
        for document in (first, second):
            assert document.get_node_by_id("p").text.to_delta() == [{"insert": "é"}, *bold_x]
            assert _rendered(document.doc) == _encoded(document.doc)
        live = one.server.room(ROOM).documents[PATH]
        assert live.unsettled.updates == []
