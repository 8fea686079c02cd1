"""An agent restructures a document while two people keep typing into it.

Everything is real: a meshroom server on 127.0.0.1, two people as `RoomClient`s
typing a numbered token every few milliseconds at the end of their paragraphs,
and an `Agent` driven through the `openai` client by a scripted model that
reads the outline, inserts a section, rewrites text ranges (one of them inside
Ann's paragraph while she types in it) and moves a paragraph. Afterwards every
token each person typed is there exactly once and in order, the agent's changes
are there, the schema holds, and undoing the agent's edits leaves exactly the
people's.
"""

from __future__ import annotations

import re
from typing import Any

import anyio
import pytest

from meshdoc import ChildProperty, ElementType, MeshSchema, ValueProperty
from meshroom import RoomClient
from meshroom.agents import Agent, OpenAILLM
from meshroom.agents.toolkits import documents_toolkit, room_toolkit
from meshroom.testing import ScriptedLLMServer, call, reply, tool_calls

pytestmark = pytest.mark.anyio

PATH = "notes/plan"
ANN_START = "Ann's draft notes: "
BOB_START = "Bob's list: "
TARGET = "The beta ships Friday. Risks are unknown."


def plan_schema() -> MeshSchema:
    return MeshSchema(
        "doc",
        elements=[
            ElementType("doc", properties=[ChildProperty("children", ["heading", "paragraph"])]),
            ElementType(
                "heading",
                properties=[
                    ValueProperty("level", type="number", enum=[1, 2, 3], required=True),
                    ChildProperty("children", []),
                ],
                rich_text=True,
            ),
            ElementType("paragraph", properties=[ChildProperty("children", [])], rich_text=True),
        ],
    )


def block(tag: str, text: str, **attributes: Any) -> dict[str, Any]:
    body = {"$id": None, **attributes, "children": [{"$text": [{"insert": text, "marks": []}]}]}
    return {tag: body}


def outline_ids(outline: str) -> dict[str, str]:
    """First words of each element's text → its $id, from a read_document outline."""
    ids = {}
    for line in outline.splitlines():
        match = re.match(r"\s*\[([^\]]+)\] \w+.*?: [\"'](\w+)", line)
        if match:
            ids[match.group(2)] = match.group(1)
    return ids


def tokens(prefix: str, count: int) -> str:
    return "".join(f"<{prefix}{i}>" for i in range(count))


async def typist(
    client: RoomClient, element_id: str, prefix: str, stop: anyio.Event, typed: list[int]
) -> None:
    """Type `<prefix N>` at the end of one's own paragraph every few ms until `stop`."""
    document = client.open_documents[PATH]
    while not stop.is_set():
        text = document.get_node_by_id(element_id).text
        text.insert(len(text), f"<{prefix}{typed[0]}>")
        typed[0] += 1
        await anyio.sleep(0.004)


async def test_agent_restructures_while_people_type(live_server):
    schema = plan_schema()
    url = live_server.base_url
    async with (
        RoomClient(url, "team", name="Ann", id="ann") as ann,
        RoomClient(url, "team", name="Bob", id="bob") as bob,
    ):
        document = await ann.open(PATH, schema)
        with document.transaction():
            document.root.append_json(block("heading", "Plan", level=1))
            target = document.root.append_json(block("paragraph", TARGET)).id
            ann_p = document.root.append_json(block("paragraph", ANN_START)).id
            bob_p = document.root.append_json(block("paragraph", BOB_START)).id
        bob_doc = await bob.open(PATH, schema)
        with anyio.fail_after(5):
            await bob.wait_for(lambda: bob_doc.get_node_by_id(target) is not None)

        def restructure(request):
            ids = outline_ids(request.tool_results()[0])
            assert ids["Ann"] == ann_p and ids["The"] == target
            return tool_calls(
                call(
                    "insert_elements",
                    path=PATH,
                    position="after",
                    target_id=ids["Bob"],
                    elements=[block("heading", "Schedule", level=2)],
                ),
                call(
                    "replace_text",
                    path=PATH,
                    id=ids["Ann"],
                    find="draft",
                    replace="final",
                    occurrence=None,
                ),
            )

        def move(request):
            inserted = request.tool_results()[0]
            heading_id = re.search(r'"inserted":\["([^"]+)"', inserted).group(1)
            return tool_calls(
                call("move_element", path=PATH, id=target, position="after", target_id=heading_id)
            )

        def rewrite(request):
            return tool_calls(
                call(
                    "replace_text",
                    path=PATH,
                    id=target,
                    find="Friday",
                    replace="on Monday, March 3",
                    occurrence=None,
                ),
                call(
                    "rewrite_text",
                    path=PATH,
                    id=target,
                    text="The beta ships on Monday, March 3. Risks: vendor delays, load.",
                ),
            )

        script = [
            tool_calls(call("read_document", path=PATH, format="outline")),
            restructure,
            move,
            rewrite,
            reply("Added a Schedule section, fixed the date and listed the risks."),
        ]
        stop = anyio.Event()
        ann_typed, bob_typed = [0], [0]
        async with (
            ScriptedLLMServer(script) as llm_server,
            OpenAILLM("scripted", base_url=llm_server.base_url) as llm,
        ):
            agent = Agent("Editor", toolkits=[documents_toolkit(schema), room_toolkit()], llm=llm)
            async with agent.connect(url, "team"), anyio.create_task_group() as people:
                people.start_soon(typist, ann, ann_p, "a", stop, ann_typed)
                people.start_soon(typist, bob, bob_p, "b", stop, bob_typed)
                await anyio.sleep(0.05)
                result = await agent.run("Add a schedule section and fix the date.")
                await anyio.sleep(0.05)
                stop.set()
                agent_doc = agent.client.open_documents[PATH]

                def converged() -> bool:
                    docs = [document, bob_doc, agent_doc]
                    return all(d.to_json() == docs[0].to_json() for d in docs)

                with anyio.fail_after(10):
                    await ann.wait_for(converged)
                assert result.completed, result
                assert [record.ok for record in result.tool_calls] == [True] * 6

                # every character the people typed, exactly once, in order
                assert ann_typed[0] > 10 and bob_typed[0] > 10
                texts = {e.id: str(e.text) for e in document.root.get_child_elements()}
                assert texts[ann_p] == "Ann's final notes: " + tokens("a", ann_typed[0])
                assert texts[bob_p] == BOB_START + tokens("b", bob_typed[0])
                # the agent's changes
                order = [(e.tag_name, str(e.text)) for e in document.root.get_child_elements()]
                assert [text for _, text in order[3:]] == [
                    "Schedule",
                    "The beta ships on Monday, March 3. Risks: vendor delays, load.",
                ]
                assert schema.validate(document) == []

                # undo the agent's edits, and only those
                undone = await agent.toolkits[0].execute(
                    agent_context(agent), "undo", {"path": PATH, "steps": 20}
                )
                assert undone.to_content().startswith("undid")
                with anyio.fail_after(10):
                    await ann.wait_for(converged)
                texts = [str(e.text) for e in document.root.get_child_elements()]
                assert texts == [
                    "Plan",
                    TARGET,
                    ANN_START + tokens("a", ann_typed[0]),
                    BOB_START + tokens("b", bob_typed[0]),
                ]
                assert schema.validate(document) == []


def agent_context(agent: Agent):
    from meshroom.agents import ToolContext

    return ToolContext(room=agent.room, caller=agent.id, client=agent.client, origin=agent.origin)
