"""StorageExtension driven directly with pycrdt documents and real providers."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest
from pycrdt import Array, Doc
from test_storage_providers import edit, replay, s3_endpoint, s3_storage, tokens

from meshroom import ChangePayload, LoadDocumentPayload, StorageError, StoreDocumentPayload
from meshroom.storage import FsspecStorage, StorageExtension

pytestmark = pytest.mark.anyio
__all__ = ["s3_endpoint"]  # the moto fixture, shared with the provider tests


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FlakyStorage:
    """A provider wrapper whose writes fail `failures` times (a disk full, S3 down)."""

    def __init__(self, inner: Any, failures: int = 0) -> None:
        self.inner = inner
        self.failures = failures
        self.failed = 0
        self.writes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _maybe_fail(self) -> None:
        if self.failures > 0:
            self.failures -= 1
            self.failed += 1
            raise StorageError("storage unavailable (test)", path="flaky")
        self.writes += 1

    async def append_updates(self, room: str, path: str, updates: Sequence[bytes]) -> None:
        self._maybe_fail()
        await self.inner.append_updates(room, path, updates)

    async def write_snapshot(self, room: str, path: str, snapshot: bytes) -> None:
        self._maybe_fail()
        await self.inner.write_snapshot(room, path, snapshot)

    async def compact(self, room: str, path: str, snapshot: bytes) -> None:
        self._maybe_fail()
        await self.inner.compact(room, path, snapshot)


def memory() -> FsspecStorage:
    return FsspecStorage(f"memory://{uuid.uuid4().hex}")


async def change(ext: StorageExtension, doc: Doc, token: str, room: str = "r", path: str = "d"):
    update = edit(doc, token)
    await ext.on_change(ChangePayload(room, path, doc, update, origin="peer"))


async def stored_tokens(provider: Any, room: str = "r", path: str = "d") -> list[str]:
    return tokens(
        replay(await provider.read_snapshot(room, path), await provider.read_log(room, path))
    )


async def wait_for(predicate: Callable[[], Any], timeout: float = 5.0) -> None:
    with anyio.fail_after(timeout):
        while not await predicate():
            await anyio.sleep(0.01)


@pytest.mark.parametrize("api", ["context_manager", "start_stop"])
async def test_every_change_reaches_the_log_quickly(api: str) -> None:
    provider = memory()
    ext = StorageExtension(provider, debounce=30, max_delay=60)
    if api == "context_manager":
        await ext.__aenter__()
    else:
        await ext.on_startup()
    doc = Doc()
    await ext.on_load_document(LoadDocumentPayload("r", "d", doc))
    for i in range(20):
        await change(ext, doc, f"t{i}")

    async def logged() -> bool:
        return len(await provider.read_log("r", "d")) == 20

    await wait_for(logged, timeout=2)
    assert await provider.read_snapshot("r", "d") is None  # debounce not reached
    assert await stored_tokens(provider) == [f"t{i}" for i in range(20)]
    if api == "context_manager":
        await ext.__aexit__(None, None, None)
    else:
        await ext.on_shutdown()
    # shutdown folded the log into a snapshot
    assert await provider.read_log("r", "d") == []
    assert tokens(replay(await provider.read_snapshot("r", "d"), [])) == [
        f"t{i}" for i in range(20)
    ]


async def test_snapshot_after_the_debounce_and_log_is_folded() -> None:
    provider = memory()
    async with StorageExtension(provider, debounce=0.2, max_delay=5) as ext:
        doc = Doc()
        await ext.on_load_document(LoadDocumentPayload("r", "d", doc))
        for i in range(5):
            await change(ext, doc, f"t{i}")

        async def snapshotted() -> bool:
            return await provider.read_snapshot("r", "d") is not None

        await wait_for(snapshotted)
        assert await provider.read_log("r", "d") == []
        assert ext.unsaved() == []
        assert tokens(replay(await provider.read_snapshot("r", "d"), [])) == [
            f"t{i}" for i in range(5)
        ]


async def test_constant_editing_is_still_snapshotted_by_max_delay() -> None:
    provider = memory()
    async with StorageExtension(provider, debounce=0.15, max_delay=0.3) as ext:
        doc = Doc()
        await ext.on_load_document(LoadDocumentPayload("r", "d", doc))
        seen_snapshot_while_editing = False
        for i in range(60):  # an edit every 20 ms: the debounce never elapses
            await change(ext, doc, f"t{i}")
            await anyio.sleep(0.02)
            if await provider.read_snapshot("r", "d") is not None:
                seen_snapshot_while_editing = True
        assert seen_snapshot_while_editing
    assert await stored_tokens(provider) == [f"t{i}" for i in range(60)]


async def test_room_close_writes_now_and_forgets_the_document() -> None:
    provider = memory()
    async with StorageExtension(provider, debounce=60, max_delay=60) as ext:
        doc = Doc()
        await ext.on_load_document(LoadDocumentPayload("r", "d", doc))
        await change(ext, doc, "a")
        await ext.on_store_document(StoreDocumentPayload("r", "d", doc, "room-close"))
        assert await provider.read_log("r", "d") == []
        assert tokens(replay(await provider.read_snapshot("r", "d"), [])) == ["a"]
        assert ext.unsaved() == []
        # reopening loads what was stored
        again = Doc()
        await ext.on_load_document(LoadDocumentPayload("r", "d", again))
        assert tokens(again) == ["a"]


async def test_load_replays_snapshot_and_log_without_duplicates() -> None:
    provider = memory()
    doc = Doc()
    updates = [edit(doc, f"t{i}") for i in range(6)]
    await provider.append_updates("r", "d", updates[:4])
    await provider.write_snapshot("r", "d", doc.get_update())  # covers all six
    await provider.append_updates("r", "d", updates[3:])  # overlap, as after a crash
    async with StorageExtension(provider, debounce=0.1, max_delay=1) as ext:
        loaded = Doc()
        await ext.on_load_document(LoadDocumentPayload("r", "d", loaded))
        assert tokens(loaded) == [f"t{i}" for i in range(6)]
        assert ext.unsaved() == [("r", "d")]  # the replayed log gets compacted

        async def compacted() -> bool:
            return await provider.read_log("r", "d") == []

        await wait_for(compacted)


async def test_a_record_yjs_rejects_is_skipped_not_fatal() -> None:
    provider = memory()
    doc = Doc()
    await provider.append_updates("r", "d", [edit(doc, "a"), b"\x05not an update", edit(doc, "b")])
    async with StorageExtension(provider) as ext:
        loaded = Doc()
        await ext.on_load_document(LoadDocumentPayload("r", "d", loaded))
        assert tokens(loaded) == ["a", "b"]


async def test_a_damaged_snapshot_refuses_to_load_and_is_left_alone() -> None:
    provider = memory()
    await provider.write_snapshot("r", "d", b"\xff\xfenot a yjs update")
    async with StorageExtension(provider) as ext:
        doc = Doc()
        with pytest.raises(StorageError, match="not a Yjs update"):
            await ext.on_load_document(LoadDocumentPayload("r", "d", doc))
        assert tokens(doc) == [] and ext.unsaved() == []
    assert await provider.read_snapshot("r", "d") == b"\xff\xfenot a yjs update"


async def test_failing_storage_loses_nothing_once_it_recovers() -> None:
    provider = FlakyStorage(memory(), failures=6)
    async with StorageExtension(
        provider, debounce=0.05, max_delay=0.2, retry_initial=0.02, retry_max=0.1
    ) as ext:
        doc = Doc()
        await ext.on_load_document(LoadDocumentPayload("r", "d", doc))
        for i in range(40):
            await change(ext, doc, f"t{i}")
            await anyio.sleep(0.01)

        async def all_stored() -> bool:
            return await stored_tokens(provider) == [f"t{i}" for i in range(40)]

        await wait_for(all_stored)
        assert provider.failed == 6


async def test_store_raises_while_failing_and_keeps_the_changes() -> None:
    provider = FlakyStorage(memory(), failures=1_000_000)
    async with StorageExtension(
        provider, debounce=60, max_delay=60, retry_initial=0.01, retry_max=0.02, store_attempts=2
    ) as ext:
        doc = Doc()
        await ext.on_load_document(LoadDocumentPayload("r", "d", doc))
        await change(ext, doc, "precious")
        with pytest.raises(StorageError, match="after 2 attempts"):
            await ext.on_store_document(StoreDocumentPayload("r", "d", doc, "room-close"))
        assert ext.unsaved() == [("r", "d")]
        provider.failures = 0  # storage is back: the server retries
        await ext.on_store_document(StoreDocumentPayload("r", "d", doc, "room-close"))
        assert ext.unsaved() == []
        assert await stored_tokens(provider) == ["precious"]


async def test_changes_to_a_never_loaded_document_merge_with_what_is_stored() -> None:
    provider = memory()
    stored = Doc()
    stored.get("tokens", type=Array).append("old")
    await provider.write_snapshot("r", "d", stored.get_update())
    async with StorageExtension(provider) as ext:
        fresh = Doc()  # the server skipped on_load_document
        await change(ext, fresh, "new")
        await ext.on_store_document(StoreDocumentPayload("r", "d", fresh, "room-close"))
    assert sorted(await stored_tokens(provider)) == ["new", "old"]


async def test_shutdown_writes_every_dirty_document(tmp_path: Path) -> None:
    provider = FsspecStorage(str(tmp_path))
    ext = StorageExtension(provider, debounce=60, max_delay=60, flush_interval=60)
    await ext.on_startup()
    docs = {f"doc{i}": Doc() for i in range(3)}
    for path, doc in docs.items():
        await ext.on_load_document(LoadDocumentPayload("r", path, doc))
        await change(ext, doc, path, path=path)
    await ext.on_shutdown()
    for path in docs:
        assert tokens(replay(await provider.read_snapshot("r", path), [])) == [path]


async def test_misuse_is_refused() -> None:
    provider = memory()
    with pytest.raises(ValueError, match="debounce"):
        StorageExtension(provider, debounce=5, max_delay=1)
    with pytest.raises(ValueError, match="store_attempts"):
        StorageExtension(provider, store_attempts=0)
    ext = StorageExtension(provider)
    with pytest.raises(RuntimeError, match="not running"):
        await ext.on_change(ChangePayload("r", "d", Doc(), b"\x00\x00", origin=None))
    async with ext:
        pass
    with pytest.raises(RuntimeError, match="more than once"):
        await ext.on_startup()


async def test_on_s3_every_batch_is_an_object_and_a_restart_loses_nothing(
    s3_endpoint: str,
) -> None:
    provider = s3_storage(s3_endpoint)
    ext = StorageExtension(provider, debounce=60, max_delay=120)
    await ext.on_startup()
    doc = Doc()
    await ext.on_load_document(LoadDocumentPayload("r", "d", doc))
    for i in range(10):
        await change(ext, doc, f"t{i}")
        await anyio.sleep(0.06)  # one flush per edit

    async def logged() -> bool:
        return len(await provider.read_log("r", "d")) == 10

    await wait_for(logged)
    segments = provider.fs.ls(f"{provider.root}/r/docs/d.ydoc/log", refresh=True)
    assert len(segments) > 1  # numbered objects, no appends
    # a "crashed" process never stored; a new one loads snapshot-less log
    async with StorageExtension(s3_storage_at(s3_endpoint, provider.root)) as again:
        loaded = Doc()
        await again.on_load_document(LoadDocumentPayload("r", "d", loaded))
        assert tokens(loaded) == [f"t{i}" for i in range(10)]
    await ext.on_shutdown()


def s3_storage_at(endpoint: str, root: str) -> FsspecStorage:
    return FsspecStorage(
        f"s3://{root}",
        key="testing",
        secret="testing",
        client_kwargs={"endpoint_url": endpoint, "region_name": "us-east-1"},
    )
