"""One room across processes: participants, messages, toolkits and documents are shared.

A real `redis-server` (no persistence) for this module; the servers are real: in-process
on their own uvicorn ports (each with its own `RedisExtension`, so its own process id in
the cluster), or a `meshroom serve --redis` subprocess where it must die by SIGKILL.
Clients are Node y-websocket peers and `RoomClient`s over real sockets, and an agent
driven by the scripted model server.
"""

from __future__ import annotations

import base64
import signal
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
import redis
from conftest import (
    LiveServer,
    free_port,
    open_node_peer,
    open_raw_peer,
    run_server,
    start_meshroom_serve,
)
from test_room_tools import slow_tools, text_tools

from meshroom import RoomClient
from meshroom.agents import Agent, OpenAILLM
from meshroom.client import RoomCallError
from meshroom.cluster import RedisExtension
from meshroom.protocol._messages import encode_update
from meshroom.testing import ScriptedLLMServer, call, reply, tool_calls

pytestmark = [pytest.mark.anyio, pytest.mark.interop]


@pytest.fixture
def prefix() -> str:
    """A key prefix of this test's own, so tests sharing the redis-server never meet."""
    return "r" + uuid.uuid4().hex[:12]


@asynccontextmanager
async def cluster_server(redis_url: str, prefix: str, **options: Any) -> AsyncIterator[LiveServer]:
    options.setdefault("heartbeat", 0.2)
    options.setdefault("liveness_timeout", 1.5)
    extension = RedisExtension(redis_url, stream_prefix=prefix, block=0.05, **options)
    async with run_server(extensions=[extension]) as live:
        live.extension = extension  # type: ignore[attr-defined]
        yield live


async def wait_for(client: Any, predicate: Any, timeout: float = 10) -> None:
    with anyio.fail_after(timeout):
        await client.wait_for(predicate)


async def test_participants_and_messages_are_the_same_on_both_processes(redis_url, prefix):
    async with (
        cluster_server(redis_url, prefix) as a,
        cluster_server(redis_url, prefix) as b,
        open_node_peer(a.base_url, "team", {"id": "ann", "name": "Ann"}) as ann,
        open_node_peer(b.base_url, "team", {"id": "bob", "name": "Bob"}) as bob,
    ):
        await ann.wait_event("synced")
        await bob.wait_event("synced")
        both = {"ann", "bob"}
        seen_on_b = await bob.wait_for(lambda s: set(s["participants"]) == both)
        seen_on_a = await ann.wait_for(lambda s: set(s["participants"]) == both)
        assert seen_on_a["participants"] == seen_on_b["participants"]
        processes = {a.extension.token, b.extension.token}
        assert seen_on_b["participants"]["ann"]["process"] == a.extension.token
        assert {entry["process"] for entry in seen_on_b["participants"].values()} == processes

        # The union is what a forgery is repaired to: A's participant stays listed on B.
        await bob.request("forge", key="ann", value={"name": "Mallory"})
        await bob.request("forge", key="eve", value={"name": "Eve"})
        await anyio.sleep(0.3)
        repaired = await bob.wait_for(lambda s: set(s["participants"]) == both)
        assert repaired["participants"] == seen_on_b["participants"]

        message = {"from": "ann", "to": None, "text": "hello from A", "time": 1234}
        await ann.request("push", message=message)
        got = await bob.wait_for(lambda s: s["messages"])
        assert got["messages"] == [message]  # its own sender and time
        await bob.request("push", message={**message, "from": "bob", "text": "hi from B"})
        await ann.wait_for(lambda s: len(s["messages"]) == 2)
        await a.server.send_message("team", "server-a", "notice")
        await bob.wait_for(lambda s: len(s["messages"]) == 3)
        await anyio.sleep(0.5)  # nothing comes twice, or back
        for peer in (ann, bob):
            texts = [m["text"] for m in (await peer.state())["messages"]]
            assert texts == ["hello from A", "hi from B", "notice"]

        # Ann's copy of the room document, sent to B as a y-websocket client sends it when
        # it reconnects to another process: her own message is not published again.
        stale = base64.b64decode((await ann.state())["update"])
        async with open_raw_peer(b.url("team", id="ann", name="Ann")) as moved:
            await moved.recv()
            await moved.send(encode_update(stale))
            await anyio.sleep(0.5)
        assert [m["text"] for m in (await ann.state())["messages"]] == texts

        # A late process replays the room's recent messages.
        async with (
            cluster_server(redis_url, prefix) as c,
            open_node_peer(c.base_url, "team", {"id": "cid"}) as cid,
        ):
            late = await cid.wait_for(lambda s: len(s["messages"]) == 3)
            assert [m["text"] for m in late["messages"]] == texts
            await cid.wait_for(lambda s: set(s["participants"]) == {"ann", "bob", "cid"})
            await cid.request("quit")
        # C stopped cleanly: its participant leaves at once, not after the timeout.
        started = time.monotonic()
        await bob.wait_for(lambda s: set(s["participants"]) == both)
        assert time.monotonic() - started < 1.2

        # A participant connected to both processes is listed once, until both leave.
        async with open_node_peer(b.base_url, "team", {"id": "ann", "name": "Ann"}) as again:
            await again.wait_event("synced")
            await anyio.sleep(0.5)
            state = await bob.state()
            assert sorted(state["participants"]) == ["ann", "bob"]
            await again.request("quit")
        await ann.request("quit")
        await bob.wait_for(lambda s: set(s["participants"]) == {"bob"})


