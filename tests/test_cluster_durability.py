"""Cluster durability: every document edited anywhere in a cluster reaches storage.

Real `redis-server`, real `meshroom serve` processes, real y-websocket peers. One
process has `--storage` (A), one has not (B), and the edits are made only on B:
B appends each update to the document's stream before it relays it, and A, the
document's writer, stores what it reads there. A reader on B's socket records what
B relayed; whatever happens to the processes (SIGKILL of either, a graceful stop
of each, a writer taking over from a dead one), every relayed edit must be in the
storage folder afterwards (read back with the storage provider itself), none twice,
and nothing that was not sent.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
import redis
from conftest import free_port, serve_output, start_meshroom_serve, start_redis
from pycrdt import Array, Doc, create_sync_message
from test_crash import Editor
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from meshroom.cluster._streams import lease_key, member_of
from meshroom.storage import FsspecStorage

pytestmark = pytest.mark.anyio

ROOM, PATH = "crew", "doc"
#: Short leases so that takeovers happen within a test's time.
LEASE = "1"


@pytest.fixture
def cluster_url() -> Iterator[str]:
    """A redis-server of this test's own (`meshroom serve` uses the default key prefix)."""
    port = free_port()
    process = start_redis(port)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(10)


def serve(port: int, url: str, storage: Path | None = None) -> subprocess.Popen[bytes]:
    options = ["--redis", url, "--writer-lease", LEASE, "--grace-period", "0.2"]
    if storage is not None:
        options += ["--storage", str(storage), "--storage-debounce", "0.1"]
        options += ["--storage-max-delay", "0.5"]
    return start_meshroom_serve(port, *options)


def stop(process: subprocess.Popen[bytes], how: signal.Signals = signal.SIGTERM) -> str:
    if process.poll() is None:
        process.send_signal(how)
    process.wait(30)
    output = serve_output(process)
    if how is signal.SIGTERM:
        assert process.returncode in (0, -signal.SIGTERM), output
        assert "could not be published" not in output, output
    return output


async def stored_tokens(storage: Path) -> list[str]:
    """The document's tokens, read from the storage folder (snapshot and log)."""
    provider = FsspecStorage(str(storage))
    doc = Doc()
    snapshot = await provider.read_snapshot(ROOM, PATH)
    for update in ([snapshot] if snapshot else []) + await provider.read_log(ROOM, PATH):
        doc.apply_update(update)
    return list(doc.get("tokens", type=Array).to_py() or [])


class Session:
    """A writer streaming unique tokens and a reader recording what the server relayed."""

    def __init__(self, writer: Editor, reader: Editor) -> None:
        self.writer, self.reader = writer, reader

    @property
    def relayed(self) -> set[str]:
        return set(self.reader.doc.get("tokens", type=Array).to_py() or [])

    async def stream(self, prefix: str, count: int) -> None:
        """Send `count` edits, about 200 a second (until the server goes away)."""
        try:
            for index in range(count):
                await self.writer.edit(f"{prefix}-{index}")
                await anyio.sleep(0.005)
        except ConnectionClosed:
            pass  # its server was killed

    async def until_relayed(self, prefix: str, count: int) -> None:
        with anyio.fail_after(10):
            while len({t for t in self.relayed if t.startswith(f"{prefix}-")}) < count:
                await anyio.sleep(0.01)


@asynccontextmanager
async def editing(port: int) -> AsyncIterator[Session]:
    url = f"ws://127.0.0.1:{port}/{ROOM}/{PATH}"
    async with (
        connect(url, max_size=None) as writer_socket,
        connect(url, max_size=None) as reader_socket,
        anyio.create_task_group() as group,
    ):
        session = Session(Editor(writer_socket), Editor(reader_socket))
        for peer in (session.writer, session.reader):
            group.start_soon(peer.receive)
            await peer.ws.send(create_sync_message(peer.doc))
        with anyio.fail_after(15):
            await session.writer.synced.wait()
            await session.reader.synced.wait()
        yield session
        group.cancel_scope.cancel()


async def kill_while_editing(
    session: Session, process: subprocess.Popen[bytes], prefix: str
) -> None:
    """Stream edits and SIGKILL `process` in the middle of them."""
    async with anyio.create_task_group() as group:
        group.start_soon(session.stream, prefix, 200)
        await anyio.sleep(0.4)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    await anyio.sleep(0.2)  # what the killed process relayed still arrives


def check(stored: list[str], relayed: set[str], sent: set[str]) -> None:
    assert len(stored) == len(set(stored)), "edits stored twice"
    lost = relayed - set(stored)
    assert not lost, f"{len(lost)} relayed edits are not in storage: {sorted(lost)[:5]}"
    assert set(stored) <= sent, "edits nobody sent"


