"""Durable relay: an edit the server relayed to anyone survives a SIGKILL of the server.

`meshroom serve --storage DIR` runs as a subprocess, as a user runs it. In each trial
a writer streams edits (one unique token each, about 100 a second) while a reader on
its own socket receives what the server relays; the server is killed with SIGKILL at
a random moment and restarted on the same folder. Every token the reader received
must be in the stored document after the restart, none twice. The server writes an
update to its log before it relays it, so nothing is tolerated: not the last batch,
not the last millisecond. `MESHROOM_CRASH_TRIALS` sets the number of kills (100).
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import anyio
import pytest
from conftest import free_port
from pycrdt import Array, create_sync_message
from test_crash import Editor, read_tokens, serve_subprocess, wait_until_up
from websockets.asyncio.client import connect

pytestmark = pytest.mark.anyio

TRIALS = int(os.environ.get("MESHROOM_CRASH_TRIALS", "100"))


async def test_sigkill_loses_no_relayed_edit(tmp_path: Path) -> None:
    storage = tmp_path / "rooms"
    storage.mkdir()
    rng = random.Random(os.environ.get("MESHROOM_CRASH_SEED", "relay"))
    options = ("--storage-debounce", "0.05", "--storage-max-delay", "0.2")
    relayed: set[str] = set()
    sent: set[str] = set()
    relayed_at_kill = []
    started = time.monotonic()
    for trial in range(TRIALS + 1):
        port = free_port()
        with serve_subprocess(storage, port, *options) as process:
            await wait_until_up(process, port)
            stored = await read_tokens(port)
            assert len(stored) == len(set(stored)), f"trial {trial}: duplicated edits"
            lost = relayed - set(stored)
            assert not lost, f"trial {trial}: {len(lost)} relayed edits lost: {sorted(lost)[:5]}"
            assert set(stored) <= sent, f"trial {trial}: edits nobody sent"
            if trial == TRIALS:
                break
            url = f"ws://127.0.0.1:{port}/crash/doc"
            async with (
                connect(url, max_size=None) as writer_socket,
                connect(url, max_size=None) as reader_socket,
            ):
                writer, reader = Editor(writer_socket), Editor(reader_socket)
                async with anyio.create_task_group() as group:
                    for peer in (writer, reader):
                        group.start_soon(peer.receive)
                        await peer.ws.send(create_sync_message(peer.doc))
                    with anyio.fail_after(15):
                        await writer.synced.wait()
                        await reader.synced.wait()
                    stop = anyio.Event()
                    group.start_soon(_stream, writer, f"t{trial}", stop)
                    await anyio.sleep(rng.uniform(0.05, 0.4))
                    process.send_signal(signal.SIGKILL)
                    process.wait()
                    stop.set()
                    # What the server wrote to the reader's socket before it died still
                    # arrives; the receive loop ends at the connection's end.
                    with anyio.fail_after(10):
                        await _until_closed(reader)
                    group.cancel_scope.cancel()
            sent |= set(writer.sent)
            received = set(reader.doc.get("tokens", type=Array).to_py() or [])
            relayed_at_kill.append(len(received - relayed))
            relayed |= received
    seconds = time.monotonic() - started
    print(
        f"\n{TRIALS} kills in {seconds:.0f} s: {len(sent)} edits sent, {len(relayed)} relayed, "
        f"0 lost, 0 duplicated; new relayed edits per trial: min {min(relayed_at_kill)}, "
        f"max {max(relayed_at_kill)}"
    )
    assert len(relayed) > TRIALS * 3  # the trials really edited


async def _stream(editor: Editor, prefix: str, stop: anyio.Event) -> None:
    index = 0
    try:
        while not stop.is_set():
            await editor.edit(f"{prefix}-{index}")
            index += 1
            await anyio.sleep(0.01)
    except Exception:  # the server died mid-send
        pass


async def _until_closed(editor: Editor) -> None:
    while editor.ws.state.name != "CLOSED":
        await anyio.sleep(0.01)
