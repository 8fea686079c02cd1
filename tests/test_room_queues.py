"""Work queues and agents offered as tools: real server, real clients, scripted models."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from conftest import LiveServer

from meshroom import RoomClient
from meshroom.agents import Agent, OpenAILLM
from meshroom.client import RoomCallError
from meshroom.protocol._calls import decode_room_call, encode_room_call
from meshroom.protocol._messages import RoomCallMessage
from meshroom.testing import ScriptedLLMServer, call, reply, tool_calls

pytestmark = pytest.mark.anyio

ROOM = "works"


async def wait_for(client: Any, predicate: Any, timeout: float = 5) -> None:
    with anyio.fail_after(timeout):
        await client.wait_for(predicate)


async def test_each_item_goes_to_one_consumer_in_order(live_server: LiveServer) -> None:
    url = live_server.base_url
    async with (
        RoomClient(url, ROOM, id="boss") as boss,
        RoomClient(url, ROOM, id="w1") as w1,
        RoomClient(url, ROOM, id="w2") as w2,
    ):
        taken: dict[str, list[int]] = {"w1": [], "w2": []}

        async def work(client: RoomClient, name: str, count: int) -> None:
            async with client.consume("jobs") as items:
                async for item in items:
                    taken[name].append(item.item["n"])
                    await anyio.sleep(0.01)
                    await item.ack()
                    if len(taken[name]) == count:
                        return

        async with anyio.create_task_group() as group:
            group.start_soon(work, w1, "w1", 10)
            group.start_soon(work, w2, "w2", 10)
            await wait_for(boss, lambda: boss.queues.get("jobs", {}).get("consumers") == 2)
            ids = [await boss.send_to_queue("jobs", {"n": n}) for n in range(20)]
        assert ids == sorted(ids)
        assert sorted(taken["w1"] + taken["w2"]) == list(range(20))  # each exactly once
        assert taken["w1"] == sorted(taken["w1"]) and taken["w2"] == sorted(taken["w2"])
        assert taken["w1"] and taken["w2"]  # shared
        await wait_for(boss, lambda: boss.queues["jobs"] == {"length": 0, "consumers": 0,
                                                             "inFlight": 0})  # fmt: skip


async def test_an_item_its_consumer_left_with_is_delivered_again(live_server: LiveServer) -> None:
    url = live_server.base_url
    async with RoomClient(url, ROOM, id="boss") as boss:
        await boss.send_to_queue("jobs", "first")
        await boss.send_to_queue("jobs", "second")
        await wait_for(boss, lambda: boss.queues.get("jobs", {}).get("length") == 2)
        async with RoomClient(url, ROOM, id="flaky") as flaky:
            async with flaky.consume("jobs") as items:
                async for item in items:
                    assert item.item == "first"
                    break  # leaves without acknowledging
            await wait_for(boss, lambda: boss.queues["jobs"]["length"] == 2)
            async with flaky.consume("jobs") as items:
                got = []
                async for item in items:
                    got.append(item.item)
                    if len(got) == 1:
                        break  # disconnects below, still holding it
        await wait_for(boss, lambda: boss.queues["jobs"]["length"] == 2)
        done = []
        async with RoomClient(url, ROOM, id="steady") as steady, steady.consume("jobs") as items:
            async for item in items:
                done.append(item.item)
                await item.ack()
                if len(done) == 2:
                    break
        assert done == ["first", "second"]  # nothing lost, order kept


async def test_bad_queue_calls_are_refused(live_server: LiveServer, raw_peer: Any) -> None:
    async with RoomClient(live_server.base_url, ROOM, id="ann") as ann:
        with pytest.raises(Exception, match="must match"):
            await ann.send_to_queue("bad name!", 1)
        with pytest.raises(Exception, match="exceeds"):
            await ann.send_to_queue("jobs", "x" * 300_000)
        assert "jobs" not in ann.queues
        async with raw_peer(live_server.url(ROOM, id="mallory")) as mallory:
            for bad, expected in [
                ({"type": "ack", "id": 1}, "no item 1"),
                ({"type": "stop", "queue": "nope"}, "no queue"),
                ({"type": "enqueue", "queue": "jobs"}, "needs an 'item'"),
            ]:
                await mallory.send(encode_room_call(bad))
                answer = await mallory.recv_until(lambda m: isinstance(m, RoomCallMessage))
                decoded = decode_room_call(answer.body)
                assert decoded["type"] == "error" and expected in decoded["error"], decoded


async def test_an_agent_offered_as_a_tool_returns_structured_output(
    live_server: LiveServer,
) -> None:
    url = live_server.base_url
    summary_schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "points": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["title", "points"],
        "additionalProperties": False,
    }
    summariser_script = [
        tool_calls(call("submit_result", title="Plan", points=["ship", "test"])),
        reply("Submitted."),
        tool_calls(call("submit_result", title=3, points=[])),  # invalid: refused, retried
        tool_calls(call("submit_result", title="Again", points=[])),
        reply("Done."),
    ]
    chat_script = [
        tool_calls(call("summaries_run", task="Summarise notes/plan")),
        lambda request: reply("Summary: " + request.tool_results()[0]),
    ]
    async with (
        ScriptedLLMServer(summariser_script) as summariser_server,
        ScriptedLLMServer(chat_script) as chat_server,
        OpenAILLM("scripted", base_url=summariser_server.base_url) as summariser_llm,
        OpenAILLM("scripted", base_url=chat_server.base_url) as chat_llm,
    ):
        summariser = Agent("Summariser", llm=summariser_llm, progress=False)
        chat = Agent("Chat", llm=chat_llm, progress=False)
        async with summariser.connect(url, ROOM), chat.connect(url, ROOM):
            toolkit = summariser.as_toolkit(
                "summaries", description="Summarise a document.", output_schema=summary_schema
            )
            await summariser.client.offer(toolkit)
            await wait_for(chat.client, lambda: any(k.endswith("/summaries")
                                                    for k in chat.client.toolkits))  # fmt: skip
            result = await chat.run("Summarise the plan.")
            assert json.loads(result.text.removeprefix("Summary: ")) == {
                "title": "Plan",
                "points": ["ship", "test"],
            }
            # the delegated agent saw the task and had submit_result with the output schema
            first = summariser_server.requests[0]
            assert "Summarise notes/plan" in first.user_text
            assert "submit_result" in first.tool_names
            # called directly: a schema-invalid result is refused to the model, which retries
            direct = await chat.client.call_tool("summaries", "run", {"task": "again"})
            assert direct == {"title": "Again", "points": []}
            refused = summariser_server.requests[3].tool_results()[0]
            assert "do not match its schema" in refused
            with pytest.raises(RoomCallError) as bad:
                await chat.client.call_tool("summaries", "run", {"task": 5})
            assert bad.value.reason == "tool-error"


async def test_a_worker_agent_takes_queue_items_one_by_one(live_server: LiveServer) -> None:
    url = live_server.base_url
    script = [reply("did one"), reply("did two"), reply("did three")]
    async with (
        RoomClient(url, ROOM, id="boss") as boss,
        ScriptedLLMServer(script) as llm_server,
        OpenAILLM("scripted", base_url=llm_server.base_url) as llm,
    ):
        for task in ("one", {"task": "two"}, "three"):
            await boss.send_to_queue("todo", task)
        worker = Agent("Worker", llm=llm, progress=False, answer_messages=False)
        async with worker.connect(url, ROOM):
            done = await worker.work_queue("todo", results="done", limit=3)
        assert done == 3
        asked = [request.user_text for request in llm_server.requests]
        assert asked == ["one", '{"task": "two"}', "three"]
        answers = []
        async with boss.consume("done") as items:
            async for item in items:
                answers.append(item.item)
                await item.ack()
                if len(answers) == 3:
                    break
        assert [a["answer"] for a in answers] == ["did one", "did two", "did three"]
        assert answers[1]["item"] == {"task": "two"} and all(a["completed"] for a in answers)