async def test_a_toolkit_offered_on_one_process_is_called_from_another(redis_url, prefix):
    async with (
        cluster_server(redis_url, prefix) as a,
        cluster_server(redis_url, prefix) as b,
        RoomClient(a.base_url, "lab", id="ann", name="Ann") as ann,
        RoomClient(b.base_url, "lab", id="bob", name="Bob") as bob,
    ):
        started, cancelled = anyio.Event(), []
        await ann.offer(text_tools())
        await ann.offer(slow_tools(started, cancelled))
        await wait_for(bob, lambda: {"ann/text", "ann/slow"} <= set(bob.toolkits))
        listed = bob.toolkits["ann/text"]
        assert listed["offeredBy"] == "ann" and [t["name"] for t in listed["tools"]] == [
            "shout",
            "stats",
        ]
        assert await bob.call_tool("ann/text", "shout", {"text": "hi"}) == "HI!"
        assert await bob.call_tool("text", "stats", {"text": "a b"}) == {"words": 2, "for": "bob"}

        with pytest.raises(RoomCallError) as invalid:
            await bob.call_tool("ann/text", "shout", {"text": 5})
        assert invalid.value.reason == "tool-error"
        assert "do not match its schema" in str(invalid.value)
        with pytest.raises(RoomCallError) as unknown:
            await bob.call_tool("ann/text", "whisper", {"text": "hi"})
        assert unknown.value.reason == "unknown-tool"
        with pytest.raises(RoomCallError) as too_big:
            await bob.call_tool("ann/slow", "big", {"size": 2 * 1024 * 1024})
        assert too_big.value.reason == "too-large"  # checked on A, the reason kept on B
        with pytest.raises(RoomCallError) as late:
            await bob.call_tool("ann/slow", "wait", {"seconds": 30}, timeout=0.3)
        assert late.value.reason == "timeout"
        await wait_for(ann, lambda: cancelled == ["wait"])  # A's offerer stopped the work
        with anyio.move_on_after(0.3):  # the caller gives up: the cancel reaches A
            await bob.call_tool("ann/slow", "wait", {"seconds": 30})
        await wait_for(ann, lambda: cancelled == ["wait", "wait"])

        # A's own participant calls a toolkit offered on B, too.
        await bob.offer(text_tools())
        await wait_for(ann, lambda: "bob/text" in ann.toolkits)
        assert await ann.call_tool("bob/text", "stats", {"text": "x"}) == {"words": 1, "for": "ann"}

        # The round trip of a call from B to a toolkit on A (through Redis twice).
        rounds = []
        for _ in range(50):
            begun = time.perf_counter()
            await bob.call_tool("ann/text", "shout", {"text": "p"})
            rounds.append(time.perf_counter() - begun)
        local = []
        for _ in range(50):
            begun = time.perf_counter()
            await ann.call_tool("ann/text", "shout", {"text": "p"})
            local.append(time.perf_counter() - begun)
        print(
            f"\ncross-process tool call p50 {statistics.median(rounds) * 1000:.2f} ms, "
            f"same process p50 {statistics.median(local) * 1000:.2f} ms"
        )
        assert a.server.room("lab").calls.pending() == 0
        assert b.server.room("lab").calls.pending() == 0

        await ann.withdraw("text")
        await wait_for(bob, lambda: "ann/text" not in bob.toolkits)
        with pytest.raises(RoomCallError) as gone:
            await bob.call_tool("ann/text", "shout", {"text": "hi"})
        assert gone.value.reason == "unknown-toolkit"


