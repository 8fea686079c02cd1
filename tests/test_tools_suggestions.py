"""The documents toolkit's suggestion mode over a real server, and its tools to resolve.

An agent with ``documents_toolkit(schema, suggest=True)`` proposes: its insertions arrive at
Ann's replica marked as its suggestions, its deletions arrive as marks, and its attribute
changes and moves are refused outside its own pending insertions. Either mode lists and
resolves suggestions, and both replicas agree on the outcome.
"""

from __future__ import annotations

import pytest
from test_tools_documents import PATH, call, converged, paragraph, plan_schema

from meshroom import RoomClient
from meshroom.agents import ErrorResponse, JsonResponse, ToolContext
from meshroom.agents._agent import AgentOrigin
from meshroom.agents.toolkits import documents_toolkit

pytestmark = pytest.mark.anyio


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
        context = ToolContext(
            room="team", caller="editor", client=agent, origin=AgentOrigin("editor", "Editor")
        )
        yield schema, context, agent, ann, document


async def test_the_edit_tools_suggest_and_people_resolve(room):
    schema, context, agent, ann, document = room
    toolkit = documents_toolkit(schema, suggest=True)
    assert any("suggestions" in rule for rule in toolkit.rules)
    heading, first = document.root.get_child_elements()
    await call(toolkit, context, "read_document", path=PATH, format="outline")

    result = await call(
        toolkit, context, "rewrite_text", path=PATH, id=first.id, text="Ship the beta on Monday."
    )
    assert not isinstance(result, ErrorResponse), result
    result = await call(
        toolkit,
        context,
        "insert_elements",
        path=PATH,
        position="after",
        target_id=first.id,
        elements=[paragraph("Risks: none yet.")],
    )
    assert isinstance(result, JsonResponse), result
    (risks_id,) = result.data["inserted"]
    result = await call(toolkit, context, "delete_elements", path=PATH, ids=[heading.id])
    assert not isinstance(result, ErrorResponse), result
    await converged(agent, ann)

    # Ann's replica: nothing was removed, everything is marked as the agent's
    assert [e.tag_name for e in document.root.get_child_elements()] == [
        "heading",
        "paragraph",
        "paragraph",
    ]
    listed = document.suggestions()
    assert {(x.kind, x.target, x.text) for x in listed} == {
        ("delete", "text", "Friday"),
        ("insert", "text", "Monday"),
        ("insert", "element", "Risks: none yet."),
        ("delete", "element", "Plan"),
    }
    assert {x.author for x in listed} == {"editor"}
    shown = await call(toolkit, context, "read_document", path=PATH, format="outline")
    tail = shown.to_content().split("pending suggestions")[1].splitlines()[1:]
    assert len(tail) == 4 and all(line.startswith("  {") for line in tail)
    assert f"editor: insert text in [{first.id}]: 'Monday'" in shown.to_content()
    seen = await call(toolkit, context, "list_suggestions", path=PATH, author=None)
    assert [item["id"] for item in seen.data] == [x.id for x in listed]

    # what has no suggestion form is refused, except inside the agent's own insertion
    refused = await call(
        toolkit,
        context,
        "update_attributes",
        path=PATH,
        id=first.id,
        attributes=[{"name": "align", "value": "center"}],
    )
    assert isinstance(refused, ErrorResponse) and "suggestion mode" in refused.message
    moved = await call(
        toolkit, context, "move_element", path=PATH, id=first.id, position="before",
        target_id=heading.id,
    )  # fmt: skip
    assert isinstance(moved, ErrorResponse)
    result = await call(
        toolkit,
        context,
        "update_attributes",
        path=PATH,
        id=risks_id,
        attributes=[{"name": "align", "value": "right"}],
    )
    assert not isinstance(result, ErrorResponse), result

    # Ann accepts the new day and the heading's removal, rejects the rest
    by_text = {x.text: x.id for x in listed}
    document.accept(by_text["Monday"], by_text["Plan"])
    document.reject(by_text["Friday"], by_text["Risks: none yet."])
    await converged(agent, ann)
    assert [str(e.text) for e in document.root.get_child_elements()] == [
        "Ship the beta on FridayMonday."
    ]
    again = await call(toolkit, context, "list_suggestions", path=PATH, author="editor")
    assert again.data == []


async def test_an_agent_resolves_suggestions_and_undoes_its_own(room):
    schema, context, agent, ann, document = room
    _heading, first = document.root.get_child_elements()
    with document.suggesting(author="ann") as s:
        own = s.insert_text(first, 0, "Maybe: ")
        cut = s.delete_text(first, 16, 5)  # "beta ", after "Maybe: Ship the "
    plain = documents_toolkit(schema)  # either mode resolves
    await call(plain, context, "read_document", path=PATH, format="outline")
    await converged(agent, ann)
    result = await call(
        plain, context, "resolve_suggestions", path=PATH, ids=[cut, "gone"], accept=True
    )
    assert result.to_content() == "accepted 1 suggestion(s); 1 no longer pending"
    result = await call(plain, context, "resolve_suggestions", path=PATH, ids=[own], accept=False)
    assert result.to_content() == "rejected 1 suggestion(s)"
    await converged(agent, ann)
    assert str(first.text) == "Ship the on Friday."

    suggesting = documents_toolkit(schema, suggest=True)
    await call(suggesting, context, "read_document", path=PATH, format="outline")
    await call(
        suggesting, context, "insert_markdown", path=PATH, position="last_child",
        target_id=None, markdown="A suggested paragraph.",
    )  # fmt: skip
    await converged(agent, ann)
    assert [x.text for x in document.suggestions("editor")] == ["A suggested paragraph."]
    result = await call(suggesting, context, "undo", path=PATH, steps=1)
    assert "undid 1" in result.to_content()
    await converged(agent, ann)
    assert document.suggestions() == [] and len(document.root.get_child_elements()) == 2
