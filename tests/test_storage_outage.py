"""Storage down: edits are held (never relayed unwritten), bounded, and kept by the client.

A real server stores through a provider whose writes fail while the test says so (a
disk full, a bucket unreachable). Relayed means written, so a reader sees nothing
until storage is back; then everything arrives and is stored. Past
`Limits.unwritten_bytes` the writer's socket is closed with `STORAGE_UNAVAILABLE`;
its client keeps the edits, reconnects, and they reach storage once it recovers.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pycrdt
import pytest
from conftest import eventually, run_server
from test_storage_extension import FlakyStorage

from meshroom import Limits, RoomClient
from meshroom.storage import FsspecStorage, StorageExtension

pytestmark = pytest.mark.anyio

DOWN = 10**9  # failures: down until the test sets it back to 0


async def stored_text(storage: FsspecStorage) -> str:
    doc = pycrdt.Doc()
    snapshot = await storage.read_snapshot("team", "doc")
    for update in ([snapshot] if snapshot else []) + await storage.read_log("team", "doc"):
        doc.apply_update(update)
    return str(doc.get("t", type=pycrdt.Text))


def text_of(doc: pycrdt.Doc) -> str:
    return str(doc.get("t", type=pycrdt.Text))


async def test_nothing_is_relayed_before_it_is_written(tmp_path: Path) -> None:
    inner = FsspecStorage(str(tmp_path / "rooms"))
    flaky = FlakyStorage(inner)
    extension = StorageExtension(flaky, retry_initial=0.05, retry_max=0.1)
    async with (
        run_server(extensions=[extension]) as live,
        RoomClient(live.base_url, "team", name="Ann") as ann,
        RoomClient(live.base_url, "team", name="Bob") as bob,
    ):
        mine, theirs = await ann.open_ydoc("doc"), await bob.open_ydoc("doc")
        flaky.failures = DOWN
        mine.get("t", type=pycrdt.Text).insert(0, "held")
        room = live.server.room("team")
        assert room is not None
        served = room.documents["doc"].doc
        await eventually(lambda: text_of(served) == "held")  # the server has it
        await eventually(lambda: flaky.failed >= 3)  # and failed to write it three times
        assert text_of(theirs) == ""  # so nobody was sent it
        flaky.failures = 0
        await eventually(lambda: text_of(theirs) == "held")
        assert await stored_text(inner) == "held"


async def test_held_bytes_are_bounded_and_the_writer_keeps_its_edits(tmp_path: Path) -> None:
    inner = FsspecStorage(str(tmp_path / "rooms"))
    flaky = FlakyStorage(inner)
    extension = StorageExtension(flaky, retry_initial=0.05, retry_max=0.1)
    limits = Limits(unwritten_bytes=2_000)
    async with (
        run_server(extensions=[extension], limits=limits) as live,
        RoomClient(live.base_url, "team", name="Ann") as ann,
        RoomClient(live.base_url, "team", name="Bob") as bob,
    ):
        mine, theirs = await ann.open_ydoc("doc"), await bob.open_ydoc("doc")
        room = live.server.room("team")
        assert room is not None
        document = room.documents["doc"]
        flaky.failures = DOWN
        text = mine.get("t", type=pycrdt.Text)
        typed = ""
        for index in range(60):
            chunk = f"{index:03d}" + "x" * 97
            text += chunk
            typed += chunk
            await anyio.sleep(0.005)
        # Refused past the bound: the server closed the writer's socket (Bob's stays).
        await eventually(lambda: len(document.sessions) == 1, timeout=10)
        assert document.unwritten_bytes <= limits.unwritten_bytes + 200
        assert text_of(served := document.doc) != typed  # the refused edits were not applied
        assert text_of(theirs) == ""
        flaky.failures = 0
        # The writer reconnects and resends what the server refused.
        await eventually(lambda: text_of(theirs) == typed, timeout=30)
        assert text_of(served) == typed and ann.connections("doc") >= 2
        assert await stored_text(inner) == typed
