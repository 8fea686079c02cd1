"""Scale-out through Redis Streams: two server processes serve the same documents.

A real `redis-server` (no persistence) is started on a free port for this module;
the servers are real (in-process on their own uvicorn ports, or `meshroom serve
--redis` subprocesses), the clients real `RoomClient`s and Node y-websocket peers.
"""

from __future__ import annotations

import gc
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest
import redis
from conftest import (
    eventually,
    free_port,
    open_node_peer,
    run_server,
    serve_output,
    start_meshroom_serve,
    start_redis,
)
from pycrdt import Doc, Text

from meshroom import RoomClient, Server
from meshroom.cluster import RedisExtension
from meshroom.storage import FsspecStorage, StorageExtension

pytestmark = [pytest.mark.anyio, pytest.mark.interop]


@pytest.fixture
def prefix() -> str:
    """A key prefix of this test's own, so tests sharing the redis-server never meet."""
    return "t" + uuid.uuid4().hex[:12]


@asynccontextmanager
async def cluster_server(redis_url: str, prefix: str, **options: object) -> AsyncIterator:
    extension = RedisExtension(redis_url, stream_prefix=prefix, block=0.05, **options)
    async with run_server(extensions=[extension]) as live:
        live.extension = extension
        yield live


async def text_of(client: RoomClient, path: str) -> Text:
    doc = await client.open_ydoc(path)
    return doc.get("t", type=Text)


async def test_two_servers_converge_with_python_and_node_clients(redis_url, prefix):
    path = "notes/plan.md"
    async with (
        cluster_server(redis_url, prefix) as a,
        cluster_server(redis_url, prefix) as b,
        RoomClient(a.base_url, "team", name="Ann") as ann,
        RoomClient(b.base_url, "team", name="Bob") as bob,
        open_node_peer(a.base_url, f"team/{path}", {"name": "Node"}) as node,
    ):
        await node.wait_event("synced")
        ann_text = await text_of(ann, path)
        bob_text = await text_of(bob, path)
        ann_text += "[ann]"
        bob_text += "[bob]"
        await node.request("insert", text="[node]", at=0)

        def has_all(value: str) -> bool:
            return all(part in value for part in ("[ann]", "[bob]", "[node]"))

        final = await node.wait_for(lambda state: has_all(state["text"]))
        await eventually(lambda: str(ann_text) == str(bob_text) == final["text"])
        assert len(final["text"]) == len("[ann][bob][node]")

        # A client joining B late gets every edit, including those made on A.
        async with RoomClient(b.base_url, "team", name="Late") as late:
            late_text = await text_of(late, path)
            assert str(late_text) == final["text"]
        # The edits went through Redis: B follows the document's stream.
        assert b.extension.followed == [b.extension.stream_key("team", path)]


def names(state: dict) -> list[str]:
    return sorted(peer["state"]["user"]["name"] for peer in state["peers"] if peer["state"])


async def test_awareness_crosses_processes_and_leaves_on_disconnect(redis_url, prefix):
    async with (
        cluster_server(redis_url, prefix) as a,
        cluster_server(redis_url, prefix) as b,
        open_node_peer(b.base_url, "aware/doc", {"name": "Bob"}) as bob,
    ):
        await bob.wait_event("synced")
        async with open_node_peer(a.base_url, "aware/doc", {"name": "Ann"}) as ann:
            await ann.wait_event("synced")
            await ann.request("awareness", state={"user": {"name": "Ann"}, "cursor": 7})
            seen = await bob.wait_for(
                lambda state: [peer["state"].get("cursor") for peer in state["peers"]] == [7]
            )
            assert names(seen) == ["Ann"]
            await ann.wait_for(lambda state: names(state) == ["Bob"])
            # A late joiner on B gets A's client from B's store.
            async with open_node_peer(b.base_url, "aware/doc", {"name": "Cid"}) as cid:
                await cid.wait_for(lambda state: names(state) == ["Ann", "Bob"])
                await cid.request("quit")
            await ann.wait_for(lambda state: names(state) == ["Bob"])
            await ann.request("quit")
        # Ann's disconnect from A removes her on B.
        await bob.wait_for(lambda state: state["peers"] == [])


async def test_awareness_of_a_stopped_process_leaves_at_once(redis_url):
    url = redis_url.rsplit("/", 1)[0] + "/2"  # `meshroom serve` uses the default prefix
    redis.Redis.from_url(url).flushdb()
    port = free_port()
    a = _serve(port, url)
    try:
        async with (
            cluster_server(url, "meshroom") as b,
            open_node_peer(b.base_url, "stop/doc", {"name": "Bob"}) as bob,
            open_node_peer(f"ws://127.0.0.1:{port}", "stop/doc", {"name": "Ann"}) as ann,
        ):
            await ann.wait_event("synced")
            await bob.wait_for(lambda state: names(state) == ["Ann"])
            a.send_signal(signal.SIGTERM)  # a clean shutdown closes Ann's socket
            a.wait(30)
            # Well before the 30 s awareness timeout: the removal was published.
            await bob.wait_for(lambda state: state["peers"] == [], timeout=10)
    finally:
        if a.poll() is None:
            a.kill()
        a.communicate(timeout=30)


