"""Agents of other frameworks in a room, through `meshroom mcp`, while a person types.

The OpenAI Agents SDK (`openai-agents`) and pydantic-ai, each with its own MCP
client, start `meshroom mcp` over stdio, and their model is the scripted
OpenAI-compatible server (no network; tracing off). The model reads the
document, then replaces a word inside the very paragraph Ann is typing into and
adds a section. Ann keeps typing numbered tokens throughout; afterwards every
token is there exactly once and in order, the framework's edits are there, and
a third peer joining later sees the same document.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from _mcp_helpers import ROOT, mcp_args

from meshdoc import markdown
from meshroom import RoomClient
from meshroom.testing import ScriptedLLMServer, ScriptedRequest, call, reply, tool_calls

pytestmark = pytest.mark.anyio

ROOM = "team"
PATH = "notes/plan"
START = "We launch Friday. Ann's notes:"


def script() -> list[Any]:
    """The model: read the outline, then edit Ann's paragraph and add a section."""

    def edit(request: ScriptedRequest) -> Any:
        outline = request.tool_results()[0]
        if isinstance(outline, list):  # content parts, as the Agents SDK sends them
            outline = "".join(part.get("text", "") for part in outline)
        found = re.search(r"\[([^\]]+)\] paragraph: .We launch Friday", outline)
        assert found, outline
        return tool_calls(
            call(
                "replace_text",
                path=PATH,
                id=found.group(1),
                find="Friday",
                replace="Monday",
                occurrence=None,
            ),
            call(
                "insert_markdown",
                path=PATH,
                position="last_child",
                target_id=None,
                markdown="## Next steps\n\nShip on Monday.",
            ),
        )

    return [
        tool_calls(call("read_document", path=PATH, format="outline")),
        edit,
        reply("Moved the launch to Monday and added next steps."),
    ]


async def typing_beside(
    url: str, run: Callable[[], Awaitable[str]]
) -> tuple[str, str, int, RoomClient]:
    """Run `run` (the framework's agent) while Ann types; return (answer, text, typed)."""
    async with RoomClient(url, ROOM, name="Ann", id="ann") as ann:
        document = await ann.open(PATH)
        paragraph = document.root.append_child("paragraph")
        paragraph.append_text(START)
        typed = 0
        done = anyio.Event()

        async def type_tokens() -> None:
            nonlocal typed
            while not done.is_set():
                node = paragraph.text
                node.insert(len(node), f" <{typed}>")
                typed += 1
                await anyio.sleep(0.003)

        async with anyio.create_task_group() as group:
            group.start_soon(type_tokens)
            try:
                with anyio.fail_after(120):
                    answer = await run()
            finally:
                done.set()
        await anyio.sleep(0.3)  # the last keystrokes reach the server
        async with RoomClient(url, ROOM, name="Cid", id="cid") as cid:
            later = await cid.open(PATH)
            with anyio.fail_after(10):
                await cid.wait_for(lambda: later.to_json() == document.to_json())
        return answer, markdown.to_markdown(document), typed, ann


def assert_converged(text: str, typed: int) -> None:
    first, _, rest = text.partition("\n\n")
    assert first.startswith("We launch Monday. Ann's notes:"), text
    assert re.findall(r"<(\d+)>", first) == [str(i) for i in range(typed)]  # none lost
    assert typed > 20  # Ann kept typing through the run
    assert rest == "## Next steps\n\nShip on Monday.\n"


def meshroom_mcp(url: str) -> tuple[str, list[str]]:
    return sys.executable, mcp_args(url, ROOM, "--document", PATH, name="Writer")


async def test_an_openai_agents_sdk_agent_edits_through_meshroom_mcp(live_server) -> None:
    from agents import Agent, OpenAIChatCompletionsModel, Runner, set_tracing_disabled
    from agents.mcp import MCPServerStdio
    from openai import AsyncOpenAI

    set_tracing_disabled(True)
    command, args = meshroom_mcp(live_server.base_url)
    async with ScriptedLLMServer(script()) as model:

        async def run() -> str:
            client = AsyncOpenAI(base_url=model.base_url, api_key="scripted")
            llm = OpenAIChatCompletionsModel(model="scripted", openai_client=client)
            params = {"command": command, "args": args, "cwd": str(ROOT), "env": dict(os.environ)}
            room = MCPServerStdio(params=params, client_session_timeout_seconds=30)
            async with client, room:
                agent = Agent(
                    name="Writer", instructions="Edit notes.", mcp_servers=[room], model=llm
                )
                result = await Runner.run(agent, "Move the launch to Monday; add next steps.")
            return str(result.final_output)

        answer, text, typed, _ann = await typing_beside(live_server.base_url, run)
    assert answer == "Moved the launch to Monday and added next steps."
    assert_converged(text, typed)
    assert "replace_text" in model.requests[0].tool_names  # the MCP tools reached the model


async def test_a_pydantic_ai_agent_edits_through_meshroom_mcp(live_server) -> None:
    from fastmcp.client.transports import StdioTransport
    from openai import AsyncOpenAI
    from pydantic_ai import Agent
    from pydantic_ai.mcp import MCPToolset
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    command, args = meshroom_mcp(live_server.base_url)
    async with ScriptedLLMServer(script()) as model:

        async def run() -> str:
            client = AsyncOpenAI(base_url=model.base_url, api_key="scripted")
            provider = OpenAIProvider(openai_client=client)
            transport = StdioTransport(command, args, env=dict(os.environ), cwd=str(ROOT))
            room = MCPToolset(transport)
            agent = Agent(OpenAIChatModel("scripted", provider=provider), toolsets=[room])
            async with client, agent:
                result = await agent.run("Move the launch to Monday; add next steps.")
            return str(result.output)

        answer, text, typed, _ann = await typing_beside(live_server.base_url, run)
    assert answer == "Moved the launch to Monday and added next steps."
    assert_converged(text, typed)
    assert "insert_markdown" in model.requests[0].tool_names
