"""FsspecStorage specifics: the folder layout, log segments, torn tails, object mode."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest
from pycrdt import Array, Doc
from test_storage_providers import edit, replay, s3_endpoint, s3_storage, tokens

from meshroom import RoomNameError
from meshroom.storage import FsspecStorage

pytestmark = pytest.mark.anyio
__all__ = ["s3_endpoint"]  # the moto fixture, shared with the provider tests


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_local_layout_one_folder_per_room(tmp_path: Path) -> None:
    storage = FsspecStorage(str(tmp_path))
    doc = Doc()
    await storage.append_updates("team", "notes/plan.md", [edit(doc, "a")])
    await storage.write_snapshot("team", "notes/plan.md", doc.get_update())
    await storage.write_file("team", "reports/q3.md", b"# Q3")
    await storage.write_snapshot("..", "x", doc.get_update())
    doc_dir = tmp_path / "team" / "docs" / "notes" / "plan.md.ydoc"
    assert (doc_dir / "snapshot.yjs").read_bytes() == doc.get_update()
    assert [p.name for p in (doc_dir / "log").iterdir()] == ["00000000000000000001.ylog"]
    assert (tmp_path / "team" / "files" / "reports" / "q3.md").read_bytes() == b"# Q3"
    assert list((tmp_path / "team" / "tmp").iterdir()) == []  # atomic writes left nothing
    assert sorted(p.name for p in doc_dir.iterdir()) == ["log", "snapshot.yjs"]
    assert (tmp_path / "%2E%2E" / "docs" / "x.ydoc" / "snapshot.yjs").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["%2E%2E", "team"]


async def test_a_process_appends_to_one_segment_until_compaction(tmp_path: Path) -> None:
    storage = FsspecStorage(str(tmp_path))
    doc = Doc()
    for i in range(5):
        await storage.append_updates("r", "d", [edit(doc, f"t{i}")])
    log_dir = tmp_path / "r" / "docs" / "d.ydoc" / "log"
    assert len(list(log_dir.iterdir())) == 1
    await storage.compact("r", "d", doc.get_update())
    assert list(log_dir.iterdir()) == []
    await storage.append_updates("r", "d", [edit(doc, "after")])
    assert [p.name for p in log_dir.iterdir()] == ["00000000000000000002.ylog"]


async def test_torn_tail_is_skipped_and_the_next_process_starts_a_new_segment(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    doc = Doc()
    first = FsspecStorage(str(tmp_path))
    updates = [edit(doc, f"t{i}") for i in range(3)]
    for update in updates:
        await first.append_updates("r", "d", [update])
    segment = tmp_path / "r" / "docs" / "d.ydoc" / "log"
    (only,) = segment.iterdir()
    only.write_bytes(only.read_bytes()[:-3])  # kill -9 in the middle of the last write

    restarted = FsspecStorage(str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="meshroom.storage"):
        log = await restarted.read_log("r", "d")
    assert log == updates[:2]
    assert "short payload" in caplog.text
    await restarted.append_updates("r", "d", [edit(doc, "t3")])
    assert len(list(segment.iterdir())) == 2
    # t2 was torn away; t3 builds on it, so Yjs keeps t3 pending until t2 arrives
    # (in the server, t2 was never acknowledged; a client resync sends it again).
    assert tokens(replay(None, await restarted.read_log("r", "d"))) == ["t0", "t1"]
    resynced = replay(None, [*await restarted.read_log("r", "d"), updates[2]])
    assert tokens(resynced) == ["t0", "t1", "t2", "t3"]


async def test_garbage_segment_never_crashes_loading(tmp_path: Path) -> None:
    storage = FsspecStorage(str(tmp_path))
    doc = Doc()
    await storage.append_updates("r", "d", [edit(doc, "a")])
    log_dir = tmp_path / "r" / "docs" / "d.ydoc" / "log"
    (log_dir / "00000000000000000007.ylog").write_bytes(b"\xff" * 100)
    (log_dir / "not-a-segment.txt").write_bytes(b"ignored")
    assert tokens(replay(None, await FsspecStorage(str(tmp_path)).read_log("r", "d"))) == ["a"]


async def test_object_mode_writes_one_object_per_batch(s3_endpoint: str) -> None:
    storage = s3_storage(s3_endpoint)
    assert storage.log_mode == "objects"
    doc = Doc()
    for i in range(4):
        await storage.append_updates("r", "d", [edit(doc, f"t{i}"), edit(doc, f"u{i}")])
    prefix = f"{storage.root}/r/docs/d.ydoc/log"
    assert len(storage.fs.ls(prefix, refresh=True)) == 4
    await storage.compact("r", "d", doc.get_update())
    assert await storage.read_log("r", "d") == []
    await storage.append_updates("r", "d", [edit(doc, "late")])
    # a second process continues the numbering after what it finds
    restarted = FsspecStorage(
        f"s3://{storage.root}",
        key="testing",
        secret="testing",
        client_kwargs={"endpoint_url": s3_endpoint, "region_name": "us-east-1"},
    )
    await restarted.append_updates("r", "d", [edit(doc, "later")])
    loaded = replay(await restarted.read_snapshot("r", "d"), await restarted.read_log("r", "d"))
    assert tokens(loaded)[-2:] == ["late", "later"]


async def test_memory_log_can_be_forced_to_objects() -> None:
    storage = FsspecStorage(f"memory://{uuid.uuid4().hex}", log_mode="objects")
    doc = Doc()
    await storage.append_updates("r", "d", [edit(doc, "a")])
    await storage.append_updates("r", "d", [edit(doc, "b")])
    assert len(storage.fs.ls(f"{storage.root}/r/docs/d.ydoc/log")) == 2
    assert tokens(replay(None, await storage.read_log("r", "d"))) == ["a", "b"]


def test_bad_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="log_mode"):
        FsspecStorage(str(tmp_path), log_mode="sometimes")  # type: ignore[arg-type]


@pytest.mark.parametrize("room", ["", "a\x00b", "é" * 130, "%" * 90, "文" * 90])
async def test_bad_room_names_are_refused_before_any_io(tmp_path: Path, room: str) -> None:
    storage = FsspecStorage(str(tmp_path / "rooms"))
    with pytest.raises(RoomNameError):
        await storage.write_snapshot(room, "doc", Doc().get_update())
    assert not (tmp_path / "rooms").exists()


async def test_snapshot_is_a_plain_yjs_update(tmp_path: Path) -> None:
    storage = FsspecStorage(str(tmp_path))
    doc = Doc()
    doc.get("tokens", type=Array).extend(["x", "y"])
    await storage.compact("r", "d", doc.get_update())
    other = Doc()
    other.apply_update((tmp_path / "r" / "docs" / "d.ydoc" / "snapshot.yjs").read_bytes())
    assert tokens(other) == ["x", "y"]
