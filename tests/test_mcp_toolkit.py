"""`McpToolkit` and `meshroom offer-mcp`: any MCP server's tools for agents and for the room.

The MCP servers are real: `tests/mcp_servers/kitchen.py` (the official SDK's
`MCPServer`, non-strict schemas and all) over stdio, and `meshroom mcp --http`
over streamable HTTP. Agents run against the scripted OpenAI-compatible server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import anyio
import pytest
from _mcp_helpers import ROOT, McpHttp

from meshroom import RoomClient
from meshroom.agents import (
    Agent,
    ErrorResponse,
    JsonResponse,
    OpenAILLM,
    TextResponse,
    ToolContext,
)
from meshroom.mcp import McpToolkit, server_arguments, strict_schema
from meshroom.testing import ScriptedLLMServer, call, reply, tool_calls

pytestmark = pytest.mark.anyio

KITCHEN = [sys.executable, str(ROOT / "tests" / "mcp_servers" / "kitchen.py")]
ROOM = "lab"


def test_schemas_become_strict_where_the_meaning_survives() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "integer", "default": 1},
            "when": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
            "point": {"type": "object", "properties": {"x": {"type": "number"}}},
        },
        "required": ["point"],
    }
    strict = strict_schema(schema)
    assert strict == {
        "type": "object",
        "properties": {
            "a": {"type": ["integer", "null"]},
            "when": {
                "anyOf": [{"anyOf": [{"type": "string"}, {"type": "integer"}]}, {"type": "null"}]
            },
            "point": {
                "type": "object",
                "properties": {"x": {"type": ["number", "null"]}},
                "required": ["x"],
                "additionalProperties": False,
            },
        },
        "required": ["a", "when", "point"],
        "additionalProperties": False,
    }
    sent = {"a": None, "when": 3, "point": {"x": None}}
    assert server_arguments(sent, schema) == {"when": 3, "point": {}}
    assert strict_schema({"type": "object", "properties": {"m": {"type": "object"}}}) is None
    assert strict_schema({"type": "object", "additionalProperties": {"type": "string"}}) is None


async def test_an_mcp_servers_tools_validate_call_and_follow_its_changes() -> None:
    changes: list[list[str]] = []
    with anyio.fail_after(60):
        async with McpToolkit(
            "kitchen", KITCHEN, on_change=lambda kit: changes.append([t.name for t in kit])
        ) as kit:
            assert [item.name for item in kit] == ["add", "tag", "fail", "unlock"]
            assert kit.description == "Kitchen helpers: sums, tags, failures."
            assert kit.get("add").input_schema["required"] == ["a", "b"]  # b: optional, nullable
            assert kit.get("tag").json_arguments  # a map of arbitrary keys has no strict form
            context = ToolContext()
            assert await kit.execute(context, "add", {"a": 2, "b": None}) == JsonResponse(3)
            assert await kit.execute(context, "add", {"a": 2, "b": 5}) == JsonResponse(7)
            bad = await kit.execute(context, "add", {"a": "two", "b": None})
            assert isinstance(bad, ErrorResponse) and "do not match its schema" in bad.message
            labels = json.dumps({"labels": {"herb": "basil", "dish": "pesto"}})
            tagged = await kit.execute(context, "tag", {"arguments": labels})
            assert tagged == TextResponse("dish=pesto,herb=basil")
            wrong = await kit.execute(context, "tag", {"arguments": json.dumps({"labels": 3})})
            assert isinstance(wrong, ErrorResponse) and "do not match its schema" in wrong.message
            failed = await kit.execute(context, "fail", {"reason": "no"})
            assert isinstance(failed, ErrorResponse) and "fail" in failed.message
            assert await kit.execute(context, "unlock", {}) == TextResponse("unlocked")
            with anyio.fail_after(10):
                while not changes:
                    await anyio.sleep(0.02)
            assert changes[-1][-1] == "secret"
            assert await kit.execute(context, "secret", {}) == TextResponse("the secret is basil")
    gone = await kit.call("add", {"a": 1})
    assert isinstance(gone, ErrorResponse) and "not connected" in gone.message


async def test_a_server_that_cannot_start_is_a_connection_error() -> None:
    with anyio.fail_after(30), pytest.raises(ConnectionError, match="MCP server"):
        async with McpToolkit("nothing", [sys.executable, "-c", "import sys; sys.exit(3)"]):
            pass


async def test_an_agent_uses_an_mcp_toolkit_beside_its_own(live_server) -> None:
    script = [
        tool_calls(call("add", a=40, b=2), call("tag", arguments='{"labels": {"k": "v"}}')),
        lambda request: reply(f"Got {request.tool_results()}"),
    ]
    async with (
        ScriptedLLMServer(script) as model,
        McpToolkit("kitchen", KITCHEN) as kitchen,
    ):
        llm = OpenAILLM("scripted", base_url=model.base_url, api_key="scripted")
        agent = Agent("Cook", toolkits=[kitchen], llm=llm, room_tools=False)
        async with llm, agent.connect(live_server.base_url, ROOM):
            result = await agent.run("Add 40 and 2, then tag k=v.")
        assert result.text == "Got ['42', 'k=v']"
        sent = {
            spec["function"]["name"]: spec["function"] for spec in model.requests[0].body["tools"]
        }
        assert sent["add"]["strict"] is True
        assert sent["add"]["parameters"]["properties"]["b"]["type"] == ["integer", "null"]


async def test_the_room_as_an_mcp_server_over_http_is_a_toolkit_too(live_server) -> None:
    url = live_server.base_url
    async with RoomClient(url, ROOM, name="Ann", id="ann") as ann:
        document = await ann.open("notes/plan")
        document.root.append_child("paragraph").append_text("Read me over HTTP.")
        http = McpHttp(url, ROOM, "--document", "notes/plan")
        async with http, McpToolkit("room", http.url, prefix="room_") as room:
            assert "room_read_document" in room
            read = await room.execute(
                ToolContext(), "room_read_document", {"path": "notes/plan", "format": "markdown"}
            )
            assert read == TextResponse("Read me over HTTP.\n")


async def test_offer_mcp_gives_every_agent_in_the_room_the_servers_tools(live_server) -> None:
    url = live_server.base_url
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "meshroom",
            "offer-mcp",
            "--url",
            url,
            "--room",
            ROOM,
            "--",
            *KITCHEN,
        ],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )
    try:
        async with RoomClient(url, ROOM, name="Ann", id="ann") as ann:
            with anyio.fail_after(30):
                await ann.wait_for(lambda: any(k.endswith("/kitchen") for k in ann.toolkits))
            key = next(k for k in ann.toolkits if k.endswith("/kitchen"))
            offered = ann.toolkits[key]
            assert [t["name"] for t in offered["tools"]] == ["add", "tag", "fail", "unlock"]
            assert offered["description"] == "Kitchen helpers: sums, tags, failures."
            assert await ann.call_tool("kitchen", "add", {"a": 1, "b": None}) == 2

            def answer(request: Any) -> Any:
                return reply(f"The sum is {request.tool_results()[0]}")

            script = [tool_calls(call("kitchen_add", a=20, b=22)), answer]
            async with ScriptedLLMServer(script) as model:
                llm = OpenAILLM("scripted", base_url=model.base_url, api_key="scripted")
                agent = Agent("Bob", llm=llm)
                async with llm, agent.connect(url, ROOM):
                    result = await agent.run("What is 20 + 22?")
            assert result.text == "The sum is 42"

            # The MCP server's tool list changes; the offer follows.
            assert await ann.call_tool("kitchen", "unlock", {}) == "unlocked"
            with anyio.fail_after(10):
                await ann.wait_for(
                    lambda: "secret" in [t["name"] for t in ann.toolkits[key]["tools"]]
                )
            assert await ann.call_tool("kitchen", "secret", {}) == "the secret is basil"
    finally:
        process.terminate()
        await anyio.to_thread.run_sync(process.wait, 10)
        assert process.stderr is not None
        said = process.stderr.read().decode()
        process.stderr.close()
    assert "offering kitchen (4 tools)" in said
