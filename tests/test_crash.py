"""Crash safety: `meshroom serve --storage DIR` is killed with SIGKILL while a client edits.

Each trial streams edits (one unique token each, one every ~4 ms) into one
document, kills the server at a random moment, restarts it on the same folder
and reads the document back. What the test tolerates, and nothing more: edits
the client handed to its socket less than `MARGIN` (100 ms) before the SIGKILL
may be missing (the server appends each update to its log, fsynced, before it
relays it, so what it loses is only what was still in the socket or in the
write the kill interrupted). Every edit sent earlier must be there, no edit
appears twice, and nothing appears that was not sent. y-websocket has no
acknowledgements, so "sent" is the client's clock, not the server's.
Snapshots are made every ~0.1 s (debounce 0.05 s, max delay 0.2 s) and the
document holds a large text, so kills land during compactions too; the tokens
accumulate over the trials, so every restart re-checks everything stored before.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx
import pytest
from conftest import free_port
from pycrdt import (
    Array,
    Doc,
    Text,
    YMessageType,
    YSyncMessageType,
    create_sync_message,
    create_update_message,
    handle_sync_message,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

pytestmark = pytest.mark.anyio

TRIALS = 8
#: An edit sent this long before the kill must have been stored; later ones may be lost.
MARGIN = 0.1


@contextmanager
def serve_subprocess(storage: Path, port: int, *extra: str) -> Iterator[subprocess.Popen[bytes]]:
    """Run `meshroom serve` on `port` with `storage`; kill it if the test leaves it running."""
    # The `meshroom` console script, run by this interpreter.
    command = [
        sys.executable,
        "-c",
        "from meshroom.cli import main; main()",
        "serve",
        "--port",
        str(port),
        "--storage",
        str(storage),
        "--log-level",
        "warning",
        *extra,
    ]
    log = open(storage.parent / f"server-{port}.log", "ab")  # noqa: SIM115
    process = subprocess.Popen(command, stdout=log, stderr=log, env={**os.environ})
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        log.close()


async def wait_until_up(process: subprocess.Popen[bytes], port: int) -> None:
    async with httpx.AsyncClient() as client:
        with anyio.fail_after(30):
            while True:
                assert process.poll() is None, "meshroom serve exited"
                try:
                    if (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await anyio.sleep(0.05)


class Editor:
    """A minimal y-websocket peer: syncs a document and appends unique tokens to it."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.doc = Doc()
        self.tokens = self.doc.get("tokens", type=Array)
        self.synced = anyio.Event()
        #: token -> time its message was handed to the socket
        self.sent: dict[str, float] = {}

    async def receive(self) -> None:
        try:
            async for message in self.ws:
                assert isinstance(message, bytes)
                if message[0] != YMessageType.SYNC:
                    continue
                reply = handle_sync_message(message[1:], self.doc)
                if reply is not None:
                    await self.ws.send(reply)
                if message[1] == YSyncMessageType.SYNC_STEP2:
                    self.synced.set()
        except ConnectionClosed:
            pass

    async def edit(self, token: str, padding: str = "") -> None:
        before = self.doc.get_state()
        with self.doc.transaction():
            self.tokens.append(token)
            if padding:
                self.doc.get("text", type=Text).insert(0, padding)
        await self.ws.send(create_update_message(self.doc.get_update(before)))
        self.sent[token] = time.monotonic()


async def read_tokens(port: int, room: str = "crash", path: str = "doc") -> list[str]:
    """Connect, sync, and return the document's tokens."""
    async with connect(f"ws://127.0.0.1:{port}/{room}/{path}", max_size=None) as ws:
        editor = Editor(ws)
        async with anyio.create_task_group() as group:
            group.start_soon(editor.receive)
            await ws.send(create_sync_message(editor.doc))
            with anyio.fail_after(15):
                await editor.synced.wait()
            group.cancel_scope.cancel()
        return list(editor.tokens)


async def stream_edits(editor: Editor, prefix: str, stop: anyio.Event) -> None:
    index = 0
    try:
        while not stop.is_set():
            padding = "x" * 3_000_000 if index == 0 and prefix == "t0" else ""
            await editor.edit(f"{prefix}-{index}", padding)
            index += 1
            await anyio.sleep(0.004)
    except ConnectionClosed:
        pass


async def test_sigkill_at_random_moments_loses_at_most_the_last_batch(tmp_path: Path) -> None:
    storage = tmp_path / "rooms"
    storage.mkdir()
    rng = random.Random(os.environ.get("MESHROOM_CRASH_SEED", "crash"))
    options = ("--storage-debounce", "0.05", "--storage-max-delay", "0.2")
    must_have: set[str] = set()
    all_sent: set[str] = set()
    report = []
    for trial in range(TRIALS + 1):
        port = free_port()
        with serve_subprocess(storage, port, *options) as process:
            await wait_until_up(process, port)
            stored = await read_tokens(port)
            assert len(stored) == len(set(stored)), f"trial {trial}: duplicated edits"
            missing = must_have - set(stored)
            assert not missing, f"trial {trial}: {len(missing)} edits older than {MARGIN} s lost"
            assert set(stored) <= all_sent
            if trial == TRIALS:
                break
            async with connect(f"ws://127.0.0.1:{port}/crash/doc", max_size=None) as ws:
                editor = Editor(ws)
                stop = anyio.Event()
                async with anyio.create_task_group() as group:
                    group.start_soon(editor.receive)
                    await ws.send(create_sync_message(editor.doc))
                    with anyio.fail_after(15):
                        await editor.synced.wait()
                    group.start_soon(stream_edits, editor, f"t{trial}", stop)
                    await anyio.sleep(rng.uniform(0.2, 1.0))
                    if trial % 2:
                        # Kill while a snapshot is being written (its temp file exists).
                        await anyio.to_thread.run_sync(kill_during_snapshot, process, storage)
                    else:
                        process.send_signal(signal.SIGKILL)
                    killed_at = time.monotonic()
                    process.wait()
                    stop.set()
                    group.cancel_scope.cancel()
            all_sent |= set(editor.sent)
            old_enough = {t for t, at in editor.sent.items() if at < killed_at - MARGIN}
            must_have |= old_enough
            torn = (storage / "crash" / "docs" / "doc.ydoc" / "snapshot.yjs.tmp").exists()
            report.append((trial, len(editor.sent), len(old_enough), torn))
    print("\ntrial, edits sent, sent >100 ms before kill, killed mid-snapshot")
    for row in report:
        print(*row)
    assert len(must_have) > TRIALS * 20
    # at least one kill really interrupted a snapshot write
    assert any(row[3] for row in report)


def kill_during_snapshot(process: subprocess.Popen[bytes], storage: Path) -> None:
    """Poll for a snapshot temp file and SIGKILL the server the moment one appears."""
    tmp = storage / "crash" / "docs" / "doc.ydoc" / "snapshot.yjs.tmp"
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and not tmp.exists():
        pass
    process.send_signal(signal.SIGKILL)