async def test_awareness_of_a_vanished_process_expires(redis_url, prefix):
    from meshroom.protocol._messages import AwarenessEntry, encode_awareness_update

    async with (
        cluster_server(redis_url, prefix, awareness_timeout=1.0) as b,
        open_node_peer(b.base_url, "ghost/doc", {"name": "Bob"}) as bob,
    ):
        await bob.wait_event("synced")
        # Another process publishes one client's state, then dies without removing it.
        ghost = encode_awareness_update([AwarenessEntry(4242, 1, {"user": {"name": "Ghost"}})])
        sync_redis = redis.Redis.from_url(redis_url)
        sync_redis.xadd(f"{prefix}:awareness:ghost/doc", {b"u": ghost, b"s": b"dead"})
        sync_redis.close()
        await bob.wait_for(lambda state: names(state) == ["Ghost"])
        await bob.wait_for(lambda state: state["peers"] == [])
        assert b.server.room("ghost").documents["doc"].awareness.states.keys() == {
            (await bob.state())["clientId"]
        }


async def test_storage_writer_publishes_what_it_loaded(redis_url, prefix, tmp_path):
    storage = FsspecStorage(str(tmp_path / "rooms"))
    async with (
        run_server(extensions=[StorageExtension(storage)]) as alone,
        RoomClient(alone.base_url, "kept") as writer,
    ):
        (await text_of(writer, "doc")).insert(0, "stored before the cluster")
    # The stream has never seen this document: B learns it from the writer's load.
    async with (
        run_server(
            extensions=[
                RedisExtension(
                    redis_url,
                    stream_prefix=prefix,
                    block=0.05,
                    storage=StorageExtension(FsspecStorage(str(tmp_path / "rooms"))),
                )
            ]
        ) as a,
        cluster_server(redis_url, prefix) as b,
        RoomClient(a.base_url, "kept") as ann,
    ):
        assert str(await text_of(ann, "doc")) == "stored before the cluster"
        async with RoomClient(b.base_url, "kept") as bob:
            bob_text = await text_of(bob, "doc")
            await eventually(lambda: str(bob_text) == "stored before the cluster")


async def test_updates_made_while_redis_was_down_are_republished():
    port = free_port()
    process = start_redis(port)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        async with (
            cluster_server(url, "down") as a,
            cluster_server(url, "down") as b,
            RoomClient(a.base_url, "outage") as ann,
            RoomClient(b.base_url, "outage") as bob,
        ):
            ann_text = await text_of(ann, "doc")
            bob_text = await text_of(bob, "doc")
            ann_text += "before;"
            await eventually(lambda: str(bob_text) == "before;")
            process.terminate()
            process.wait(10)
            ann_text += "during;"  # A cannot publish this one
            await anyio.sleep(0.3)
            assert str(bob_text) == "before;"
            process = start_redis(port)  # back, and empty
            await eventually(lambda: str(bob_text) == "before;during;", timeout=15)
    finally:
        process.terminate()
        process.wait(10)


async def test_closed_rooms_are_no_longer_followed(redis_url, prefix):
    async with cluster_server(redis_url, prefix) as a:
        async with RoomClient(a.base_url, "brief") as ann:
            (await text_of(ann, "doc")).insert(0, "x")
            assert a.extension.followed == [a.extension.stream_key("brief", "doc")]
        await eventually(lambda: a.server.room("brief") is None)
        gc.collect()
        assert a.extension.followed == []
        # Reopened, it is followed again, from its replayed stream.
        async with RoomClient(a.base_url, "brief") as bob:
            assert str(await text_of(bob, "doc")) == "x"
            assert a.extension.followed == [a.extension.stream_key("brief", "doc")]


async def test_process_opening_late_replays_the_stream(redis_url, prefix):
    async with cluster_server(redis_url, prefix) as a:
        async with RoomClient(a.base_url, "late") as ann:
            text = await text_of(ann, "doc")
            for word in ("one ", "two ", "three"):
                text += word
            await eventually(lambda: a.server.room("late") is not None)
        # A opened the document, B has never seen it: B replays the stream on load.
        async with cluster_server(redis_url, prefix) as b, RoomClient(b.base_url, "late") as bob:
            assert str(await text_of(bob, "doc")) == "one two three"


