"""The StorageProvider / FileStore contract, on every real backend.

Local folder, ``memory://``, S3 (a moto server on 127.0.0.1 through s3fs) and
the SQLite example provider all run the same tests.
"""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from pycrdt import Array, Doc, Text

from meshroom import RoomNameError
from meshroom.storage import FileStore, FsspecStorage, StorageProvider

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the server runs on asyncio (uvicorn)


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_sqlite_example() -> Any:
    spec = importlib.util.spec_from_file_location("sqlite_storage", EXAMPLES / "sqlite_storage.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    import s3fs

    fs = s3fs.S3FileSystem(
        key="testing", secret="testing", client_kwargs={"endpoint_url": endpoint}
    )
    fs.makedirs("meshroom-test", exist_ok=True)  # moto's backend is per process
    yield endpoint
    server.stop()


def s3_storage(endpoint: str, **options: Any) -> FsspecStorage:
    return FsspecStorage(
        f"s3://meshroom-test/{uuid.uuid4().hex}",
        key="testing",
        secret="testing",
        client_kwargs={"endpoint_url": endpoint, "region_name": "us-east-1"},
        **options,
    )


@pytest.fixture(params=["local", "memory", "s3", "sqlite"])
def provider(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    kind = request.param
    if kind == "local":
        yield FsspecStorage(str(tmp_path / "rooms"))
    elif kind == "memory":
        yield FsspecStorage(f"memory://{uuid.uuid4().hex}")
    elif kind == "s3":
        yield s3_storage(request.getfixturevalue("s3_endpoint"))
    else:
        storage = load_sqlite_example().SqliteStorage(str(tmp_path / "rooms.sqlite"))
        yield storage
        storage.close()


def edit(doc: Doc, token: str) -> bytes:
    """Append `token` to the doc's "tokens" array; return that edit's update."""
    before = doc.get_state()
    doc.get("tokens", type=Array).append(token)
    return doc.get_update(before)


def replay(snapshot: bytes | None, log: list[bytes]) -> Doc:
    doc = Doc()
    for update in ([snapshot] if snapshot else []) + log:
        doc.apply_update(update)
    return doc


def tokens(doc: Doc) -> list[str]:
    return list(doc.get("tokens", type=Array))


async def test_implements_the_protocols(provider: Any) -> None:
    assert isinstance(provider, StorageProvider)
    assert isinstance(provider, FileStore)


async def test_empty_document_reads_as_nothing(provider: Any) -> None:
    assert await provider.read_snapshot("room", "doc") is None
    assert await provider.read_log("room", "doc") == []
    assert await provider.list_rooms() == []
    assert await provider.list_documents("room") == []


async def test_snapshot_round_trip_and_replace(provider: Any) -> None:
    doc = Doc()
    doc["text"] = text = Text("hello")
    await provider.write_snapshot("room", "notes/plan.md", doc.get_update())
    text += " world"
    await provider.write_snapshot("room", "notes/plan.md", doc.get_update())
    loaded = replay(await provider.read_snapshot("room", "notes/plan.md"), [])
    assert str(loaded.get("text", type=Text)) == "hello world"


async def test_log_keeps_order_across_batches(provider: Any) -> None:
    doc = Doc()
    updates = [edit(doc, f"t{i}") for i in range(30)]
    for start in range(0, 30, 7):
        await provider.append_updates("room", "doc", updates[start : start + 7])
    assert await provider.read_log("room", "doc") == updates
    assert tokens(replay(None, await provider.read_log("room", "doc"))) == [
        f"t{i}" for i in range(30)
    ]


async def test_compact_folds_the_log_into_the_snapshot(provider: Any) -> None:
    doc = Doc()
    await provider.append_updates("room", "doc", [edit(doc, "a"), edit(doc, "b")])
    await provider.compact("room", "doc", doc.get_update())
    assert await provider.read_log("room", "doc") == []
    await provider.append_updates("room", "doc", [edit(doc, "c")])
    loaded = replay(
        await provider.read_snapshot("room", "doc"), await provider.read_log("room", "doc")
    )
    assert tokens(loaded) == ["a", "b", "c"]


async def test_snapshot_plus_overlapping_log_never_duplicates(provider: Any) -> None:
    # What a crash between "write snapshot" and "drop log" leaves behind.
    doc = Doc()
    updates = [edit(doc, f"t{i}") for i in range(10)]
    await provider.append_updates("room", "doc", updates)
    await provider.write_snapshot("room", "doc", doc.get_update())
    loaded = replay(
        await provider.read_snapshot("room", "doc"), await provider.read_log("room", "doc")
    )
    assert tokens(loaded) == [f"t{i}" for i in range(10)]


async def test_documents_and_rooms_are_listed_by_their_names(provider: Any) -> None:
    names = [
        ("team a", "notes/plan.md"),
        ("team a", "notes"),
        ("team a", "a.ydoc/log"),
        ("team a", "a"),
        ("../evil", "x.ydoc"),
        ("ü/%2F", "[*]"),
    ]
    doc = Doc()
    for room, path in names:
        await provider.write_snapshot(room, path, doc.get_update())
    assert await provider.list_rooms() == sorted({"team a", "../evil", "ü/%2F"})
    assert await provider.list_documents("team a") == ["a", "a.ydoc/log", "notes", "notes/plan.md"]
    assert await provider.list_documents("../evil") == ["x.ydoc"]
    assert await provider.list_documents("ü/%2F") == ["[*]"]
    await provider.delete("team a", "notes")
    await provider.delete("team a", "a")
    await provider.delete("team a", "never-existed")
    assert await provider.list_documents("team a") == ["a.ydoc/log", "notes/plan.md"]
    assert await provider.read_snapshot("team a", "notes") is None
    assert await provider.read_snapshot("team a", "notes/plan.md") is not None


async def test_delete_removes_snapshot_and_log(provider: Any) -> None:
    doc = Doc()
    await provider.append_updates("room", "doc", [edit(doc, "a")])
    await provider.write_snapshot("room", "doc", doc.get_update())
    await provider.delete("room", "doc")
    assert await provider.read_snapshot("room", "doc") is None
    assert await provider.read_log("room", "doc") == []
    await provider.append_updates("room", "doc", [edit(doc, "b")])
    assert tokens(replay(None, await provider.read_log("room", "doc"))) == []  # "b" alone
    assert len(await provider.read_log("room", "doc")) == 1


async def test_file_area(provider: Any) -> None:
    await provider.write_file("room", "reports/q3.md", b"# Q3")
    await provider.write_file("room", "a.txt", b"one")
    await provider.write_file("room", "a.txt", b"two")
    await provider.write_snapshot("room", "doc", Doc().get_update())
    assert await provider.list_files("room") == ["a.txt", "reports/q3.md"]
    assert await provider.list_files("room", "reports/") == ["reports/q3.md"]
    assert await provider.read_file("room", "a.txt") == b"two"
    assert await provider.list_files("other") == []
    await provider.delete_file("room", "a.txt")
    assert await provider.list_files("room") == ["reports/q3.md"]
    with pytest.raises(FileNotFoundError):
        await provider.read_file("room", "a.txt")
    with pytest.raises(FileNotFoundError):
        await provider.delete_file("room", "a.txt")


@pytest.mark.parametrize(
    "name", ["../escape", "a/../../b", "/etc/passwd", "", "a//b", "./a", "a\\b", "a\x00b"]
)
async def test_file_names_cannot_escape_the_room(provider: Any, name: str) -> None:
    with pytest.raises(RoomNameError):
        await provider.write_file("room", name, b"x")
    with pytest.raises(RoomNameError):
        await provider.read_file("room", name)
    assert await provider.list_files("room") == []


async def test_appends_while_a_compaction_runs_are_kept(provider: Any) -> None:
    doc = Doc()
    await provider.append_updates("room", "doc", [edit(doc, "before")])
    encoded = anyio.Event()
    late: list[bytes] = []

    def encode() -> bytes:
        state = doc.get_update()
        late.append(edit(doc, "late"))  # arrives once the snapshot is encoded
        encoded.set()
        return state

    async def append_late() -> None:
        await encoded.wait()
        await provider.append_updates("room", "doc", late)

    async with anyio.create_task_group() as group:
        group.start_soon(append_late)
        await provider.compact("room", "doc", encode)
    loaded = replay(
        await provider.read_snapshot("room", "doc"), await provider.read_log("room", "doc")
    )
    assert tokens(loaded) == ["before", "late"]
