"""The room document's `documents` map: stored and open documents, who has them open.

Read by an unmodified Node y-websocket client as plain Y.Map JSON, and by `RoomClient`
(`documents`, `list_documents`, `on_documents_changed`); kept by the server alone.
"""

from __future__ import annotations

import anyio
import pytest
from conftest import eventually, open_node_peer

from meshroom import Limits, RoomClient
from meshroom._exceptions import MeshroomError
from meshroom.agents import EmbeddedPeer
from meshroom.storage import FsspecStorage, StorageExtension

pytestmark = pytest.mark.anyio


@pytest.mark.interop
async def test_node_client_sees_documents_open_and_close(live_server):
    async with open_node_peer(live_server.base_url, "team", {"id": "ann", "name": "Ann"}) as ann:
        await ann.wait_event("synced")
        async with RoomClient(live_server.base_url, "team", id="py", name="Py") as client:
            await client.open("notes/plan.md")
            seen = await ann.wait_for(lambda s: "notes/plan.md" in s["documents"])
            entry = seen["documents"]["notes/plan.md"]
            assert entry == {"size": 0, "modified": None, "stored": False, "open": ["py"]}
            await client.close_document("notes/plan.md")
            seen = await ann.wait_for(lambda s: s["documents"]["notes/plan.md"]["open"] == [])
            # still live in the room (its state is kept until the room closes): listed
            assert seen["documents"]["notes/plan.md"]["stored"] is False


@pytest.mark.interop
async def test_a_client_writing_documents_is_repaired(server_factory):
    async with server_factory(limits=Limits(read_only_violations=5)) as live:
        base = live.base_url
        async with (
            open_node_peer(base, "guarded", {"id": "ann", "name": "Ann"}) as ann,
            open_node_peer(base, "guarded", {"id": "eve", "name": "Eve"}) as eve,
        ):
            await ann.wait_event("synced")
            await eve.wait_event("synced")
            async with RoomClient(base, "guarded", id="py") as client:
                await client.open("real.md")
                await ann.wait_for(lambda s: "real.md" in s["documents"])
                forged = {"size": 1, "modified": 1, "stored": True, "open": ["mallory"]}
                await eve.request("forge", map="documents", key="fake.md", value=forged)
                await eve.request("forge", map="documents", key="real.md", value=forged)
                # Eve's own copy is repaired too; Ann never sees the forgery.
                await eve.wait_for(
                    lambda s: (
                        "fake.md" not in s["documents"]
                        and s["documents"]["real.md"]["open"] == ["py"]
                    )
                )
                state = await ann.state()
                assert set(state["documents"]) == {"real.md"}
                assert state["documents"]["real.md"]["open"] == ["py"]
                assert client.documents["real.md"]["open"] == ["py"]
                assert set(live.server.room("guarded").presence.entries("documents")) == {"real.md"}


async def test_stored_documents_are_listed_before_anyone_opens_them(server_factory, tmp_path):
    provider = FsspecStorage(str(tmp_path))
    async with server_factory(extensions=[StorageExtension(provider, debounce=0.05)]) as live:
        async with RoomClient(live.base_url, "archive", id="writer") as writer:
            document = await writer.open("reports/q1.md")
            document.root.append_child("paragraph").append_text("Revenue grew.")
            # the storage reports its snapshot: stored, with its size and time
            with anyio.fail_after(10):
                await writer.wait_for(lambda: writer.documents["reports/q1.md"]["stored"])
            entry = writer.documents["reports/q1.md"]
            assert entry["size"] > 0 and entry["modified"] is not None
        await eventually(lambda: live.server.room("archive") is None)
        # The room opens again: nobody opened the document, the listing found it.
        async with RoomClient(live.base_url, "archive", id="reader") as reader:
            listed = await reader.list_documents()
            assert list(listed) == ["reports/q1.md"]
            entry = listed["reports/q1.md"]
            assert entry["stored"] is True and entry["open"] == []
            assert entry["size"] > 0 and entry["modified"] is not None


