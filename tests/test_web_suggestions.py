"""Suggestions in the web example, in a real browser against a real `meshroom serve`.

An agent with ``documents_toolkit(..., suggest=True)`` (driven through the `openai` client
by the scripted model server) suggests a rewrite: words deleted and words inserted, a
paragraph inserted and one deleted. Bob's page shows them marked (green insertions, red
deletions, the page's suggestions panel), Ann's page accepts half of them one by one and
rejects the rest with the agent's "Reject all", and both pages and a Python `RoomClient`
end with the same document and nothing pending.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import anyio
import pytest
from test_web import (
    OUTPUT,
    PATH,
    ROOM,
    ServerProcess,
    chromium,
    open_page,
    page_json,
    page_text,
    server,  # noqa: F401 (the fixture)
    token,
    wait_until,
    without_empty_attrs,
)

from meshdoc import markdown
from meshroom import RoomClient
from meshroom.agents import Agent, OpenAILLM
from meshroom.agents.toolkits import documents_toolkit
from meshroom.testing import ScriptedLLMServer, call, reply, tool_calls

pytestmark = [pytest.mark.anyio, pytest.mark.browser]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Playwright's async API runs on asyncio


def _id_of(outline: str, text: str) -> str:
    line = next(line for line in outline.splitlines() if text in line)
    return line.split("]")[0].split("[")[-1]


def _suggest(request: Any) -> Any:
    """The model's second turn: from the outline it read, suggest a rewrite."""
    outline = request.tool_results()[0]
    launch, budget = _id_of(outline, "The launch"), _id_of(outline, "Budget")
    run = {"insert": "Owner: Ann.", "marks": []}
    owner = {"paragraph": {"$id": None, "children": [{"$text": [run]}]}}
    return tool_calls(
        call("rewrite_text", path=PATH, id=launch, text="The launch moves to June."),
        call("insert_elements", path=PATH, position="after", target_id=launch, elements=[owner]),
        call("delete_elements", path=PATH, ids=[budget]),
    )


async def _pending(page: Any) -> list[dict[str, str]]:
    return await page.evaluate(
        """() => [...document.querySelectorAll('#suggestions .suggestion-item')].map((item) =>
             ({ id: item.dataset.id, kind: item.dataset.kind,
                text: item.querySelector('.suggestion-text').textContent }))"""
    )


async def _converged(pages: list[Any], client: RoomClient) -> bool:
    document = client.open_documents[PATH]
    expected = without_empty_attrs(markdown.to_prosemirror(document))
    for page in pages:
        if without_empty_attrs(await page_json(page)) != expected:
            return False
    return True


async def test_an_agent_suggests_bob_sees_it_ann_resolves_it(server: ServerProcess) -> None:  # noqa: F811
    OUTPUT.mkdir(parents=True, exist_ok=True)
    async with (
        AsyncExitStack() as stack,
        chromium() as browser,
        RoomClient(server.ws_url, ROOM, token=token("Py", "py")) as python_peer,
    ):
        document = await python_peer.open(PATH, markdown.RICH_TEXT_SCHEMA)
        markdown.insert_markdown(document.root, "The launch is in May.\n\nBudget stays flat.\n")
        ann = await open_page(browser, server, token("Ann", "ann"))
        bob = await open_page(browser, server, token("Bob", "bob"))
        for page in (ann, bob):
            await page.wait_for_selector(".ProseMirror p:has-text('Budget stays flat.')")
        assert await ann.is_hidden("#suggestions")  # nothing pending yet

        script = [tool_calls(call("read_document", path=PATH, format="outline")), _suggest,
                  reply("Suggested moving the launch to June.")]  # fmt: skip
        with ScriptedLLMServer(script) as llm_server:
            llm = OpenAILLM("scripted", base_url=llm_server.base_url, api_key="test")
            await stack.enter_async_context(llm)
            agent = Agent(
                "Editor",
                rules="You suggest edits to the team's plan.",
                toolkits=[documents_toolkit(markdown.RICH_TEXT_SCHEMA, suggest=True)],
                llm=llm,
                participant_id="editor-agent",
            )
            agent_token = token("Editor", "editor-agent", kind="agent")
            async with agent.connect(server.ws_url, ROOM, token=agent_token):
                result = await agent.run("Move the launch to June")
                assert result.text == "Suggested moving the launch to June.", result
                assert all(c.ok for c in result.tool_calls), result.tool_calls

                # Bob sees every suggestion marked, in the text and in the panel.
                await bob.wait_for_selector(
                    ".ProseMirror del.suggestion-delete:has-text('is in May')"
                )
                await bob.wait_for_selector(
                    ".ProseMirror ins.suggestion-insert:has-text('moves to June')"
                )
                await bob.wait_for_selector(
                    ".ProseMirror p[data-suggestion='insert']:has-text('Owner: Ann.')"
                )
                await bob.wait_for_selector(
                    ".ProseMirror p[data-suggestion='delete']:has-text('Budget')"
                )
                await wait_until(lambda: _count(bob, 4))
                author = await bob.text_content("#suggestions .suggestion-author .name")
                assert author == "Editor"
                title = await bob.get_attribute(".ProseMirror ins.suggestion-insert", "title")
                assert title == "Suggested by editor-agent"
                struck = await bob.evaluate(
                    "getComputedStyle(document.querySelector('.ProseMirror del'))"
                    ".textDecorationLine"
                )
                assert struck == "line-through"
                await bob.screenshot(path=str(OUTPUT / "suggestions-bob.png"))

                # Ann accepts half: the new words replace the old ones ...
                await wait_until(lambda: _count(ann, 4))
                pending = {(s["kind"], s["text"]): s["id"] for s in await _pending(ann)}
                accepted = [pending[("delete", "Delete “is in May”")],
                            pending[("insert", "Insert “moves to June”")]]  # fmt: skip
                for ident in accepted:
                    await ann.click(
                        f"#suggestions .suggestion-item[data-id='{ident}'] button.accept"
                    )
                await wait_until(lambda: _count(ann, 2))
                # ... and rejects the rest: all of the agent's that are left.
                await ann.click(
                    "#suggestions .suggestion-author[data-author='editor-agent'] button.reject-all"
                )
                await ann.wait_for_selector("#suggestions", state="hidden")

                expected = "The launch moves to June.\n\nBudget stays flat.\n"
                with anyio.fail_after(15):
                    await python_peer.wait_for(
                        lambda: (
                            markdown.to_markdown(document) == expected
                            and not document.suggestions()
                        )
                    )
                await wait_until(lambda: _converged([ann, bob], python_peer))
                await bob.wait_for_selector("#suggestions", state="hidden")
                assert await page_text(ann) == await page_text(bob)
                assert "Owner" not in await page_text(bob)
                assert await bob.locator(".ProseMirror ins, .ProseMirror del").count() == 0
                await ann.screenshot(path=str(OUTPUT / "suggestions-ann-resolved.png"))
        assert document.validate() == []
        assert not ann.errors and not bob.errors


async def _count(page: Any, count: int) -> bool:
    return len(await _pending(page)) == count