async def test_an_agent_on_one_process_uses_a_toolkit_offered_on_another(redis_url, prefix):
    script = [tool_calls(call("text_shout", text="across")), reply("Shouted.")]
    async with (
        cluster_server(redis_url, prefix) as a,
        cluster_server(redis_url, prefix) as b,
        RoomClient(a.base_url, "lab", id="ann") as ann,
        ScriptedLLMServer(script) as llm_server,
        OpenAILLM("scripted", base_url=llm_server.base_url) as llm,
    ):
        await ann.offer(text_tools())
        agent = Agent("Helper", llm=llm, progress=False)
        async with agent.connect(b.base_url, "lab"):
            await wait_for(agent.client, lambda: "ann/text" in agent.client.toolkits)
            result = await agent.run("Shout across.")
        assert result.completed
        assert "text_shout" in llm_server.requests[0].tool_names
        assert llm_server.requests[1].tool_results() == ["ACROSS!"]


async def test_a_document_open_on_one_process_is_listed_on_the_other(redis_url, prefix):
    async with (
        cluster_server(redis_url, prefix) as a,
        cluster_server(redis_url, prefix) as b,
        RoomClient(a.base_url, "docs", id="ann") as ann,
        RoomClient(b.base_url, "docs", id="bob") as bob,
    ):
        await ann.open_ydoc("notes/plan.md")
        await wait_for(bob, lambda: "notes/plan.md" in bob.documents)
        assert bob.documents["notes/plan.md"]["open"] == ["ann"]
        await bob.open_ydoc("notes/plan.md")
        await wait_for(bob, lambda: bob.documents["notes/plan.md"]["open"] == ["ann", "bob"])
        await wait_for(ann, lambda: ann.documents["notes/plan.md"]["open"] == ["ann", "bob"])
        assert ann.documents == bob.documents


async def test_a_killed_process_leaves_the_room_within_the_liveness_timeout(redis_url):
    # `meshroom serve` uses the default prefix: a database of its own keeps this test apart.
    url = redis_url.rsplit("/", 1)[0] + "/3"
    redis.Redis.from_url(url).flushdb()
    port = free_port()
    a = start_meshroom_serve(port, "--redis", url)
    a_url = f"ws://127.0.0.1:{port}"
    timeout = 3.0  # three of `meshroom serve`'s 1 s heartbeats
    try:
        async with (
            cluster_server(url, "meshroom", liveness_timeout=timeout) as b,
            open_node_peer(a_url, "crew", {"id": "ann", "name": "Ann"}) as ann_node,
            open_node_peer(b.base_url, "crew", {"id": "bob", "name": "Bob"}) as bob_node,
            RoomClient(a_url, "crew", id="ada") as ada,
            RoomClient(b.base_url, "crew", id="ben") as ben,
        ):
            await ann_node.wait_event("synced")
            everyone = {"ann", "ada", "bob", "ben"}
            await bob_node.wait_for(lambda s: set(s["participants"]) == everyone)
            await ann_node.wait_for(lambda s: set(s["participants"]) == everyone)
            started, cancelled = anyio.Event(), []
            await ada.offer(slow_tools(started, cancelled))
            await wait_for(ben, lambda: "ada/slow" in ben.toolkits)
            outcome: list[RoomCallError] = []

            async def call_it() -> None:
                try:
                    await ben.call_tool("ada/slow", "wait", {"seconds": 60}, timeout=30)
                except RoomCallError as error:
                    outcome.append(error)

            async with anyio.create_task_group() as group:
                group.start_soon(call_it)
                with anyio.fail_after(10):
                    await started.wait()
                a.send_signal(signal.SIGKILL)
                a.wait(10)
                killed = time.monotonic()
                await bob_node.wait_for(lambda s: set(s["participants"]) == {"bob", "ben"})
                gone_after = time.monotonic() - killed
            assert outcome and outcome[0].reason == "offerer-left"
            await wait_for(ben, lambda: "ada/slow" not in ben.toolkits)
            # within the liveness timeout, plus a heartbeat and the peer's own polling
            assert gone_after < timeout + 1.0, gone_after
            assert b.server.room("crew").calls.pending() == 0
            assert b.server.room("crew").presence.remote_processes() == []
    finally:
        if a.poll() is None:
            a.kill()
        a.wait(10)