async def test_change_events_and_list_documents(live_server):
    async with (
        RoomClient(live_server.base_url, "events", id="watcher") as watcher,
        RoomClient(live_server.base_url, "events", id="editor") as editor,
    ):
        assert await watcher.list_documents() == {}
        seen: list[dict] = []
        unsubscribe = watcher.on_documents_changed(seen.append)
        await editor.open("a.md")
        with anyio.fail_after(5):
            await watcher.wait_for(lambda: seen and seen[-1].get("a.md", {}).get("open"))
        assert seen[-1]["a.md"]["open"] == ["editor"]
        await watcher.open("a.md")
        with anyio.fail_after(5):
            await watcher.wait_for(lambda: seen[-1]["a.md"]["open"] == ["editor", "watcher"])
        unsubscribe()
        count = len(seen)
        await editor.open("b.md")
        with anyio.fail_after(5):
            await watcher.wait_for(lambda: "b.md" in watcher.documents)
        assert len(seen) == count  # unsubscribed: no more calls
        assert set(watcher.open_documents) == {"a.md"}


async def test_embedded_agent_is_listed_as_having_it_open(live_server):
    server = live_server.server
    async with RoomClient(live_server.base_url, "embed", id="ann") as ann:
        async with EmbeddedPeer(server, "embed", name="Helper", id="helper") as peer:
            await peer.open("shared.md")
            with anyio.fail_after(5):
                await ann.wait_for(lambda: "shared.md" in ann.documents)
            assert ann.documents["shared.md"]["open"] == ["helper"]
            assert list(await peer.list_documents()) == ["shared.md"]
            assert set(peer.open_documents) == {"shared.md"}
        with anyio.fail_after(5):
            await ann.wait_for(lambda: ann.documents["shared.md"]["open"] == [])


async def test_delete_document(server_factory, tmp_path):
    provider = FsspecStorage(str(tmp_path))
    async with server_factory(extensions=[StorageExtension(provider, debounce=0.05)]) as live:
        server = live.server
        async with RoomClient(live.base_url, "trash", id="ann") as ann:
            document = await ann.open("old.md")
            document.root.append_child("paragraph").append_text("Obsolete.")
            with anyio.fail_after(10):
                await ann.wait_for(lambda: ann.documents["old.md"]["stored"])
            with pytest.raises(MeshroomError, match="is open \\(ann\\)"):
                await server.delete_document("trash", "old.md")
            assert await provider.list_documents("trash") == ["old.md"]
            await ann.close_document("old.md")
            with anyio.fail_after(5):
                await ann.wait_for(lambda: ann.documents["old.md"]["open"] == [])
            await server.delete_document("trash", "old.md")
            with anyio.fail_after(5):
                await ann.wait_for(lambda: "old.md" not in ann.documents)
            assert await provider.list_documents("trash") == []
            assert "old.md" not in server.room("trash").documents
            # Opening the path again creates a new, empty document.
            again = await ann.open("old.md")
            assert again.to_xml() == ""
        # Deleting in a room nobody is in works too (and a missing path is no error).
        await server.delete_document("elsewhere", "never.md")


async def test_the_documents_toolkit_lists_stored_documents_without_a_storage_object(
    server_factory, tmp_path
):
    """An embedded agent's `list_documents` tool reads the room document: no provider given."""
    import json

    from meshroom.agents import ToolContext
    from meshroom.agents.toolkits import documents_toolkit

    provider = FsspecStorage(str(tmp_path))
    async with server_factory(extensions=[StorageExtension(provider, debounce=0.05)]) as live:
        async with RoomClient(live.base_url, "kept", id="writer") as writer:
            document = await writer.open("minutes/monday")
            document.root.append_child("paragraph").append_text("Decided: ship.")
            with anyio.fail_after(10):
                await writer.wait_for(lambda: writer.documents["minutes/monday"]["stored"])
        await eventually(lambda: live.server.room("kept") is None)
        async with EmbeddedPeer(live.server, "kept", name="Helper", id="helper") as peer:
            toolkit = documents_toolkit()
            context = ToolContext(room="kept", caller="helper", client=peer)
            listed = await toolkit.execute(context, "list_documents", json.dumps({}))
            assert listed.data == ["minutes/monday"]
