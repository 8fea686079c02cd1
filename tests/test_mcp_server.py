"""`meshroom mcp`: a room as an MCP server, driven by the official `mcp` client.

A real meshroom server on 127.0.0.1, `meshroom mcp` as the subprocess an MCP
client starts (stdio) or as an HTTP server, the SDK's own `Client` in both
protocol eras, and people as `RoomClient`s editing, offering tools and watching.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import mcp_types as types
import pytest
from _mcp_helpers import McpHttp, mcp_stdio, text_of
from mcp import Client
from mcp.shared.exceptions import MCPDeprecationWarning

from meshroom import RoomClient
from meshroom.agents import ToolContext, Toolkit, tool
from meshroom.agents.toolkits import documents_toolkit
from meshroom.mcp import document_uri

pytestmark = pytest.mark.anyio

ROOM = "lab"
PATH = "notes/plan"
#: The documents toolkit's tools, as meshroom agents have them.
DOCUMENT_TOOLS = [item.name for item in documents_toolkit()]
ROOM_TOOLS = ["list_participants", "send_message", "read_messages"]


def text_tools(cancelled: list[str] | None = None, started: anyio.Event | None = None) -> Toolkit:
    @tool(read_only=True)
    async def shout(text: str, context: ToolContext) -> str:
        """Say it louder.

        Args:
            text: What to say.
        """
        return f"{text.upper()}! (for {context.on_behalf_of})"

    @tool
    async def wait(seconds: float) -> str:
        """Wait, then say done.

        Args:
            seconds: How long.
        """
        if started is not None:
            started.set()
        try:
            await anyio.sleep(seconds)
        except anyio.get_cancelled_exc_class():
            if cancelled is not None:
                cancelled.append("wait")
            raise
        return "done"

    return Toolkit("text", [shout, wait], description="Text helpers")


async def seeded(ann: RoomClient) -> Any:
    document = await ann.open(PATH)
    with document.transaction():
        document.root.append_child("heading", {"level": 1}).append_text("Plan")
        document.root.append_child("paragraph").append_text("Ann writes here.")
    return document


def ids_by_text(outline: str) -> dict[str, str]:
    """Text -> $id of each element of a read_document outline."""
    found = {}
    for line in outline.splitlines():
        element_id, _, rest = line.strip()[1:].partition("] ")
        found[rest.split(": ", 1)[1].strip("'\"") if ": " in rest else rest] = element_id
    return found


async def call_ok(client: Client, name: str, **arguments: Any) -> str:
    result = await client.call_tool(name, arguments)
    assert not result.is_error, f"{name}: {text_of(result)}"
    return text_of(result)


async def test_stdio_lists_every_tool_with_schemas_and_calls_each_one(live_server) -> None:
    url = live_server.base_url
    async with (
        RoomClient(url, ROOM, name="Ann", id="ann") as ann,
        RoomClient(url, ROOM, name="Bob", id="bob") as bob,
    ):
        document = await seeded(ann)
        await bob.offer(text_tools())
        with anyio.fail_after(60):
            async with Client(mcp_stdio(url, ROOM, "--document", PATH)) as client:
                listed = (await client.list_tools()).tools
                names = [item.name for item in listed]
                assert names == [*DOCUMENT_TOOLS, *ROOM_TOOLS, "text_shout", "text_wait"]
                schemas = {item.name: item.input_schema for item in listed}
                # strict, except that what may be null may be left out, as MCP clients do
                assert schemas["replace_text"]["required"] == ["path", "id", "find", "replace"]
                assert schemas["replace_text"]["additionalProperties"] is False
                assert schemas["text_shout"]["properties"]["text"]["type"] == "string"
                assert {item.name for item in listed if item.annotations.read_only_hint} >= {
                    "read_document",
                    "list_participants",
                }

                # The room sees a participant of kind "agent" named as asked.
                writer = next(p for p in ann.participants.values() if p["name"] == "Writer")
                assert writer["kind"] == "agent"

                assert PATH in json.loads(await call_ok(client, "list_documents"))
                outline = await call_ok(client, "read_document", path=PATH, format="outline")
                ids = ids_by_text(outline)
                paragraph = ids["Ann writes here."]
                assert "Plan" in await call_ok(
                    client, "read_document", path=PATH, format="markdown"
                )
                element = json.loads(await call_ok(client, "get_element", path=PATH, id=paragraph))
                assert element["index"] == 1
                inserted = json.loads(
                    await call_ok(
                        client,
                        "insert_elements",
                        path=PATH,
                        position="after",
                        target_id=paragraph,
                        elements=json.dumps(
                            [{"paragraph": {"children": [{"$text": [{"insert": "Risks."}]}]}}]
                        ),
                    )
                )["inserted"]
                await call_ok(
                    client,
                    "insert_markdown",
                    path=PATH,
                    position="last_child",
                    target_id=None,
                    markdown="## Notes\n\nMore later.",
                )
                await call_ok(
                    client,
                    "update_attributes",
                    path=PATH,
                    id=ids["Plan"],
                    attributes=[{"name": "level", "value": 2}],
                )
                await call_ok(
                    client,
                    "move_element",
                    path=PATH,
                    id=inserted[0],
                    position="before",
                    target_id=paragraph,
                )
                await call_ok(
                    client,
                    "replace_text",
                    path=PATH,
                    id=paragraph,
                    find="writes",
                    replace="wrote",
                    occurrence=None,
                )
                await call_ok(
                    client, "rewrite_text", path=PATH, id=inserted[0], text="Risks: none."
                )
                await call_ok(client, "delete_elements", path=PATH, ids=[inserted[0]])
                assert "undid 1" in await call_ok(client, "undo", path=PATH, steps=1)
                people = json.loads(await call_ok(client, "list_participants"))
                assert {p["name"] for p in people} >= {"Ann", "Bob", "Writer"}
                await call_ok(client, "send_message", text="Drafted the risks.", to="Ann")
                said = json.loads(await call_ok(client, "read_messages", limit=5))
                assert said[-1]["text"] == "Drafted the risks." and said[-1]["to"] == "ann"
                assert await call_ok(client, "text_shout", text="hi") == (
                    f"HI! (for {writer_id(ann)})"
                )
                assert await call_ok(client, "text_wait", seconds=0.01) == "done"

                # Ann sees every edit, made by another participant through the CRDT.
                with anyio.fail_after(5):
                    await ann.wait_for(lambda: "Risks: none." in markdown_of(document))
                text = markdown_of(document)
                assert "## Plan" in text and "Ann wrote here." in text and "More later." in text


def writer_id(room: RoomClient) -> str:
    return next(pid for pid, p in room.participants.items() if p["name"] == "Writer")


def markdown_of(document: Any) -> str:
    from meshdoc import markdown

    return markdown.to_markdown(document)


async def test_tools_offered_in_the_room_come_and_go_with_list_changed(live_server) -> None:
    await tools_come_and_go(live_server.base_url, "legacy")  # a 2025 handshake session
    await tools_come_and_go(live_server.base_url, "auto")  # a 2026 client, on a listen stream


async def tools_come_and_go(url: str, mode: str) -> None:
    changed = [anyio.Event()]

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed[0].set()

    async with RoomClient(url, ROOM, name="Bob", id=f"bob-{mode}") as bob:
        with anyio.fail_after(60):
            client = Client(mcp_stdio(url, ROOM), mode=mode, message_handler=on_message)
            async with client, anyio.create_task_group() as group:
                names = [item.name for item in (await client.list_tools()).tools]
                assert "text_shout" not in names
                if mode == "auto":
                    assert client.protocol_version == "2026-07-28"

                    async def listen() -> None:
                        async with client.listen(tools_list_changed=True) as events:
                            async for _event in events:
                                changed[0].set()

                    group.start_soon(listen)
                    await anyio.sleep(0.3)  # the stream is acknowledged
                await bob.offer(text_tools())
                await changed[0].wait()
                listed = [item.name for item in (await client.list_tools()).tools]
                assert listed[-2:] == ["text_shout", "text_wait"]
                assert await call_ok(client, "text_shout", text="yo") == (
                    f"YO! (for {writer_id(bob)})"
                )
                changed[0] = anyio.Event()
                await bob.withdraw("text")
                await changed[0].wait()
                assert "text_shout" not in [i.name for i in (await client.list_tools()).tools]
                group.cancel_scope.cancel()


async def test_documents_are_resources_in_markdown_and_json_with_updates(live_server) -> None:
    url = live_server.base_url
    uri = document_uri(ROOM, PATH)
    assert uri == "meshdoc://lab/notes/plan"
    async with RoomClient(url, ROOM, name="Ann", id="ann") as ann:
        document = await seeded(ann)
        updated = anyio.Event()

        async def on_message(message: Any) -> None:
            if isinstance(message, types.ResourceUpdatedNotification):
                assert str(message.params.uri) == uri
                updated.set()

        with anyio.fail_after(60):
            client = Client(mcp_stdio(url, ROOM), mode="legacy", message_handler=on_message)
            async with client:
                listed = (await client.list_resources()).resources
                assert [(str(r.uri), r.name) for r in listed] == [(uri, PATH)]
                contents = (await client.read_resource(uri)).contents
                assert [c.mime_type for c in contents] == ["text/markdown", "application/json"]
                assert contents[0].text == "# Plan\n\nAnn writes here.\n"
                tree = json.loads(contents[1].text)["doc"]["children"]
                assert tree[1]["paragraph"]["$id"]
                only_json = (await client.read_resource(uri + "?format=json")).contents
                assert [c.mime_type for c in only_json] == ["application/json"]

                with pytest.warns(MCPDeprecationWarning):  # the 2025 way, still served
                    await client.session.subscribe_resource(uri)
                document.root.append_child("paragraph").append_text("Ann adds a line.")
                await updated.wait()
                again = (await client.read_resource(uri)).contents[0].text
                assert again.endswith("Ann adds a line.\n")

        # A 2026 client hears of the same change on its listen stream.
        with anyio.fail_after(60):
            async with Client(mcp_stdio(url, ROOM)) as client:
                async with client.listen(resource_subscriptions=[uri]) as events:
                    document.root.append_child("paragraph").append_text("And another.")
                    async for event in events:
                        assert event.uri == uri
                        break
                assert (await client.read_resource(uri)).contents[0].text.endswith("And another.\n")


async def test_a_resource_of_another_room_is_refused_with_a_reason(live_server) -> None:
    from mcp.shared.exceptions import MCPError

    with anyio.fail_after(60):
        async with Client(mcp_stdio(live_server.base_url, ROOM)) as client:
            with pytest.raises(MCPError, match="not in room 'lab'"):
                await client.read_resource("meshdoc://other/notes/plan")
            with pytest.raises(MCPError, match="unknown format"):
                await client.read_resource(document_uri(ROOM, PATH) + "?format=pdf")


async def test_its_edits_have_their_own_origin_cursor_and_undo(live_server) -> None:
    url = live_server.base_url
    async with RoomClient(url, ROOM, name="Ann", id="ann") as ann:
        document = await seeded(ann)
        with anyio.fail_after(60):
            async with Client(mcp_stdio(url, ROOM, "--document", PATH)) as client:
                ids = ids_by_text(await call_ok(client, "read_document", path=PATH))
                paragraph = ids["Ann writes here."]
                await call_ok(
                    client,
                    "replace_text",
                    path=PATH,
                    id=paragraph,
                    find="writes",
                    replace="wrote",
                    occurrence=None,
                )

                # Its cursor shows where it edited, as a Yjs relative position.
                def cursor() -> Any:
                    states = ann.awareness(PATH).values()
                    return next(
                        (
                            s
                            for s in states
                            if s.get("user", {}).get("name") == "Writer" and "cursor" in s
                        ),
                        None,
                    )

                await ann.wait_for(lambda: cursor() is not None)
                state = cursor()
                assert state["user"]["kind"] == "agent"
                selection = state["selection"]  # the span that changed, inside "wrote"
                assert selection["element"] == paragraph
                assert 4 <= selection["start"] < selection["end"] == 9
                assert set(state["cursor"]) == {"anchor", "head"}
                # Ann types in the same paragraph; undoing the MCP session's edit keeps hers.
                await ann.wait_for(lambda: "wrote" in markdown_of(document))
                node = document.get_node_by_id(paragraph).text
                node.insert(len(node), " Ann again.")
                await anyio.sleep(0.2)
                assert "undid 1" in await call_ok(client, "undo", path=PATH, steps=5)
                await ann.wait_for(lambda: "Ann writes here. Ann again." in markdown_of(document))
                assert "nothing of yours" in await call_ok(client, "undo", path=PATH)


async def test_a_call_that_fails_half_way_writes_nothing(live_server) -> None:
    url = live_server.base_url
    async with RoomClient(url, ROOM, name="Ann", id="ann") as ann:
        document = await seeded(ann)
        before = document.to_json()
        with anyio.fail_after(60):
            async with Client(mcp_stdio(url, ROOM, "--document", PATH)) as client:
                good = {"paragraph": {"children": [{"$text": [{"insert": "kept?"}]}]}}
                result = await client.call_tool(
                    "insert_elements",
                    {
                        "path": PATH,
                        "position": "last_child",
                        "target_id": None,
                        "elements": json.dumps([good, good, {"paragraph": {"children": 7}}]),
                    },
                )
                assert result.is_error and "insert_elements failed" in text_of(result)
                bad = await client.call_tool("replace_text", {"path": PATH})
                assert bad.is_error and "do not match its schema" in text_of(bad)
                await call_ok(client, "send_message", text="checked")
                await ann.wait_for(lambda: any(m.get("text") == "checked" for m in ann.messages))
        assert document.to_json() == before


async def test_streamable_http_serves_several_clients_as_one_participant(live_server) -> None:
    url = live_server.base_url
    async with RoomClient(url, ROOM, name="Ann", id="ann") as ann:
        document = await seeded(ann)
        async with McpHttp(url, ROOM, "--document", PATH) as http:
            async with Client(http.url) as first, Client(http.url, mode="legacy") as second:
                assert [t.name for t in (await first.list_tools()).tools][:2] == DOCUMENT_TOOLS[:2]
                ids = ids_by_text(await call_ok(second, "read_document", path=PATH))
                await call_ok(
                    first,
                    "insert_markdown",
                    path=PATH,
                    position="after",
                    target_id=ids["Ann writes here."],
                    markdown="Over HTTP.",
                )
                await call_ok(
                    second,
                    "replace_text",
                    path=PATH,
                    id=ids["Plan"],
                    find="Plan",
                    replace="The plan",
                    occurrence=None,
                )
                contents = (await first.read_resource(document_uri(ROOM, PATH))).contents
                assert "# The plan" in contents[0].text and "Over HTTP." in contents[0].text
            await ann.wait_for(lambda: "Over HTTP." in markdown_of(document))
            agents = [p for p in ann.participants.values() if p["kind"] == "agent"]
            assert [p["name"] for p in agents] == ["Writer"]


async def test_a_client_that_disconnects_mid_call_leaves_the_room_unaffected(live_server) -> None:
    url = live_server.base_url
    cancelled: list[str] = []
    started = anyio.Event()
    async with (
        RoomClient(url, ROOM, name="Ann", id="ann") as ann,
        RoomClient(url, ROOM, name="Bob", id="bob") as bob,
    ):
        document = await seeded(ann)
        await bob.offer(text_tools(cancelled, started))
        async with McpHttp(url, ROOM, "--document", PATH) as http:
            async with anyio.create_task_group() as group:

                async def hang_up_mid_call() -> None:
                    async with Client(http.url) as client:
                        await client.call_tool("text_wait", {"seconds": 30})

                group.start_soon(hang_up_mid_call)
                await started.wait()
                group.cancel_scope.cancel()  # the MCP client goes away mid-call
            await bob.wait_for(lambda: cancelled == ["wait"])  # the call was cancelled there
            async with Client(http.url) as client:  # and the participant serves on
                assert await call_ok(client, "text_shout", text="still") == (
                    f"STILL! (for {writer_id(ann)})"
                )
                await call_ok(
                    client,
                    "insert_markdown",
                    path=PATH,
                    position="last_child",
                    target_id=None,
                    markdown="After the hang-up.",
                )
            await ann.wait_for(lambda: "After the hang-up." in markdown_of(document))

        # Over stdio the client's end closing ends the session, and the participant leaves.
        with anyio.fail_after(60):
            async with anyio.create_task_group() as group:

                async def stdio_hang_up() -> None:
                    async with Client(mcp_stdio(url, ROOM, name="Quitter")) as client:
                        await client.call_tool("text_wait", {"seconds": 30})

                started = anyio.Event()
                await bob.withdraw("text")
                await bob.offer(text_tools(cancelled, started))
                group.start_soon(stdio_hang_up)
                await started.wait()
                group.cancel_scope.cancel()
            await ann.wait_for(
                lambda: all(p["name"] != "Quitter" for p in ann.participants.values())
            )
            await bob.wait_for(lambda: cancelled == ["wait", "wait"])
        assert "After the hang-up." in markdown_of(document)
