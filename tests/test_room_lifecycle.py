"""Room lifecycle: provisioned on first join, released after the grace period once stored."""

from __future__ import annotations

import asyncio
import uuid

import anyio
import pycrdt
import pytest
from conftest import free_port, open_node_peer, open_raw_peer, run_server

from meshroom import Extension
from meshroom.protocol._messages import SyncMessage, SyncStep, encode_sync_step1, encode_update

pytestmark = pytest.mark.anyio


def text_update(content: str, client_id: int) -> bytes:
    doc = pycrdt.Doc(client_id=client_id)
    doc.get("t", type=pycrdt.Text).insert(0, content)
    return doc.get_update()


class MemoryStore(Extension):
    """A dict-backed storage extension that can fail on purpose and count its calls."""

    def __init__(self, *, failures: int = 0, gate: anyio.Event | None = None) -> None:
        self.snapshots: dict[tuple[str, str], bytes] = {}
        self.loads: list[tuple[str, str]] = []
        self.stores: list[tuple[str, str, str]] = []
        self.failures = failures
        self.gate = gate  # loads of room "rush" wait for it

    async def on_load_document(self, payload):
        self.loads.append((payload.room, payload.path))
        if self.gate is not None and payload.room == "rush":
            await self.gate.wait()
        stored = self.snapshots.get((payload.room, payload.path))
        if stored:
            payload.doc.apply_update(stored)

    async def on_store_document(self, payload):
        if self.failures > 0:
            self.failures -= 1
            raise OSError("disk on fire")
        self.snapshots[(payload.room, payload.path)] = payload.doc.get_update()
        self.stores.append((payload.room, payload.path, payload.reason))


async def wait_until(predicate, timeout: float = 10) -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.01)


async def test_provision_release_and_reload():
    store = MemoryStore()
    async with run_server(extensions=[store], grace_period=0.1) as live:
        server = live.server
        assert server.room_names() == []
        async with open_raw_peer(live.url("life", "doc")) as peer:
            await peer.recv()
            assert server.room_names() == ["life"]
            await peer.send(encode_update(text_update("kept", client_id=1)))
            await wait_until(lambda: server.room("life") and "doc" in server.room("life").documents)
            text = server.room("life").documents["doc"].doc.get("t", type=pycrdt.Text)
            await wait_until(lambda: str(text) == "kept")
        # Released after the grace period, and only once stored.
        await wait_until(lambda: server.room_names() == [])
        assert store.stores == [("life", "doc", "room-close")]
        # The next join provisions it again and loads what was stored.
        async with open_raw_peer(live.url("life", "doc")) as peer:
            first = await peer.recv()
            assert first.step == SyncStep.STEP1 and first.payload != b"\x00"
        assert store.loads == [("life", "doc"), ("life", "doc")]


async def test_returning_within_grace_keeps_the_room():
    store = MemoryStore()
    async with run_server(extensions=[store], grace_period=0.5) as live:
        async with open_raw_peer(live.url("back", "doc")) as peer:
            await peer.recv()
        room = live.server.room("back")
        async with open_raw_peer(live.url("back", "doc")) as peer:
            await peer.recv()
            await anyio.sleep(0.7)  # longer than the grace period: still held
            assert live.server.room("back") is room
            assert store.stores == []
        await wait_until(lambda: live.server.room_names() == [])
        assert store.loads == [("back", "doc")]  # never reloaded


async def test_failed_store_keeps_the_room_and_retries():
    store = MemoryStore(failures=2)
    async with run_server(extensions=[store], grace_period=0.05, store_retry=(0.05, 0.1)) as live:
        async with open_raw_peer(live.url("flaky", "doc")) as peer:
            await peer.recv()
            await peer.send(encode_update(text_update("precious", client_id=9)))
            await wait_until(lambda: live.server.room("flaky").documents.get("doc") is not None)
        await anyio.sleep(0.1)
        assert live.server.room_names() == ["flaky"]  # the first attempt failed: kept
        await wait_until(lambda: live.server.room_names() == [])
        assert store.failures == 0
        assert store.stores == [("flaky", "doc", "room-close")]
        restored = pycrdt.Doc()
        restored.apply_update(store.snapshots[("flaky", "doc")])
        assert str(restored.get("t", type=pycrdt.Text)) == "precious"


