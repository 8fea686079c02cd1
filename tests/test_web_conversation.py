"""Talking to an agent from the web page: the answer grows, replies stay in their thread,
the page shows what the agent does and stops it. Debian's Chromium through Playwright,
`meshroom serve` as a subprocess, an agent driven by the scripted OpenAI-compatible server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from test_web import ROOM, ServerProcess, chromium, open_page, serving, token

from meshroom.agents import Agent, OpenAILLM, Toolkit, tool
from meshroom.testing import ScriptedLLMServer, call, reply, tool_calls

pytestmark = [pytest.mark.anyio, pytest.mark.browser]

ANSWER = "The plan has three parts: research, a beta, and the launch itself in spring."


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with serving(tmp_path / "rooms") as process:
        yield process


async def ask(page: Any, text: str) -> None:
    await page.select_option("#message-to", "helper")
    await page.fill("#message-text", text)
    await page.click("#message-form button")


async def test_the_page_shows_the_answer_growing_and_stops_the_agent(server: ServerProcess) -> None:
    gate = anyio.Event()

    @tool
    async def research(topic: str) -> str:
        """Research a topic (slowly).

        Args:
            topic: What to look into.
        """
        await gate.wait()
        return "found things"

    def follow_up(request: Any) -> Any:
        said = [m.get("content") for m in request.messages]
        assert ANSWER in said, said  # the reply came in the same thread
        return tool_calls(call("research", topic="spring"))

    script = [reply(ANSWER), follow_up, reply("never asked")]
    async with (
        chromium() as browser,
        ScriptedLLMServer(script, chunk_delay=0.15) as llm_server,
        OpenAILLM("scripted", base_url=llm_server.base_url, api_key="test") as llm,
    ):
        ann = await open_page(browser, server, token("Ann", "ann"))
        agent = Agent("Helper", llm=llm, progress=False, participant_id="helper",
                      toolkits=[Toolkit("research", [research])])  # fmt: skip
        agent_token = token("Helper", "helper", kind="agent")
        async with agent.connect(server.ws_url, ROOM, token=agent_token):
            await ann.wait_for_selector("#message-to option[value='helper']", state="attached")
            await ask(ann, "What is in the plan?")
            # the answer is on the page while it is written, then as a message
            await ann.wait_for_selector("#streams .streaming")
            partial = await ann.inner_text("#streams .streaming .text")
            assert partial and ANSWER.startswith(partial.rstrip("▍").strip()) and partial != ANSWER
            await ann.wait_for_selector(f"#messages .message:has-text('{ANSWER[:30]}')")
            await ann.wait_for_selector("#streams .streaming", state="detached")

            # a reply stays in the thread; the page shows the agent at work and stops it
            await ask(ann, "Look into the launch")
            row = "#agent-status .agent-status[data-agent='helper']"
            await ann.wait_for_selector(f"{row}[data-state='calling']")
            assert "calling research" in await ann.inner_text(row)
            await ann.click(f"{row} .agent-stop")
            await anyio.sleep(0.3)
            gate.set()
            await ann.wait_for_selector("#messages .message:has-text('stopped before finishing')")
            await ann.wait_for_selector("#agent-status", state="hidden")
        assert len(llm_server.requests) == 2  # stopped before asking the model again
        assert not ann.errors
