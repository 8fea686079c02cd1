"""README's examples run as written against the server of its first command.

`meshroom serve --dev --storage DIR` runs as a subprocess; the README's Python peer,
its Python agent (its model endpoint is the scripted OpenAI-compatible server) and its
`meshroom agent` shell command run as they are printed, with only the port changed,
and what each wrote is then read back from the server.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import anyio
import httpx
import pytest
from conftest import free_port, start_meshroom_serve

from meshdoc import markdown
from meshroom import RoomClient
from meshroom.testing import ScriptedLLMServer, call, reply, tool_calls

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def blocks(language: str, containing: str) -> list[str]:
    found = re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)
    chosen = [block for block in found if containing in block]
    assert chosen, f"README has no {language} block with {containing!r}"
    return chosen


def append_to_welcome(text: str):  # type: ignore[no-untyped-def]
    """The model's step that appends `text` to notes/welcome."""
    return tool_calls(
        call(
            "insert_markdown",
            path="notes/welcome",
            position="last_child",
            target_id=None,
            markdown=text,
        )
    )


async def run(command: list[str]) -> str:
    with anyio.fail_after(60):
        result = await anyio.run_process(command, cwd=ROOT, check=False)
    output = (result.stdout + result.stderr).decode(errors="replace")
    assert result.returncode == 0, output
    return output


async def test_readme_examples_work_with_the_dev_server(tmp_path: Path) -> None:
    port = free_port()
    server = start_meshroom_serve(port, "--dev", "--storage", str(tmp_path / "rooms"))
    try:
        here = f"127.0.0.1:{port}"
        (peer,) = blocks("py", "RoomClient(")
        output = await run([sys.executable, "-c", peer.replace("127.0.0.1:8765", here)])
        assert output.startswith("py ['py'")

        (agent,) = blocks("py", "agent.connect(")
        script = [
            tool_calls(call("read_document", path="notes/welcome")),
            append_to_welcome("Risks: from the Python agent."),
            reply("Added it."),
        ]
        async with ScriptedLLMServer(script) as llm:
            code = agent.replace("127.0.0.1:8765", here).replace(
                "http://127.0.0.1:8000/v1", llm.base_url
            )
            assert (await run([sys.executable, "-c", code])).strip() == "Added it."

        (shell,) = blocks("sh", "meshroom agent")
        words = shlex.split(shell.replace("\\\n", " ").replace("127.0.0.1:8765", here))
        assert words[:2] == ["meshroom", "agent"]
        await run([sys.executable, "-m", "meshroom", *words[1:]])

        params = {"room": "demo", "name": "Check"}
        token = httpx.get(f"http://{here}/dev/token", params=params).json()["token"]
        async with RoomClient(f"ws://{here}", "demo", token=token) as room:
            text = markdown.to_markdown(await room.open("notes/welcome"))
        for written in ("Hello from Python", "Risks: from the Python agent.", "Risks: none yet."):
            assert written in text
    finally:
        server.terminate()
        server.wait(timeout=20)


async def test_readme_serve_with_an_agent_program_answers_a_message() -> None:
    (program,) = blocks("py", "agent.embed(")
    port = free_port()
    script = [
        append_to_welcome("Welcome, from the agent in the server."),
        reply("Done: I wrote a welcome line."),
    ]
    async with ScriptedLLMServer(script) as llm:
        code = program.replace("port=8765", f"port={port}").replace(
            "http://127.0.0.1:8000/v1", llm.base_url
        )
        async with await anyio.open_process([sys.executable, "-c", code], cwd=ROOT) as served:
            try:
                url = f"ws://127.0.0.1:{port}"
                with anyio.fail_after(30):
                    while True:  # until the program's server listens
                        try:
                            await (await anyio.connect_tcp("127.0.0.1", port)).aclose()
                            break
                        except OSError:
                            await anyio.sleep(0.1)
                    async with RoomClient(url, "demo", name="Ann") as room:
                        await room.wait_for(
                            lambda: any(p["name"] == "Editor" for p in room.participants.values())
                        )
                        (editor,) = [
                            pid for pid, p in room.participants.items() if p["name"] == "Editor"
                        ]
                        await room.send_message("Write a welcome line", to=editor)
                        await room.wait_for(
                            lambda: any("welcome line" in str(m) for m in room.messages)
                        )
                        doc = await room.open("notes/welcome")
                        await room.wait_for(lambda: "from the agent" in markdown.to_markdown(doc))
            finally:
                served.terminate()
