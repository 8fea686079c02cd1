"""Presence: the room document's participants and messages, as Node Yjs clients see them."""

from __future__ import annotations

import time

import anyio
import pytest
from conftest import eventually, open_node_peer, open_raw_peer

from meshroom import Access, Limits
from meshroom.server._presence import Presence, check_message

pytestmark = pytest.mark.anyio


def names(state) -> dict[str, tuple[str, str]]:
    return {key: (value["name"], value["kind"]) for key, value in state["participants"].items()}


@pytest.mark.interop
async def test_participants_follow_connections(live_server):
    base = live_server.base_url
    async with open_node_peer(base, "team", {"id": "ann", "name": "Ann"}) as ann:
        await ann.wait_event("synced")
        seen = await ann.wait_for(lambda s: "ann" in s["participants"])
        assert names(seen) == {"ann": ("Ann", "person")}
        entry = seen["participants"]["ann"]
        assert entry["attributes"] == {} and entry["joinedAt"] <= time.time() * 1000
        # Bob is an agent editing a document of the room (not the room document itself):
        # he is a participant all the same, with two connections.
        bob_doc = live_server.url("team", "notes/plan.md", id="bob", name="Bob", kind="agent")
        bob_other = live_server.url("team", "other.md", id="bob", name="Bob", kind="agent")
        async with open_raw_peer(bob_doc) as first:
            await first.recv()
            async with open_raw_peer(bob_other) as second:
                await second.recv()
                seen = await ann.wait_for(lambda s: "bob" in s["participants"])
                assert names(seen) == {"ann": ("Ann", "person"), "bob": ("Bob", "agent")}
            # One of Bob's two connections left: he is still here. The server has handled
            # the leave once the document has no session (both happen in one step).
            room = live_server.server.room("team")
            await eventually(lambda: not room.documents["other.md"].sessions)
            assert "bob" in room.participants()
            assert "bob" in (await ann.state())["participants"]
        await ann.wait_for(lambda s: "bob" not in s["participants"])
        assert live_server.server.room("team").participants().keys() == {"ann"}


@pytest.mark.interop
async def test_messages_are_shared_and_bounded(server_factory):
    async with server_factory(limits=Limits(room_messages=3)) as live:
        base = live.base_url
        async with (
            open_node_peer(base, "chat", {"id": "ann", "name": "Ann"}) as ann,
            open_node_peer(base, "chat", {"id": "bob", "name": "Bob"}) as bob,
        ):
            await ann.wait_event("synced")
            await bob.wait_event("synced")
            for index in range(4):
                message = {"from": "ann", "to": None, "text": f"m{index}", "time": 1000 + index}
                await ann.request("push", message=message)
            await live.server.send_message("chat", "server", json={"kind": "notice"}, to="bob")

            def texts(state):
                return [m.get("text") or m.get("json") for m in state["messages"]]

            expected = ["m2", "m3", {"kind": "notice"}]
            final = await bob.wait_for(lambda s: texts(s) == expected)
            assert final["messages"][-1]["to"] == "bob"
            await ann.wait_for(lambda s: texts(s) == expected)
            room = live.server.room("chat")
            assert [m.get("text") for m in room.presence.messages.to_py()][:2] == ["m2", "m3"]


@pytest.mark.interop
async def test_clients_cannot_forge_participants_or_messages(server_factory):
    async with server_factory(limits=Limits(read_only_violations=1)) as live:
        base = live.base_url
        async with (
            open_node_peer(base, "guarded", {"id": "ann", "name": "Ann"}) as ann,
            open_node_peer(base, "guarded", {"id": "eve", "name": "Eve"}) as eve,
        ):
            await ann.wait_for(lambda s: set(s["participants"]) == {"ann", "eve"})
            await eve.wait_event("synced")
            # Eve claims to be someone else, then forges a participant: both refused.
            forged = {"from": "ann", "to": None, "text": "I am Ann", "time": 1}
            await eve.request("push", message=forged)
            await eve.request("forge", key="mallory", value={"name": "M", "kind": "person"})
            close = await eve.wait_event("close")
            assert close["code"] == 4403
            assert "participants are maintained by the server" in close["reason"]
            # Ann's document never saw them; the server's neither.
            await ann.request("push", message={"from": "ann", "text": "real", "time": 2})
            state = await ann.wait_for(lambda s: len(s["messages"]) == 1)
            assert [m["text"] for m in state["messages"]] == ["real"]
            assert "mallory" not in state["participants"]
            room = live.server.room("guarded")
            assert "mallory" not in room.participants()
            assert [m["text"] for m in room.presence.messages.to_py()] == ["real"]


