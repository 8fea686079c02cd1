"""The room the MCP examples run in: a meshroom server, a person typing, a scripted model.

`mcp_openai_agents.py` and `mcp_pydantic_ai.py` hold the ten lines that matter (an
agent of another framework, given the room through `meshroom mcp`); this module is
the stage around them, so they run offline: a meshroom server on 127.0.0.1, Ann
typing into notes/plan throughout, and an OpenAI-compatible model scripted to read
the document, move the launch to Monday and add next steps. `--base-url` and
`--model` point the agent at a real model instead.
"""

from __future__ import annotations

import argparse
import re
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import uvicorn

from meshdoc import markdown
from meshroom import RoomClient, Server, create_app
from meshroom.testing import ScriptedLLMServer, ScriptedRequest, call, reply, tool_calls

ROOM, PATH = "team", "notes/plan"
TASK = "In notes/plan, move the launch to Monday and add a 'Next steps' section."
#: How the agent's MCP client starts `meshroom mcp` (stdio) for the room at a URL.
MESHROOM = sys.executable
AgentRun = Callable[[str, str, str, str], Awaitable[str]]


def meshroom_mcp_args(url: str) -> list[str]:
    return ["-m", "meshroom", "mcp", "--url", url, "--room", ROOM, "--name", "Writer"]


def _script() -> list[Any]:
    def edit(request: ScriptedRequest) -> Any:
        outline = request.tool_results()[0]
        if isinstance(outline, list):  # content parts
            outline = "".join(part.get("text", "") for part in outline)
        paragraph = re.search(r"\[([^\]]+)\] paragraph: .We launch", outline).group(1)  # type: ignore[union-attr]
        return tool_calls(
            call("replace_text", path=PATH, id=paragraph, find="Friday", replace="Monday"),
            call("insert_markdown", path=PATH, position="last_child", target_id=None,
                 markdown="## Next steps\n\nShip on Monday."),
        )  # fmt: skip

    return [tool_calls(call("read_document", path=PATH, format="outline")), edit, reply("Done.")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _stage(run: AgentRun, base_url: str | None, model: str, api_key: str) -> None:
    server = Server()
    port = _free_port()
    config = uvicorn.Config(create_app(server), host="127.0.0.1", port=port, log_level="warning")
    web = uvicorn.Server(config)
    async with anyio.create_task_group() as group:
        group.start_soon(web.serve)
        while not web.started:  # noqa: ASYNC110 (uvicorn exposes a flag, not an event)
            await anyio.sleep(0.01)
        url = f"ws://127.0.0.1:{port}"
        async with RoomClient(url, ROOM, name="Ann", id="ann") as ann:
            document = await ann.open(PATH)
            paragraph = document.root.append_child("paragraph")
            paragraph.append_text("We launch Friday. Ann's notes:")
            stop, typed = anyio.Event(), [0]

            async def type_notes() -> None:
                while not stop.is_set():
                    paragraph.text.insert(len(paragraph.text), f" {typed[0]}")
                    typed[0] += 1
                    await anyio.sleep(0.02)

            group.start_soon(type_notes)
            answer = await _answer(run, url, base_url, model, api_key)
            stop.set()
            await anyio.sleep(0.3)
            print(f"agent: {answer}\nAnn typed {typed[0]} tokens meanwhile; the document:\n")
            print(markdown.to_markdown(document))
        web.should_exit = True


async def _answer(run: AgentRun, url: str, base_url: str | None, model: str, key: str) -> str:
    if base_url is not None:
        return await run(url, base_url, model, key)
    async with ScriptedLLMServer(_script()) as scripted:
        return await run(url, scripted.base_url, "scripted", "scripted")


def main(run: AgentRun) -> None:
    """Parse `--base-url`, `--model`, `--api-key` and play the example with `run`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="an OpenAI-compatible endpoint (default: scripted)")
    parser.add_argument("--model", default="gpt-4.1-mini")
    parser.add_argument("--api-key", default="none")
    options = parser.parse_args()
    anyio.run(_stage, run, options.base_url, options.model, options.api_key)
