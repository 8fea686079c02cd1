"""Agents that converse: threads, streamed answers, status, stop, resume after the room closed.

A real server (with folder storage and the activity log where a thread must outlive the
room), real `RoomClient`s, agents driven through the `openai` client by the scripted
OpenAI-compatible server, which streams when asked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pycrdt
import pytest
from conftest import LiveServer, run_server

from meshdoc import markdown
from meshroom import RoomClient
from meshroom.activity import ActivityExtension
from meshroom.agents import Agent, OpenAILLM, Toolkit, tool
from meshroom.agents._conversation import trim_history
from meshroom.agents.toolkits import documents_toolkit
from meshroom.storage import FsspecStorage, StorageExtension
from meshroom.testing import ScriptedLLMServer, call, reply, tool_calls

pytestmark = pytest.mark.anyio

ROOM = "talk"
PATH = "notes/plan"


async def wait_for(client: RoomClient, predicate: Any, timeout: float = 10) -> None:
    with anyio.fail_after(timeout):
        await client.wait_for(predicate)


def answers(client: RoomClient, agent_id: str) -> list[dict[str, Any]]:
    return [m for m in client.messages if m.get("from") == agent_id and "text" in m]


async def test_an_agent_keeps_one_conversation_per_thread(live_server: LiveServer) -> None:
    url = live_server.base_url
    script = [
        reply("Here is a long summary of the plan, with many words in it."),
        lambda request: reply(f"Shorter (I saw {len(request.messages)} messages)."),
        reply("A fresh start."),
    ]
    async with (
        RoomClient(url, ROOM, id="ann", name="Ann") as ann,
        ScriptedLLMServer(script) as llm_server,
        OpenAILLM("scripted", base_url=llm_server.base_url) as llm,
    ):
        agent = Agent("Helper", llm=llm, progress=False, participant_id="helper")
        async with agent.connect(url, ROOM):
            await wait_for(ann, lambda: "helper" in ann.participants)
            first = await ann.send_message("Summarise the plan", to="helper")
            await wait_for(ann, lambda: len(answers(ann, "helper")) == 1)
            answer = answers(ann, "helper")[0]
            assert answer["thread"] == first["id"] and answer["to"] == "ann"
            await ann.send_message("Now make it shorter", to="helper", thread=answer["thread"])
            await wait_for(ann, lambda: len(answers(ann, "helper")) == 2)
            await ann.send_message("Something else", to="helper")
            await wait_for(ann, lambda: len(answers(ann, "helper")) == 3)
        follow_up = llm_server.requests[1].messages
        said = [m.get("content") for m in follow_up]
        assert "Summarise the plan" in said and "Now make it shorter" in said
        assert "Here is a long summary of the plan, with many words in it." in said
        other = [m.get("content") for m in llm_server.requests[2].messages]
        assert "Summarise the plan" not in other  # another thread, another conversation
        assert answers(ann, "helper")[2]["thread"] != answer["thread"]


async def test_the_answer_streams_into_the_room_then_becomes_a_message(
    live_server: LiveServer,
) -> None:
    url = live_server.base_url
    text = "Streaming answers appear in the room while the model writes them, piece by piece."
    async with (
        RoomClient(url, ROOM, id="ann") as ann,
        ScriptedLLMServer([reply(text)], chunk_delay=0.05) as llm_server,
        OpenAILLM("scripted", base_url=llm_server.base_url) as llm,
    ):
        agent = Agent("Writer", llm=llm, progress=False, participant_id="writer")
        seen: list[str] = []

        def watch() -> bool:
            for entry in (ann.ydoc("").get("streams", type=pycrdt.Map).to_py() or {}).values():
                if not seen or seen[-1] != entry["text"]:
                    seen.append(entry["text"])
            return bool(answers(ann, "writer"))

        async with agent.connect(url, ROOM):
            await wait_for(ann, lambda: "writer" in ann.participants)
            asked = await ann.send_message("Explain streaming", to="writer")
            await wait_for(ann, watch)
        final = answers(ann, "writer")[0]
        assert final["text"] == text and final["thread"] == asked["id"]
        growing = [piece for piece in seen if piece]
        assert len(growing) >= 2, seen  # seen growing, not only whole
        assert all(text.startswith(piece) for piece in growing)
        assert ann.ydoc("").get("streams", type=pycrdt.Map).to_py() in ({}, None)
        assert llm_server.requests[0].body.get("stream") is True


async def test_status_says_what_the_agent_does_and_a_person_can_stop_it(
    live_server: LiveServer,
) -> None:
    url = live_server.base_url
    schema = markdown.RICH_TEXT_SCHEMA
    gate = anyio.Event()

    @tool
    async def slow_check(path: str) -> str:
        """Check a document slowly.

        Args:
            path: Document path.
        """
        await gate.wait()
        return "checked"

    def insert(n: int) -> Any:
        return tool_calls(
            call("insert_markdown", path=PATH, position="last_child", target_id=None,
                 markdown=f"Line {n}.")
        )  # fmt: skip

    # each run: an edit, then a slow check during which the person stops it (the model is
    # not asked again: its next steps never run)
    script = [insert(1), tool_calls(call("slow_check", path=PATH))]
    script += [insert(3), tool_calls(call("slow_check", path=PATH))]
    async with (
        RoomClient(url, ROOM, id="ann") as ann,
        ScriptedLLMServer(script) as llm_server,
        OpenAILLM("scripted", base_url=llm_server.base_url) as llm,
    ):
        document = await ann.open(PATH, schema)
        agent = Agent(
            "Editor", llm=llm, progress=False, participant_id="editor", stream=False,
            toolkits=[documents_toolkit(schema), Toolkit("checks", [slow_check])],
        )  # fmt: skip

        def status() -> dict[str, Any]:
            for state in ann.awareness("").values():
                if state.get("user", {}).get("id") == "editor" and "status" in state:
                    return state["status"]
            return {}

        async with agent.connect(url, ROOM):
            await wait_for(ann, lambda: "editor" in ann.participants)
            await ann.send_message("Add lines", to="editor")
            await wait_for(ann, lambda: status().get("tool") == "slow_check")
            assert status() == {"state": "calling", "tool": "slow_check", "path": PATH,
                                "thread": status()["thread"]}  # fmt: skip
            await ann.send_message("stop", to="editor")
            await anyio.sleep(0.2)
            gate.set()
            await wait_for(ann, lambda: answers(ann, "editor"))
            assert "stopped before finishing (stopped)" in answers(ann, "editor")[0]["text"]
            assert markdown.to_markdown(document).split() == ["Line", "1."]  # kept
            await wait_for(ann, lambda: status().get("state") == "idle")

            gate = anyio.Event()
            await ann.send_message("Add more", to="editor")
            await wait_for(ann, lambda: status().get("tool") == "slow_check")
            assert "Line 3." in markdown.to_markdown(document)
            await ann.send_message({"type": "agent.stop", "undo": True}, to="editor")
            await anyio.sleep(0.2)
            gate.set()
            await wait_for(ann, lambda: len(answers(ann, "editor")) == 2)
            await wait_for(ann, lambda: "Line 3." not in markdown.to_markdown(document))
            assert markdown.to_markdown(document).split() == ["Line", "1."]  # undone, kept
        assert len(llm_server.requests) == 4  # each run ended at the step after the stop


async def test_a_thread_goes_on_after_the_room_closed(tmp_path: Path) -> None:
    storage = FsspecStorage(str(tmp_path / "rooms"))
    extensions = [StorageExtension(storage), ActivityExtension(storage, flush_interval=0.01)]
    script = [
        reply("The plan has three parts."),
        lambda request: reply(json.dumps([m.get("content") for m in request.messages])),
    ]
    async with (
        ScriptedLLMServer(script) as llm_server,
        OpenAILLM("scripted", base_url=llm_server.base_url) as llm,
        run_server(extensions=extensions, grace_period=0.1) as live,
    ):
        async with RoomClient(live.base_url, ROOM, id="ann") as ann:
            first = Agent("Helper", llm=llm, progress=False, participant_id="helper")
            async with first.connect(live.base_url, ROOM):
                await wait_for(ann, lambda: "helper" in ann.participants)
                asked = await ann.send_message("Describe the plan", to="helper")
                await wait_for(ann, lambda: answers(ann, "helper"))
        with anyio.fail_after(10):
            while live.server.room(ROOM) is not None:  # the room closed
                await anyio.sleep(0.05)
        # a new agent, with nothing in memory, in a new session of the room
        again = Agent("Helper", llm=llm, progress=False, participant_id="helper")
        async with (
            RoomClient(live.base_url, ROOM, id="ann") as ann,
            again.connect(live.base_url, ROOM),
        ):
            await wait_for(ann, lambda: "helper" in ann.participants)
            await ann.send_message("And the second part?", to="helper", thread=asked["id"])
            await wait_for(ann, lambda: answers(ann, "helper"))
            said = json.loads(answers(ann, "helper")[0]["text"])
    assert "Describe the plan" in said and "The plan has three parts." in said
    assert said[-1] == "And the second part?"


def test_a_long_thread_is_trimmed_with_a_summary_of_what_was_dropped() -> None:
    messages: list[dict[str, Any]] = []
    for n in range(40):
        messages.append({"role": "user", "content": f"question {n} " + "x" * 200})
        messages.append({"role": "assistant", "content": f"answer {n}"})
    kept = trim_history(messages, 1000)
    assert kept[0]["summary"] is True and "question 0" in kept[0]["content"]
    assert kept[-1]["content"] == "answer 39"
    assert sum(len(json.dumps(m)) for m in kept[2:]) // 4 <= 1000 + 200
    again = trim_history([*kept, {"role": "user", "content": "more"}], 1000)
    assert "question 0" in again[0]["content"]  # the summary survives later trims


async def test_two_people_asking_at_once_are_answered_one_after_the_other(
    live_server: LiveServer,
) -> None:
    url = live_server.base_url
    order: list[str] = []

    def answer_for(request: Any) -> Any:
        question = request.user_text
        order.append(f"start {question}")
        return reply(f"answer to {question}")

    async with (
        RoomClient(url, ROOM, id="ann") as ann,
        RoomClient(url, ROOM, id="bob") as bob,
        ScriptedLLMServer([answer_for, answer_for], latency=0.3) as llm_server,
        OpenAILLM("scripted", base_url=llm_server.base_url) as llm,
    ):
        agent = Agent("Helper", llm=llm, progress=False, participant_id="helper")
        async with agent.connect(url, ROOM):
            await wait_for(ann, lambda: "helper" in ann.participants)
            await wait_for(bob, lambda: "helper" in bob.participants)
            from_ann = await ann.send_message("Ann's question", to="helper")
            from_bob = await bob.send_message("Bob's question", to="helper")
            await wait_for(ann, lambda: len(answers(ann, "helper")) == 2)
        got = {m["to"]: m for m in answers(ann, "helper")}
        assert got["ann"]["text"] == "answer to Ann's question"
        assert got["ann"]["thread"] == from_ann["id"]
        assert got["bob"]["text"] == "answer to Bob's question"
        assert got["bob"]["thread"] == from_bob["id"]
        # one run at a time: the second question reached the model after the first's answer
        assert len(llm_server.requests) == 2 and len(order) == 2
        second = llm_server.requests[1].messages
        assert not any("answer to" in str(m.get("content")) for m in second)  # not interleaved