async def test_sigkill_of_the_process_without_storage_loses_nothing(cluster_url, tmp_path):
    rooms = tmp_path / "rooms"
    a = serve(free_port(), cluster_url, rooms)
    port_b = free_port()
    b = serve(port_b, cluster_url)
    try:
        async with editing(port_b) as session:
            await kill_while_editing(session, b, "b")
            relayed, sent = session.relayed, set(session.writer.sent)
        assert len(relayed) > 20
        stop(a)
    finally:
        for process in (a, b):
            if process.poll() is None:
                process.kill()
    check(await stored_tokens(rooms), relayed, sent)


async def test_sigkill_of_the_writer_then_restart_loses_nothing(cluster_url, tmp_path):
    rooms = tmp_path / "rooms"
    port_a, port_b = free_port(), free_port()
    a = serve(port_a, cluster_url, rooms)
    b = serve(port_b, cluster_url)
    try:
        async with editing(port_b) as session:
            await session.stream("before", 20)
            await session.until_relayed("before", 20)
            await kill_while_editing(session, a, "during")
            # B goes on without a writer: its edits wait in the stream.
            await session.stream("alone", 50)
            a = serve(port_a, cluster_url, rooms)
            await session.stream("after", 50)
            await session.until_relayed("after", 50)
            relayed, sent = session.relayed, set(session.writer.sent)
        stop(b)
        stop(a)
    finally:
        for process in (a, b):
            if process.poll() is None:
                process.kill()
    assert {token.split("-")[0] for token in relayed} == {"before", "during", "alone", "after"}
    check(await stored_tokens(rooms), relayed, sent)


async def test_graceful_stops_lose_nothing(cluster_url, tmp_path):
    rooms = tmp_path / "rooms"
    port_a, port_b = free_port(), free_port()
    a = serve(port_a, cluster_url, rooms)
    b = serve(port_b, cluster_url)
    relayed: set[str] = set()
    sent: set[str] = set()
    try:
        async with editing(port_b) as session:
            async with anyio.create_task_group() as group:
                group.start_soon(session.stream, "one", 150)
                await anyio.sleep(0.3)
                stop(a)  # the writer stops while B's clients edit
            a = serve(port_a, cluster_url, rooms)
            await session.stream("two", 30)
            await session.until_relayed("two", 30)
            async with anyio.create_task_group() as group:
                group.start_soon(session.stream, "three", 100)
                await anyio.sleep(0.2)
                stop(b)  # the process without storage stops while its clients edit
            relayed, sent = session.relayed, set(session.writer.sent)
        stop(a)
    finally:
        for process in (a, b):
            if process.poll() is None:
                process.kill()
    assert {token.split("-")[0] for token in relayed} == {"one", "two", "three"}
    check(await stored_tokens(rooms), relayed, sent)


async def test_a_second_process_with_storage_takes_over_a_dead_writer(cluster_url, tmp_path):
    rooms = tmp_path / "rooms"
    port_b = free_port()
    first = serve(free_port(), cluster_url, rooms)
    second = serve(free_port(), cluster_url, rooms)  # both store to the same folder
    b = serve(port_b, cluster_url)
    lease = lease_key("meshroom", member_of(ROOM, PATH))
    sync_redis = redis.Redis.from_url(cluster_url)
    try:
        async with editing(port_b) as session:
            await session.stream("start", 20)
            await session.until_relayed("start", 20)
            with anyio.fail_after(5):
                while (holder := sync_redis.get(lease)) is None:
                    await anyio.sleep(0.05)
            writer, other = (
                (first, second) if holder.decode() in serve_output(first) else (second, first)
            )
            assert holder.decode() not in serve_output(other)
            await kill_while_editing(session, writer, "kill")
            killed_at = anyio.current_time()
            # The other one takes the document over once the lease ran out.
            with anyio.fail_after(float(LEASE) + 3):
                while (taker := sync_redis.get(lease)) in (None, holder):
                    await anyio.sleep(0.05)
            assert taker.decode() in serve_output(other)
            took = anyio.current_time() - killed_at
            await session.stream("after", 50)
            await session.until_relayed("after", 50)
            relayed, sent = session.relayed, set(session.writer.sent)
        stop(b)
        stop(other)
    finally:
        sync_redis.close()
        for process in (first, second, b):
            if process.poll() is None:
                process.kill()
    assert took < float(LEASE) + 3
    check(await stored_tokens(rooms), relayed, sent)