async def test_concurrent_first_joins_make_one_room_and_one_load():
    gate = anyio.Event()
    store = MemoryStore(gate=gate)
    store.snapshots[("rush", "doc")] = text_update("loaded once", client_id=4)
    async with run_server(extensions=[store]) as live:
        results: list[str] = []

        async def join() -> None:
            async with open_raw_peer(live.url("rush", "doc")) as peer:
                await peer.recv()
                await peer.send(encode_sync_step1(b"\x00"))
                answer = await peer.recv_until(lambda m: isinstance(m, SyncMessage))
                doc = pycrdt.Doc()
                doc.apply_update(answer.payload)
                results.append(str(doc.get("t", type=pycrdt.Text)))

        async with anyio.create_task_group() as group:
            for _ in range(20):
                group.start_soon(join)
            await wait_until(lambda: live.server.room("rush") is not None)
            # While "rush" is still loading, another room is served: nothing blocks on it.
            async with open_raw_peer(live.url("other", "doc")) as other:
                assert (await other.recv()).step == SyncStep.STEP1
            assert not gate.is_set() and results == []
            assert live.server.room_names() == ["other", "rush"]
            gate.set()
        assert results == ["loaded once"] * 20
        assert store.loads.count(("rush", "doc")) == 1


async def test_shutdown_stores_every_room():
    store = MemoryStore()
    async with (
        run_server(extensions=[store], grace_period=60) as live,
        open_raw_peer(live.url("a", "x")) as a,
        open_raw_peer(live.url("b", "y")) as b,
    ):
        await a.recv()
        await b.recv()
        await a.send(encode_update(text_update("A", client_id=1)))
        await b.send(encode_update(text_update("B", client_id=2)))
        await wait_until(lambda: len(live.server.room_names()) == 2)
        await anyio.sleep(0.1)
    assert sorted(store.stores) == [("a", "x", "shutdown"), ("b", "y", "shutdown")]


async def test_node_client_reconnects_after_server_restart():
    from meshroom.storage import FsspecStorage, StorageExtension

    url = f"memory://restart-{uuid.uuid4().hex}"
    port = free_port()

    def storage() -> StorageExtension:
        return StorageExtension(FsspecStorage(url))

    # The client starts first and keeps retrying; it outlives both servers.
    async with open_node_peer(f"ws://127.0.0.1:{port}", "restart/doc.md", {"name": "N"}) as peer:
        async with run_server(port=port, extensions=[storage()], grace_period=60) as first:
            await peer.wait_event("synced")
            await peer.request("insert", text="before restart. ")
            async with first.server.open_document("restart", "doc.md") as document:
                text = document.doc.get("t", type=pycrdt.Text)
                await wait_until(lambda: str(text) == "before restart. ")
        # The first server stored the room at shutdown; the client lost its socket.
        await peer.wait_event("close")
        async with run_server(port=port, extensions=[storage()]) as second:
            await peer.wait_for(lambda s: s["connected"] and s["synced"])
            await peer.request("insert", text="after restart.")
            async with second.server.open_document("restart", "doc.md") as document:
                text = document.doc.get("t", type=pycrdt.Text)
                await wait_until(lambda: str(text) == "before restart. after restart.")


async def test_shutdown_never_stores_a_document_still_loading():
    from meshroom import Server
    from meshroom.server import connection_pair

    gate = anyio.Event()
    store = MemoryStore(gate=gate)
    store.snapshots[("rush", "doc")] = text_update("stored long ago", client_id=4)
    server = Server(extensions=[store])
    async with anyio.create_task_group() as group:
        await server.__aenter__()
        server_side, _client_side = connection_pair()
        group.start_soon(server.serve, server_side, "/rush/doc")
        await wait_until(lambda: store.loads == [("rush", "doc")])
        await server.__aexit__(None, None, None)  # shut down while the load still waits
        group.cancel_scope.cancel()
    # Nothing was written over the stored snapshot.
    assert store.stores == []
    restored = pycrdt.Doc()
    restored.apply_update(store.snapshots[("rush", "doc")])
    assert str(restored.get("t", type=pycrdt.Text)) == "stored long ago"


async def test_changes_reach_on_change_hooks_and_cost_nothing_without_them():
    seen: list[bytes] = []

    class Listener(Extension):
        async def on_change(self, payload):
            seen.append(payload.update)

    class Deaf(Extension):
        async def on_connect(self, payload):
            pass

    async def changes_task_running() -> bool:
        await anyio.sleep(0.05)
        return any("run_changes" in repr(task) for task in asyncio.all_tasks())

    async with (
        run_server(extensions=[Deaf()]) as live,
        open_raw_peer(live.url("quiet", "doc")) as peer,
    ):
        await peer.recv()
        await peer.send(encode_update(text_update("hi", 11)))
        assert not await changes_task_running()  # nobody listens: no pipeline
    async with (
        run_server(extensions=[Deaf(), Listener()]) as live,
        open_raw_peer(live.url("heard", "doc")) as peer,
    ):
        await peer.recv()
        await peer.send(encode_update(text_update("hi", 12)))
        with anyio.fail_after(5):
            while not seen:
                await anyio.sleep(0.01)
        assert await changes_task_running()
