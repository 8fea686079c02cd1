"""Storage through a real server: graceful shutdown, last leave, storage failing for a while."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import free_port, run_server
from pycrdt import create_sync_message
from test_crash import Editor, read_tokens, serve_subprocess, stream_edits, wait_until_up
from test_storage_extension import FlakyStorage
from test_storage_providers import replay, tokens
from websockets.asyncio.client import connect

from meshroom.storage import FsspecStorage, StorageExtension

pytestmark = pytest.mark.anyio


def snapshot_tokens(storage: Path, room: str, path: str) -> list[str]:
    """Tokens in the snapshot file alone (no log replay)."""
    snapshot = storage / room / "docs" / f"{path}.ydoc" / "snapshot.yjs"
    return tokens(replay(snapshot.read_bytes(), [])) if snapshot.exists() else []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_signal_during_editing_writes_everything(tmp_path: Path, signum: int) -> None:
    storage = tmp_path / "rooms"
    port = free_port()
    # Snapshots only at shutdown: the debounce never fires during the test.
    options = ("--storage-debounce", "60", "--storage-max-delay", "120")
    with serve_subprocess(storage, port, *options) as process:
        await wait_until_up(process, port)
        async with connect(f"ws://127.0.0.1:{port}/graceful/doc") as ws:
            editor = Editor(ws)
            stop = anyio.Event()
            async with anyio.create_task_group() as group:
                group.start_soon(editor.receive)
                await ws.send(create_sync_message(editor.doc))
                with anyio.fail_after(15):
                    await editor.synced.wait()
                group.start_soon(stream_edits, editor, "g", stop)
                await anyio.sleep(0.5)
                assert snapshot_tokens(storage, "graceful", "doc") == []
                signalled_at = time.monotonic()
                process.send_signal(signum)
                with anyio.fail_after(20):
                    while process.poll() is None:
                        await anyio.sleep(0.02)
                stop.set()
                group.cancel_scope.cancel()
        # uvicorn shuts down gracefully, then re-raises the signal it caught
        assert process.returncode in (0, -signum)
    stored = snapshot_tokens(storage, "graceful", "doc")
    assert len(stored) == len(set(stored))
    sent_before = {t for t, at in editor.sent.items() if at < signalled_at - 0.1}
    assert len(sent_before) > 20
    assert sent_before <= set(stored) <= set(editor.sent)
    # and a restarted server serves exactly that
    port = free_port()
    with serve_subprocess(storage, port, *options) as process:
        await wait_until_up(process, port)
        assert sorted(await read_tokens(port, "graceful", "doc")) == sorted(stored)


async def edit_and_leave(live: Any, room: str, count: int) -> set[str]:
    async with connect(live.url(room, "doc")) as ws:
        editor = Editor(ws)
        async with anyio.create_task_group() as group:
            group.start_soon(editor.receive)
            await ws.send(create_sync_message(editor.doc))
            with anyio.fail_after(15):
                await editor.synced.wait()
            for i in range(count):
                await editor.edit(f"{room}-{i}")
            # wait until the server holds every edit, then leave
            with anyio.fail_after(10):
                while True:
                    live_room = live.server.room(room)
                    docs = live_room.documents if live_room else {}
                    if "doc" in docs and len(tokens(docs["doc"].doc)) == count:
                        break
                    await anyio.sleep(0.01)
            group.cancel_scope.cancel()
    return set(editor.sent)


async def test_last_leave_writes_before_the_room_is_released(tmp_path: Path) -> None:
    storage = tmp_path / "rooms"
    extension = StorageExtension(FsspecStorage(str(storage)), debounce=60, max_delay=120)
    async with run_server(extensions=[extension], grace_period=0.2) as live:
        sent = await edit_and_leave(live, "leave", 40)
        assert snapshot_tokens(storage, "leave", "doc") == []  # nothing snapshotted yet
        with anyio.fail_after(10):
            while "leave" in live.server.room_names():
                await anyio.sleep(0.005)
        # the moment the room is gone, its snapshot holds everything
        assert set(snapshot_tokens(storage, "leave", "doc")) == sent
        assert list((storage / "leave" / "docs" / "doc.ydoc" / "log").iterdir()) == []


async def test_failing_storage_keeps_the_room_until_written(tmp_path: Path) -> None:
    storage = tmp_path / "rooms"
    flaky = FlakyStorage(FsspecStorage(str(storage)), failures=0)
    extension = StorageExtension(
        flaky, debounce=60, max_delay=120, retry_initial=0.02, retry_max=0.05, store_attempts=1
    )
    async with run_server(
        extensions=[extension], grace_period=0.1, store_retry=(0.05, 0.1)
    ) as live:
        flaky.failures = 1_000_000  # the disk is full from now on
        sent = await edit_and_leave(live, "flaky", 30)
        with anyio.fail_after(10):
            while flaky.failed < 5:  # the server keeps trying to store the closing room
                await anyio.sleep(0.01)
        assert "flaky" in live.server.room_names()
        assert snapshot_tokens(storage, "flaky", "doc") == []
        flaky.failures = 0  # space is back
        with anyio.fail_after(10):
            while "flaky" in live.server.room_names():
                await anyio.sleep(0.01)
        assert set(snapshot_tokens(storage, "flaky", "doc")) == sent
