"""The documents toolkit over a real server: read, insert, update, move, delete, text, undo.

Tools are called the way the agent loop calls them (`Toolkit.execute` with raw JSON
arguments) through a real `RoomClient`; a second client checks that every edit
reached the room, carries the agent's origin, and that refused edits change nothing.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from conftest import eventually
from pycrdt import Map

from meshdoc import ChildProperty, ElementType, MeshDocument, MeshSchema, ValueProperty
from meshroom import RoomClient
from meshroom.agents import ErrorResponse, JsonResponse, ToolContext
from meshroom.agents._agent import AgentOrigin
from meshroom.agents.toolkits import documents_toolkit

pytestmark = pytest.mark.anyio

PATH = "notes/plan"


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
            ElementType(
                "paragraph",
                properties=[
                    ValueProperty("align", enum=["left", "center", "right"]),
                    ChildProperty("children", []),
                ],
                rich_text=True,
            ),
        ],
    )


def paragraph(text: str) -> dict[str, Any]:
    return {
        "paragraph": {
            "$id": None,
            "align": None,
            "children": [{"$text": [{"insert": text, "marks": []}]}],
        }
    }


async def call(toolkit, context, name: str, **arguments: Any):
    return await toolkit.execute(context, name, json.dumps(arguments))


@pytest.fixture
async def room(live_server):
    schema = plan_schema()
    async with (
        RoomClient(live_server.base_url, "team", name="Editor", kind="agent", id="editor") as agent,
        RoomClient(live_server.base_url, "team", name="Ann", id="ann") as ann,
    ):
        document = await ann.open(PATH, schema)
        with document.transaction():
            heading = document.root.append_child("heading", {"level": 1})
            heading.text.insert(0, "Plan")
            first = document.root.append_child("paragraph")
            first.text.insert(0, "Ship the beta on Friday.")
        toolkit = documents_toolkit(schema)
        context = ToolContext(
            room="team", caller="editor", client=agent, origin=AgentOrigin("editor", "Editor")
        )
        yield toolkit, context, agent, ann, document


async def converged(a: RoomClient, b: RoomClient) -> None:
    """Both replicas hold the same content (state vectors miss deletions: compare JSON)."""

    def same() -> bool:
        return (
            a.ydoc(PATH).get_state() == b.ydoc(PATH).get_state()
            and a.open_documents[PATH].to_json() == b.open_documents[PATH].to_json()
        )

    with anyio.fail_after(5):
        await a.wait_for(same)


async def test_read_and_insert_with_schema_shaped_input(room):
    toolkit, context, agent, ann, document = room
    outline = await call(toolkit, context, "read_document", path=PATH, format=None)
    lines = outline.to_content().splitlines()
    heading_id = document.root.get_child_elements()[0].id
    assert lines[0] == f"[{heading_id}] heading level=1: 'Plan'"
    first_id = document.root.get_child_elements()[1].id

    # the input schema embeds the document schema: a heading needs a level
    spec = toolkit.get("insert_elements").input_schema
    assert {"heading", "paragraph", "$text"} <= set(spec["$defs"])
    result = await call(
        toolkit,
        context,
        "insert_elements",
        path=PATH,
        position="after",
        target_id=first_id,
        elements=[paragraph("Risks: none yet."), paragraph("Owner: Ann.")],
    )
    assert isinstance(result, JsonResponse), result
    new_ids = result.data["inserted"]
    await converged(agent, ann)
    texts = [str(e.text) for e in document.root.get_child_elements()]
    assert texts == ["Plan", "Ship the beta on Friday.", "Risks: none yet.", "Owner: Ann."]
    assert [e.id for e in document.root.get_child_elements()[2:]] == new_ids
    with anyio.fail_after(5):  # the agent's selection follows its work
        await ann.wait_for(
            lambda: any(
                st.get("selection", {}).get("element") == new_ids[0]
                for st in ann.awareness(PATH).values()
            )
        )

    as_json = await call(toolkit, context, "read_document", path=PATH, format="json")
    assert as_json.data == document.to_json()


async def test_schema_violations_are_reported_and_change_nothing(room, live_server):
    toolkit, context, agent, ann, document = room
    before = document.to_json()
    first_id = document.root.get_child_elements()[1].id
    # caught by the toolkit's validation: heading level 7 is outside the enum
    bad_level = {"heading": {"$id": None, "level": 7, "children": []}}
    result = await call(
        toolkit,
        context,
        "insert_elements",
        path=PATH,
        position="after",
        target_id=first_id,
        elements=[bad_level],
    )
    assert isinstance(result, ErrorResponse) and "schema" in result.message
    assert "/elements/0/heading/level" in result.details[0]
    # caught by the toolkit too: a heading inside a paragraph, named at its place
    nested = paragraph("x")
    nested["paragraph"]["children"] = [{"heading": {"$id": None, "level": 1, "children": []}}]
    result = await call(
        toolkit,
        context,
        "insert_elements",
        path=PATH,
        position="last_child",
        target_id=None,
        elements=[nested],
    )
    assert isinstance(result, ErrorResponse), result
    assert "/elements/0/paragraph/children/0" in result.details[0]
    # caught by meshdoc: the first element is fine, the second reuses an existing $id:
    # the whole call is rolled back
    reused = paragraph("y")
    reused["paragraph"]["$id"] = first_id
    result = await call(
        toolkit,
        context,
        "insert_elements",
        path=PATH,
        position="last_child",
        target_id=None,
        elements=[paragraph("ok"), reused],
    )
    assert isinstance(result, ErrorResponse), result
    assert first_id in result.message
    result = await call(
        toolkit,
        context,
        "update_attributes",
        path=PATH,
        id=first_id,
        attributes=[{"name": "align", "value": "diagonal"}],
    )
    assert isinstance(result, ErrorResponse) and "diagonal" in result.message
    result = await call(toolkit, context, "get_element", path=PATH, id="no-such-id")
    assert isinstance(result, ErrorResponse) and "no-such-id" in result.message
    assert agent.open_documents[PATH].to_json() == before
    # A marker the agent writes after the refused calls, on the same socket, reaches the
    # server after anything they sent: then the server's own copy must be unchanged.
    agent.ydoc(PATH).get("marker", type=Map)["written"] = True
    live_doc = live_server.server.room("team").documents[PATH].doc

    def server_copy() -> MeshDocument:
        return MeshDocument.from_update(plan_schema(), live_doc.get_update())

    await eventually(lambda: server_copy().doc.get("marker", type=Map).get("written"))
    assert server_copy().to_json() == before
    await converged(agent, ann)
    assert document.to_json() == before


async def test_update_move_delete(room):
    toolkit, context, agent, ann, document = room
    heading, first = (e.id for e in document.root.get_child_elements())
    result = await call(
        toolkit,
        context,
        "update_attributes",
        path=PATH,
        id=first,
        attributes=[{"name": "align", "value": "center"}],
    )
    assert not isinstance(result, ErrorResponse), result
    result = await call(
        toolkit,
        context,
        "move_element",
        path=PATH,
        id=heading,
        position="after",
        target_id=first,
    )
    assert not isinstance(result, ErrorResponse), result
    await converged(agent, ann)
    children = document.root.get_child_elements()
    assert [c.id for c in children] == [first, heading]
    assert children[0].get_attribute("align") == "center"
    assert str(children[1].text) == "Plan"
    element = await call(toolkit, context, "get_element", path=PATH, id=heading)
    assert element.data["index"] == 1 and element.data["element"]["heading"]["level"] == 1
    result = await call(toolkit, context, "delete_elements", path=PATH, ids=[heading])
    assert not isinstance(result, ErrorResponse), result
    await converged(agent, ann)
    assert [c.id for c in document.root.get_child_elements()] == [first]


async def test_replace_text_by_exact_match_and_cursor(room):
    toolkit, context, agent, ann, document = room
    first = document.root.get_child_elements()[1]
    result = await call(
        toolkit,
        context,
        "replace_text",
        path=PATH,
        id=first.id,
        find="Friday",
        replace="Monday",
        occurrence=None,
    )
    assert not isinstance(result, ErrorResponse), result
    await converged(agent, ann)
    assert str(first.text) == "Ship the beta on Monday."
    # ambiguous and missing text are explained, not guessed
    result = await call(
        toolkit,
        context,
        "replace_text",
        path=PATH,
        id=first.id,
        find="e",
        replace="E",
        occurrence=None,
    )
    assert isinstance(result, ErrorResponse) and "occurs" in result.message
    result = await call(
        toolkit,
        context,
        "replace_text",
        path=PATH,
        id=first.id,
        find="Sunday",
        replace="x",
        occurrence=None,
    )
    assert isinstance(result, ErrorResponse) and "does not occur" in result.message
    result = await call(
        toolkit,
        context,
        "replace_text",
        path=PATH,
        id=first.id,
        find="e",
        replace="E",
        occurrence=2,
    )
    assert not isinstance(result, ErrorResponse)
    await converged(agent, ann)
    assert str(first.text) == "Ship the bEta on Monday."
    # the agent's cursor: a Yjs relative position Ann resolves in her own copy
    from meshdoc import StickyPosition

    with anyio.fail_after(5):
        await ann.wait_for(lambda: any("cursor" in state for state in ann.awareness(PATH).values()))
    state = next(s for s in ann.awareness(PATH).values() if "cursor" in s)
    assert state["user"]["kind"] == "agent"
    assert state["selection"] == {"element": first.id, "start": 10, "end": 11}
    anchor = StickyPosition.from_json(state["cursor"]["anchor"])
    assert first.text.index_of(anchor) == 10


async def test_rewrite_keeps_concurrent_typing_and_undo_is_per_origin(room):
    toolkit, context, agent, ann, document = room
    first = document.root.get_child_elements()[1]
    result = await call(
        toolkit,
        context,
        "rewrite_text",
        path=PATH,
        id=first.id,
        text="Ship the public beta on Friday, after review.",
    )
    assert not isinstance(result, ErrorResponse)
    # Ann types at the start at the same time
    first.text.insert(0, "TODO: ")
    await converged(agent, ann)
    assert str(first.text) == "TODO: Ship the public beta on Friday, after review."
    result = await call(toolkit, context, "undo", path=PATH, steps=None)
    assert result.to_content() == "undid 1 edit(s)"
    await converged(agent, ann)
    assert str(first.text) == "TODO: Ship the beta on Friday."
    result = await call(toolkit, context, "undo", path=PATH, steps=3)
    assert result.to_content() == "nothing of yours to undo"


async def test_list_documents(room):
    """Without a storage object: the room document lists what others have open too."""
    toolkit, context, agent = room[:3]
    await call(toolkit, context, "read_document", path="other/doc", format="outline")
    with anyio.fail_after(5):  # Ann's document, from the room document
        await agent.wait_for(lambda: PATH in agent.documents)
    listed = await call(toolkit, context, "list_documents")
    assert listed.data == ["notes/plan", "other/doc"]
    assert agent.documents[PATH]["open"] == ["ann"]


async def test_markdown_read_insert_and_undo(live_server):
    from meshdoc.markdown import RICH_TEXT_SCHEMA, from_markdown, to_markdown

    async with (
        RoomClient(live_server.base_url, "team", name="Editor", kind="agent", id="e") as agent,
        RoomClient(live_server.base_url, "team", name="Ann", id="ann") as ann,
    ):
        document = await ann.open("notes/md", RICH_TEXT_SCHEMA)
        from_markdown("# Plan\n\n- write tests\n- ship\n", document=document)
        toolkit = documents_toolkit(RICH_TEXT_SCHEMA)
        context = ToolContext(room="team", caller="e", client=agent, origin=AgentOrigin("e", "E"))
        read = await call(toolkit, context, "read_document", path="notes/md", format="markdown")
        assert read.to_content() == "# Plan\n\n- write tests\n- ship\n"
        heading = document.root.get_child_elements()[0].id
        result = await call(
            toolkit,
            context,
            "insert_markdown",
            path="notes/md",
            position="after",
            target_id=heading,
            markdown="Ship **Monday**.\n\n> no risks",
        )
        assert len(result.data["inserted"]) == 2, result
        with anyio.fail_after(5):
            await ann.wait_for(lambda: "Monday" in to_markdown(document))
        assert to_markdown(document) == (
            "# Plan\n\nShip **Monday**.\n\n> no risks\n\n- write tests\n- ship\n"
        )
        refused = await call(
            toolkit,
            context,
            "insert_markdown",
            path="notes/md",
            position="first_child",
            target_id=heading,
            markdown="- a list inside a heading",
        )
        assert isinstance(refused, ErrorResponse)
        await call(toolkit, context, "undo", path="notes/md", steps=None)
        with anyio.fail_after(5):
            await ann.wait_for(lambda: "Monday" not in to_markdown(document))
        assert to_markdown(document) == "# Plan\n\n- write tests\n- ship\n"


async def test_elements_an_editor_made_without_ids_get_addressable(room):
    toolkit, context, agent, ann, document = room
    from pycrdt import XmlElement, XmlText

    await call(toolkit, context, "read_document", path=PATH, format=None)  # the agent opens it
    # What an editor that does not declare `$id` writes: a bare element with text.
    with document.transaction():
        document.fragment.children.append(
            XmlElement("paragraph", {}, [XmlText("Typed in Tiptap.")])
        )
    await converged(agent, ann)
    outline = (await call(toolkit, context, "read_document", path=PATH, format=None)).to_content()
    line = next(line for line in outline.splitlines() if "Typed in Tiptap." in line)
    element_id = line.split("]")[0].lstrip("[")
    assert element_id not in ("None", "")
    result = await call(
        toolkit,
        context,
        "replace_text",
        path=PATH,
        id=element_id,
        find="Tiptap",
        replace="a browser",
        occurrence=None,
    )
    assert not isinstance(result, ErrorResponse), result
    await converged(agent, ann)
    assert "Typed in a browser." in [str(e.text) for e in document.root.get_child_elements()]