async def test_compaction_keeps_state_and_bounds_the_stream(redis_url, prefix):
    path = "log.md"
    async with (
        cluster_server(redis_url, prefix, compact_after=20) as a,
        cluster_server(redis_url, prefix, compact_after=20) as b,
        RoomClient(a.base_url, "busy") as ann,
        RoomClient(b.base_url, "busy") as bob,
    ):
        ann_text = await text_of(ann, path)
        bob_text = await text_of(bob, path)
        for index in range(120):
            target = ann_text if index % 2 else bob_text
            target += f"{index},"
            if index % 10 == 0:
                await anyio.sleep(0.01)
        expected = {f"{index}" for index in range(120)}
        await eventually(lambda: str(ann_text) == str(bob_text))
        await eventually(lambda: set(str(ann_text).rstrip(",").split(",")) == expected)
        key = a.extension.stream_key("busy", path)
        sync_redis = redis.Redis.from_url(redis_url)
        length = sync_redis.xlen(key)
        kinds = [fields[b"k"] for _, fields in sync_redis.xrange(key)]
        sync_redis.close()
        assert length < 120, f"the stream was never compacted ({length} entries)"
        assert b"c" in kinds
    # A fresh process rebuilds the whole document from the compacted stream alone.
    async with cluster_server(redis_url, prefix) as c, RoomClient(c.base_url, "busy") as carl:
        rebuilt = await text_of(carl, path)
        assert set(str(rebuilt).rstrip(",").split(",")) == expected
        assert str(rebuilt) == str(ann_text)


async def test_foreign_and_corrupt_entries_are_skipped(redis_url, prefix):
    async with cluster_server(redis_url, prefix) as a, RoomClient(a.base_url, "odd") as ann:
        text = await text_of(ann, "doc")
        key = a.extension.stream_key("odd", "doc")
        sync_redis = redis.Redis.from_url(redis_url)
        sync_redis.xadd(key, {b"u": b"\xff\xfe not yjs", b"s": b"x"})
        sync_redis.xadd(key, {b"other": b"field"})
        remote = Doc()
        remote.get("t", type=Text).insert(0, "after garbage")
        sync_redis.xadd(key, {b"u": remote.get_update(), b"s": b"x"})
        sync_redis.close()
        await eventually(lambda: str(text) == "after garbage")


async def test_bad_configuration_is_refused(redis_url, prefix):
    with pytest.raises(ValueError, match="Redis URL"):
        RedisExtension("http://127.0.0.1:1")
    with pytest.raises(ValueError, match="stream_prefix"):
        RedisExtension(redis_url, stream_prefix="has space")
    with pytest.raises(ValueError, match="compact_after"):
        RedisExtension(redis_url, compact_after=0)
    # Storage goes to the cluster, which chooses each document's writer.
    with pytest.raises(TypeError, match="storage="):
        RedisExtension(redis_url, storage_writer=True)
    storage = StorageExtension(FsspecStorage("memory://refused"))
    with pytest.raises(ValueError, match="RedisExtension only"):
        Server(extensions=[storage, RedisExtension(redis_url, storage=storage)])


# -- `meshroom serve --redis` processes ---------------------------------------------------------


def _serve(port: int, redis_url: str, *options: str) -> subprocess.Popen:
    return start_meshroom_serve(port, "--redis", redis_url, *options)


async def test_killed_process_restarts_and_catches_up(redis_url, tmp_path):
    # The command line uses the default prefix: a database of its own keeps this test apart.
    url = redis_url.rsplit("/", 1)[0] + "/1"
    redis.Redis.from_url(url).flushdb()
    port_a, port_b = free_port(), free_port()
    rooms = tmp_path / "rooms"
    a = _serve(port_a, url, "--storage", str(rooms), "--grace-period", "0.2")
    b = _serve(port_b, url)
    expected = "from B;A alone;B again;"
    try:
        async with (
            open_node_peer(f"ws://127.0.0.1:{port_a}", "crew/doc", {"name": "A"}) as on_a,
            open_node_peer(f"ws://127.0.0.1:{port_b}", "crew/doc", {"name": "B"}) as on_b,
        ):
            await on_a.wait_event("synced")
            await on_b.wait_event("synced")
            await on_b.request("insert", text="from B;")
            await on_a.wait_for(lambda state: state["text"] == "from B;")
            b.kill()  # no shutdown at all
            b.wait(10)
            # A keeps serving: its clients still edit, and a new client sees everything.
            await on_a.request("insert", text="A alone;")
            async with open_node_peer(f"ws://127.0.0.1:{port_a}", "crew/doc") as fresh:
                await fresh.wait_for(lambda state: state["text"] == "from B;A alone;")
            # A restarted process catches up from the stream, and serves edits again.
            b = _serve(port_b, url)
            async with open_node_peer(f"ws://127.0.0.1:{port_b}", "crew/doc") as back:
                await back.wait_for(lambda state: state["text"] == "from B;A alone;")
                await back.request("insert", text="B again;")
                await on_a.wait_for(lambda state: state["text"] == expected)
    finally:
        for process in (a, b):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
            output = serve_output(process)
    assert a.returncode in (0, -signal.SIGTERM), output
    # A, the cluster's storage writer, stored the edits made through B too.
    snapshots = list(rooms.rglob("*.yjs")) + list(rooms.rglob("*.ylog"))
    assert snapshots, f"nothing stored under {rooms}"
    async with (
        run_server(extensions=[StorageExtension(FsspecStorage(str(rooms)))]) as alone,
        RoomClient(alone.base_url, "crew") as reader,
    ):
        assert str(await text_of(reader, "doc")) == expected