def test_check_message_rules():
    good = {"from": "a", "to": None, "text": "hi", "time": 1}
    assert check_message(good) is None
    assert check_message(good, sender="a") is None
    assert "may not claim" in check_message(good, sender="b")
    assert "exactly one" in check_message({"from": "a", "time": 1})
    assert "exactly one" in check_message({"from": "a", "text": "x", "json": 1, "time": 1})
    assert "unknown room message fields" in check_message({**good, "extra": 1})
    assert "'time'" in check_message({"from": "a", "text": "x", "time": "now"})
    assert "'to'" in check_message({**good, "to": 5})
    assert "must be an object" in check_message(["x"])


def test_presence_counts_connections_and_refuses_edits():
    import pycrdt

    doc = pycrdt.Doc()
    presence = Presence(doc, max_messages=2)
    ann = Access(participant_id="ann", name="Ann", attributes={"color": "red"})
    presence.join(ann)
    presence.join(ann)
    presence.leave(ann)
    assert presence.snapshot()["ann"]["attributes"] == {"color": "red"}
    presence.leave(ann)
    assert presence.snapshot() == {}
    for index in range(3):
        presence.append("ann", text=str(index))
    assert [m["text"] for m in presence.messages.to_py()] == ["1", "2"]
    # A client copy that deletes a message is refused; appending its own is allowed.
    client = pycrdt.Doc()
    client.apply_update(doc.get_update())
    state = client.get_state()
    messages = client.get("messages", type=pycrdt.Array)
    del messages[0]
    assert presence.check_client_update(client.get_update(state), "ann") == (
        "room messages can only be appended"
    )
    client = pycrdt.Doc()
    client.apply_update(doc.get_update())
    state = client.get_state()
    client.get("messages", type=pycrdt.Array).append({"from": "ann", "text": "ok", "time": 3})
    assert presence.check_client_update(client.get_update(state), "ann") is None
    assert presence.check_client_update(b"\x01\x02junk", "ann").startswith("not a Yjs update")
    client = pycrdt.Doc()
    client.apply_update(doc.get_update())
    state = client.get_state()
    client.get("elsewhere", type=pycrdt.Map)["x"] = 1
    problem = presence.check_client_update(client.get_update(state), "ann")
    assert "only has participants, documents, toolkits, queues, streams, messages" in problem
    # The live document was never touched by the checks.
    assert [m["text"] for m in presence.messages.to_py()] == ["1", "2"]


@pytest.mark.interop
async def test_stale_room_document_after_a_restart_is_repaired():
    """A client keeps its room document across a server restart: the new server repairs it.

    Its stale participants vanish for it, its own old messages stay, and its next
    message goes through (nothing of it is stuck waiting for refused updates).
    """
    from conftest import free_port, run_server

    port = free_port()
    base = f"ws://127.0.0.1:{port}"
    async with open_node_peer(base, "restart", {"id": "ann", "name": "Ann"}) as ann:
        async with (
            run_server(port=port),
            open_node_peer(base, "restart", {"id": "bob", "name": "Bob"}) as bob,
        ):
            await ann.wait_for(lambda s: set(s["participants"]) == {"ann", "bob"})
            await bob.request("push", message={"from": "bob", "text": "b1", "time": 1})
            await ann.request("push", message={"from": "ann", "text": "a1", "time": 2})
            await ann.wait_for(lambda s: len(s["messages"]) == 2)
        # Bob left while the server was down; Ann reconnects to a fresh server.
        await ann.wait_event("close")
        async with run_server(port=port) as second:
            await ann.wait_for(lambda s: s["connected"] and s["synced"])
            seen = await ann.wait_for(lambda s: set(s["participants"]) == {"ann"})
            assert [m["text"] for m in seen["messages"]] == ["a1"]  # Bob's stale one is gone
            await ann.request("push", message={"from": "ann", "text": "a2", "time": 3})
            room = second.server.room("restart")
            with anyio.fail_after(10):
                while [m["text"] for m in room.presence.messages.to_py()] != ["a1", "a2"]:
                    await anyio.sleep(0.02)
            assert set(room.participants()) == {"ann"}
