"""The room in a real browser: an agent asks a person, answers grow, admins see activity.

`meshroom serve` as a subprocess (auth on, folder storage, the activity log), Debian's
Chromium through Playwright running the built example, which offers a `ui` toolkit from the
browser over the unmodified y-websocket provider, and agents driven through the `openai`
client by the scripted OpenAI-compatible server (which streams when asked).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from test_web import (
    OUTPUT,
    PATH,
    ROOM,
    SECRET,
    ServerProcess,
    chromium,
    open_page,
    serving,
    token,
    wait_until,
)

from meshdoc import markdown
from meshroom import RoomClient
from meshroom.agents import Agent, OpenAILLM, Toolkit, tool
from meshroom.agents.toolkits import documents_toolkit
from meshroom.auth import Grant, mint_token
from meshroom.testing import ScriptedLLMServer, call, reply, tool_calls

pytestmark = [pytest.mark.anyio, pytest.mark.browser]

TITLES = json.dumps(
    {
        "type": "object",
        "properties": {"title": {"type": "string", "enum": ["Launch plan", "Beta plan"]}},
        "required": ["title"],
    }
)
ANSWER = "The plan has three parts: research, a beta, and the launch itself in spring."


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Playwright's async API runs on asyncio


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with serving(tmp_path / "rooms") as process:
        yield process


# -- asking a person: the page's ui toolkit ----------------------------------------------


async def test_an_agent_asks_ann_which_title_and_uses_her_answer(server: ServerProcess) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)

    def write_the_answer(request: Any) -> Any:
        answer = request.last_json()
        assert answer.get("answered") is True, request.tool_results()
        title = answer["values"]["title"]
        where = {"path": PATH, "position": "first_child", "target_id": None}
        return tool_calls(call("insert_markdown", **where, markdown=f"# {title}"))

    def after_dismissal(request: Any) -> Any:
        answer = request.last_json()
        return reply(f"Ann said: {answer['reason']}")

    script = [
        tool_calls(call("ui_ask", question="Which title should the plan have?", schema=TITLES)),
        write_the_answer,
        reply("Used Ann's title."),
        tool_calls(call("ui_confirm", action="Delete the plan?")),
        after_dismissal,
    ]
    async with (
        chromium() as browser,
        RoomClient(server.ws_url, ROOM, token=token("Py", "py")) as python_peer,
        ScriptedLLMServer(script) as llm_server,
        OpenAILLM("scripted", base_url=llm_server.base_url, api_key="test") as llm,
    ):
        document = await python_peer.open(PATH, markdown.RICH_TEXT_SCHEMA)
        ann = await open_page(browser, server, token("Ann", "ann"))
        with anyio.fail_after(10):
            await python_peer.wait_for(lambda: "ann/ui" in python_peer.toolkits)
        listed = python_peer.toolkits["ann/ui"]
        assert listed["offeredBy"] == "ann"
        assert [tool["name"] for tool in listed["tools"]] == ["ask", "confirm", "notify"]

        agent = Agent(
            "Editor",
            toolkits=[documents_toolkit(markdown.RICH_TEXT_SCHEMA)],
            llm=llm,
            participant_id="editor-agent",
            progress=False,
        )
        async with agent.connect(server.ws_url, ROOM, token=token("Editor", "editor-agent",
                                                                  kind="agent")):  # fmt: skip
            await agent.client.wait_for(lambda: "ann/ui" in agent.client.toolkits)
            async with anyio.create_task_group() as group:
                results: list[Any] = []

                async def run() -> None:
                    results.append(await agent.run("Pick the title with Ann."))

                group.start_soon(run)
                # Ann's page shows the form; she picks the second title and answers
                await ann.wait_for_selector("[data-ui-request] input[value='Beta plan']")
                assert "Editor asks: Which title" in await ann.inner_text("#ui-requests")
                await ann.screenshot(path=str(OUTPUT / "ui-ask.png"))
                await ann.check("[data-ui-request] input[value='Beta plan']")
                await ann.click("[data-ui-request] .ui-submit")
            assert results[0].completed
            await ann.wait_for_selector(".ProseMirror h1:has-text('Beta plan')")
            await wait_until(lambda: _first_heading(document, "Beta plan"))
            assert await ann.is_hidden("#ui-requests")  # the answered card is gone

            # a dismissed card is an answer the agent can reason about
            async with anyio.create_task_group() as group:
                results.clear()

                async def run_again() -> None:
                    results.append(await agent.run("Ask Ann before deleting."))

                group.start_soon(run_again)
                await ann.wait_for_selector("[data-ui-request] .ui-dismiss")
                assert "Delete the plan?" in await ann.inner_text("#ui-requests")
                await ann.click("[data-ui-request] .ui-dismiss")
            assert results[0].text == "Ann said: dismissed"
        assert not ann.errors


async def test_a_call_that_times_out_clears_the_card(server: ServerProcess) -> None:
    async with (
        chromium() as browser,
        RoomClient(server.ws_url, ROOM, token=token("Py", "py")) as caller,
    ):
        ann = await open_page(browser, server, token("Ann", "ann"))
        with anyio.fail_after(10):
            await caller.wait_for(lambda: "ann/ui" in caller.toolkits)
        from meshroom.client import RoomCallError

        async with anyio.create_task_group() as group:
            outcome: list[Any] = []

            async def ask() -> None:
                try:
                    await caller.call_tool(
                        "ann/ui", "ask", {"question": "Still there?", "schema": TITLES},
                        timeout=1.5,
                    )  # fmt: skip
                except RoomCallError as error:
                    outcome.append(error.reason)

            group.start_soon(ask)
            await ann.wait_for_selector("[data-ui-request]")
        assert outcome == ["timeout"]
        await ann.wait_for_selector("[data-ui-request]", state="detached")
        # a bad form is the caller's error, and no card appears
        with pytest.raises(RoomCallError) as bad:
            await caller.call_tool("ann/ui", "ask", {"question": "?", "schema": "{not json"})
        assert bad.value.reason == "tool-error" and "not JSON" in str(bad.value)
        assert await ann.is_hidden("#ui-requests")


async def _first_heading(document: Any, text: str) -> bool:
    children = document.root.get_children()
    return bool(children) and markdown.to_markdown(children[0]).strip() == f"# {text}"


# -- conversations: answers growing, threads, status and stop ----------------------------


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


# -- the activity panel, for admins ------------------------------------------------------


async def test_an_admin_page_shows_the_activity_log(server: ServerProcess) -> None:
    admin = mint_token(
        secret=SECRET, name="Ada", participant_id="ada", grants=[Grant(ROOM, ["*"], admin=True)]
    )
    async with chromium() as browser:
        ada = await open_page(browser, server, admin)
        bob = await open_page(browser, server, token("Bob", "bob"))
        await ada.wait_for_selector("#activity .activity-event[data-type='participant.joined']")
        await ada.wait_for_selector("#activity .activity-event:has-text('Bob')")
        assert "room.opened" in await ada.inner_text("#activity")
        await bob.close()
        await ada.wait_for_selector("#activity .activity-event[data-type='participant.left']")
        assert await ada.get_attribute("#activity", "data-error") is None
        page = await open_page(browser, server, token("Cy", "cy"))
        assert await page.is_hidden("#activity")  # no admin grant: no panel
        assert not ada.errors and not page.errors
