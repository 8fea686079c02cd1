"""An agent in a room: presence for Python and Node clients, cursors, messages, progress.

A real server, real `RoomClient`s, a Node y-websocket client (the unmodified
provider a browser uses) and an agent driven by the scripted model server.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import anyio
import pytest
from conftest import NODE_DIR

from meshdoc import ChildProperty, ElementType, MeshSchema
from meshroom import RoomClient
from meshroom.agents import Agent, ErrorResponse, OpenAILLM, ToolContext
from meshroom.agents.toolkits import documents_toolkit, room_toolkit
from meshroom.testing import ScriptedLLMServer, call, fail, reply, tool_calls

pytestmark = pytest.mark.anyio

PATH = "notes/plan"

# A Node y-websocket peer: joins the room document and one document, reports the
# participants it sees and every awareness state, resolving cursors with Yjs itself.
NODE_PEER = """
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
const [url, room, path] = process.argv.slice(1)
const options = { WebSocketPolyfill: WebSocket, disableBc: true }
const roomDoc = new Y.Doc()
const roomProvider = new WebsocketProvider(url, room, roomDoc, options)
const doc = new Y.Doc()
const provider = new WebsocketProvider(url, `${room}/${path}`, doc, options)
const done = () => {
  const states = Array.from(provider.awareness.getStates().values()).map((state) => {
    if (!state.cursor) return state
    const at = Y.createAbsolutePositionFromRelativePosition(
      Y.createRelativePositionFromJSON(state.cursor.anchor), doc)
    if (!at) return { ...state, anchorIndex: null }
    return { ...state, anchorIndex: at.index, anchorText: at.type.toString() }
  })
  console.log(JSON.stringify({ participants: roomDoc.getMap('participants').toJSON(), states }))
  roomProvider.destroy(); provider.destroy(); process.exit(0)
}
const ready = () => {
  const participants = Object.values(roomDoc.getMap('participants').toJSON())
  const agents = participants.filter((p) => p.kind === 'agent')
  const cursors = Array.from(provider.awareness.getStates().values()).filter((s) => s.cursor)
  if (provider.synced && agents.length && cursors.length) done()
}
setInterval(ready, 20)
setTimeout(done, 8000)
"""


def plan_schema() -> MeshSchema:
    return MeshSchema(
        "doc",
        elements=[
            ElementType("doc", properties=[ChildProperty("children", ["paragraph"])]),
            ElementType("paragraph", properties=[ChildProperty("children", [])], rich_text=True),
        ],
    )


async def run_node_peer(url: str, room: str, path: str) -> dict[str, Any]:
    with anyio.fail_after(30):
        process = await anyio.run_process(
            ["node", "--input-type=module", "-e", NODE_PEER, url, room, path],
            cwd=NODE_DIR,
            check=True,
        )
    return json.loads(process.stdout.decode().strip().splitlines()[-1])


@pytest.mark.interop
async def test_agent_presence_and_cursor_for_python_and_node_clients(live_server):
    schema = plan_schema()
    url = live_server.base_url
    async with RoomClient(url, "team", name="Ann", id="ann") as ann:
        document = await ann.open(PATH, schema)
        paragraph = document.root.append_child("paragraph")
        paragraph.text.insert(0, "Ship the beta on Friday.")
        script = [
            tool_calls(
                call(
                    "replace_text",
                    path=PATH,
                    id=paragraph.id,
                    find="Friday",
                    replace="Monday",
                    occurrence=None,
                )
            ),
            reply("Moved the date."),
        ]
        async with (
            ScriptedLLMServer(script) as llm_server,
            OpenAILLM("scripted", base_url=llm_server.base_url) as llm,
        ):
            agent = Agent("Editor", toolkits=[documents_toolkit(schema)], llm=llm)
            async with agent.connect(url, "team"):
                with anyio.fail_after(5):
                    await ann.wait_for(lambda: agent.id in ann.participants)
                assert ann.participants[agent.id]["kind"] == "agent"
                assert ann.participants[agent.id]["name"] == "Editor"
                result = await agent.run("Move the date to Monday.")
                assert result.completed

                seen = await run_node_peer(url, "team", PATH)
                # presence: the Node client lists the agent as an agent
                kinds = {p["name"]: p["kind"] for p in seen["participants"].values()}
                assert kinds["Editor"] == "agent" and kinds["Ann"] == "person"
                # awareness: the agent's user and its cursor, resolved by Yjs itself
                mine = [s for s in seen["states"] if s.get("user", {}).get("kind") == "agent"]
                assert len(mine) == 1
                assert mine[0]["user"]["name"] == "Editor"
                assert mine[0]["anchorIndex"] == len("Ship the beta on ")
                assert mine[0]["anchorText"] == "Ship the beta on Monday."
            with anyio.fail_after(5):
                await ann.wait_for(lambda: agent.id not in ann.participants)


async def test_agent_answers_addressed_messages_with_progress(live_server):
    schema = plan_schema()
    url = live_server.base_url
    script = [
        tool_calls(call("read_document", path=PATH, format=None), call("list_participants")),
        tool_calls(
            call(
                "insert_elements",
                path=PATH,
                position="last_child",
                target_id=None,
                elements=[
                    {
                        "paragraph": {
                            "$id": None,
                            "children": [{"$text": [{"insert": "Agenda", "marks": []}]}],
                        }
                    }
                ],
            )
        ),
        reply("Added an agenda paragraph."),
        reply("Hello Bob."),
    ]
    async with (
        RoomClient(url, "team", name="Ann", id="ann") as ann,
        RoomClient(url, "team", name="Bob", id="bob") as bob,
        ScriptedLLMServer(script) as llm_server,
        OpenAILLM("scripted", base_url=llm_server.base_url) as llm,
    ):
        document = await ann.open(PATH, schema)
        agent = Agent(
            "Editor",
            toolkits=[documents_toolkit(schema), room_toolkit()],
            llm=llm,
            participant_id="editor",
        )
        async with agent.connect(url, "team"):
            await ann.send_message("please add an agenda", to="editor")

            def answered(count: int):
                return lambda: (
                    len([m for m in ann.messages if m["from"] == "editor" and "text" in m]) >= count
                )

            with anyio.fail_after(10):
                await ann.wait_for(answered(1))
            from_agent = [m for m in ann.messages if m["from"] == "editor"]
            reports = [m["json"] for m in from_agent if "json" in m]
            progress = [p for p in reports if p["type"] == "agent.progress"]
            # each run ends with its report: steps, how it stopped, tool calls, tokens
            run = reports[-1]
            assert run["type"] == "agent.run" and run["stop"] == "answer"
            assert (run["steps"], run["tools"], run["errors"]) == (3, 3, 0)
            assert run["tokens"]["prompt_tokens"] > 0 and "instruction" not in run
            assert [p["tool"] for p in progress] == [
                "read_document",
                "list_participants",
                "insert_elements",
            ]
            assert all(p["type"] == "agent.progress" and p["ok"] for p in progress)
            assert all(m["to"] == "ann" for m in from_agent)
            assert progress[0]["summary"].startswith('read_document(path="notes/plan"')
            answer = from_agent[-1]
            assert answer["text"] == "Added an agenda paragraph." and answer["to"] == "ann"
            with anyio.fail_after(5):
                await ann.wait_for(
                    lambda: [str(p.text) for p in document.root.get_children()] == ["Agenda"]
                )
            # the model saw the room: who is here
            listed = json.loads(llm_server.requests[1].tool_results()[1])
            assert {p["name"]: (p["kind"], p["you"]) for p in listed} == {
                "Ann": ("person", False),
                "Bob": ("person", False),
                "Editor": ("agent", True),
            }
            # a mention to everyone is answered too; other messages are not
            await bob.send_message("lunch anyone?")
            await bob.send_message("@Editor hi")
            with anyio.fail_after(10):
                await bob.wait_for(lambda: any(m.get("text") == "Hello Bob." for m in bob.messages))
            assert next(m for m in bob.messages if m.get("text") == "Hello Bob.")["to"] == "bob"
            assert len(llm_server.requests) == 4


async def test_failed_model_is_reported_to_the_sender(live_server):
    url = live_server.base_url
    async with (
        RoomClient(url, "team", name="Ann", id="ann") as ann,
        ScriptedLLMServer(
            itertools.repeat(fail(503, "overloaded", retry_after=0.01))
        ) as llm_server,
        OpenAILLM("m", base_url=llm_server.base_url, max_retries=1) as llm,
    ):
        agent = Agent("Editor", llm=llm, participant_id="editor")
        async with agent.connect(url, "team"):
            await ann.send_message("do something", to="editor")
            with anyio.fail_after(10):
                await ann.wait_for(lambda: any(m["from"] == "editor" for m in ann.messages))
        message = next(m for m in ann.messages if m["from"] == "editor")
        assert message["to"] == "ann"
        assert (
            message["text"].startswith("I could not do that:") and "overloaded" in message["text"]
        )
        assert len(llm_server.requests) == 2  # one retry


async def test_room_toolkit(live_server):
    url = live_server.base_url
    async with (
        RoomClient(url, "team", name="Ann", id="ann") as ann,
        RoomClient(url, "team", name="Ann", id="ann-2") as ann2,
        RoomClient(url, "team", name="Bot", kind="agent", id="bot") as bot,
    ):
        toolkit = room_toolkit()
        context = ToolContext(room="team", caller="bot", client=bot)
        with anyio.fail_after(5):
            await bot.wait_for(lambda: len(bot.participants) == 3)
        sent = await toolkit.execute(context, "send_message", {"text": "hi all", "to": None})
        assert sent.to_content() == "sent to everyone"
        ambiguous = await toolkit.execute(context, "send_message", {"text": "hi", "to": "Ann"})
        assert isinstance(ambiguous, ErrorResponse) and "several" in ambiguous.message
        sent = await toolkit.execute(context, "send_message", {"text": "hi you", "to": "ann-2"})
        assert sent.to_content() == "sent to ann-2"
        unknown = await toolkit.execute(context, "send_message", {"text": "hi", "to": "Zed"})
        assert isinstance(unknown, ErrorResponse) and len(unknown.details["participants"]) == 3
        with anyio.fail_after(5):  # Ann answers after seeing Bot's messages, not concurrently
            await ann.wait_for(lambda: len(ann.messages) == 2)
        await ann.send_message("hello bot")
        with anyio.fail_after(5):
            await bot.wait_for(lambda: len(bot.messages) == 3)
        recent = await toolkit.execute(context, "read_messages", {"limit": 2})
        assert [(m["from_name"], m["text"], m["to"]) for m in recent.data] == [
            ("Bot", "hi you", "ann-2"),
            ("Ann", "hello bot", None),
        ]
        assert ann2.messages[-1]["text"] == "hello bot"


async def test_agent_embedded_in_the_server(live_server):
    """No socket: the agent joins presence, edits live documents and shows its cursor."""
    schema = plan_schema()
    url = live_server.base_url
    async with RoomClient(url, "team", name="Ann", id="ann") as ann:
        document = await ann.open(PATH, schema)
        paragraph = document.root.append_child("paragraph")
        paragraph.text.insert(0, "Ship the beta on Friday.")
        pid = paragraph.id
        script = [
            tool_calls(
                call("replace_text", path=PATH, id=pid, find="Friday", replace="Monday",
                     occurrence=None)
            ),
            reply("Moved the date."),
        ]  # fmt: skip
        async with (
            ScriptedLLMServer(script) as llm_server,
            OpenAILLM("scripted", base_url=llm_server.base_url) as llm,
        ):
            agent = Agent(
                "Inside", toolkits=[documents_toolkit(schema)], llm=llm, participant_id="inside"
            )
            async with agent.embed(live_server.server, "team"):
                with anyio.fail_after(5):
                    await ann.wait_for(lambda: "inside" in ann.participants)
                assert ann.participants["inside"]["kind"] == "agent"
                await ann.send_message("move the date please", to="inside")
                with anyio.fail_after(10):
                    await ann.wait_for(
                        lambda: any(m.get("text") == "Moved the date." for m in ann.messages)
                    )
                assert str(document.get_node_by_id(pid).text) == "Ship the beta on Monday."
                progress = [
                    m["json"]
                    for m in ann.messages
                    if m["from"] == "inside" and m.get("json", {}).get("type") == "agent.progress"
                ]
                assert [p["tool"] for p in progress] == ["replace_text"]
                with anyio.fail_after(5):
                    await ann.wait_for(
                        lambda: any("cursor" in s for s in ann.awareness(PATH).values())
                    )
                state = next(s for s in ann.awareness(PATH).values() if "cursor" in s)
                assert state["user"] == {"id": "inside", "name": "Inside", "kind": "agent"}
                assert state["selection"] == {"element": pid, "start": 17, "end": 23}
            with anyio.fail_after(5):
                await ann.wait_for(lambda: "inside" not in ann.participants)
                await ann.wait_for(
                    lambda: not any("cursor" in s for s in ann.awareness(PATH).values())
                )
