"""`meshroom agent` as a subprocess against a live server and the scripted model server."""

from __future__ import annotations

import itertools
import json
import sys

import anyio
import pytest

from meshdoc import ChildProperty, ElementType, MeshSchema
from meshroom import RoomClient
from meshroom.agents import ScriptedLLMServer, call, reply, tool_calls

pytestmark = pytest.mark.anyio

PATH = "notes/plan"


def plan_schema() -> MeshSchema:
    return MeshSchema(
        "doc",
        elements=[
            ElementType("doc", properties=[ChildProperty("children", ["paragraph"])]),
            ElementType("paragraph", properties=[ChildProperty("children", [])], rich_text=True),
        ],
    )


async def meshroom(*args: str) -> anyio.abc.Process:
    with anyio.fail_after(60):
        return await anyio.run_process(
            [sys.executable, "-c", "from meshroom.cli import main; main()", *args], check=False
        )


async def test_agent_command_edits_and_prints_progress(live_server, tmp_path):
    schema = plan_schema()
    schema_file = tmp_path / "schema.json"
    schema_file.write_text(json.dumps(schema.to_dict()))
    rules = tmp_path / "rules.md"
    rules.write_text("Write in plain English.")
    paragraph = {
        "paragraph": {
            "$id": None,
            "children": [{"$text": [{"insert": "Risks: none.", "marks": []}]}],
        }
    }
    script = [
        tool_calls(call("read_document", path=PATH, format="outline")),
        tool_calls(
            call(
                "insert_elements",
                path=PATH,
                position="last_child",
                target_id=None,
                elements=[paragraph],
            )
        ),
        reply("Added a risks line."),
    ]
    async with (
        RoomClient(live_server.base_url, "team", name="Ann") as ann,
        ScriptedLLMServer(script) as llm,
    ):
        document = await ann.open(PATH, schema)
        document.root.append_child("paragraph").text.insert(0, "Plan: ship.")
        done = await meshroom(
            "agent",
            "--url",
            live_server.base_url,
            "--room",
            "team",
            "--document",
            PATH,
            "--rules",
            str(rules),
            "--schema",
            str(schema_file),
            "--model",
            "scripted",
            "--base-url",
            llm.base_url,
            "--api-key",
            "test",
            "--name",
            "Scribe",
            "Add a risks line",
        )
        stderr = done.stderr.decode()
        assert done.returncode == 0, stderr
        assert done.stdout.decode() == "Added a risks line.\n"
        assert '→ read_document(path="notes/plan", format="outline")' in stderr
        assert "✓ [" in stderr  # the outline came back
        assert "→ insert_elements(" in stderr and '✓ {"inserted":["' in stderr
        with anyio.fail_after(5):
            await ann.wait_for(lambda: len(document.root.get_children()) == 2)
        assert [str(p.text) for p in document.root.get_children()] == [
            "Plan: ship.",
            "Risks: none.",
        ]
        # the model got the rules, the document and the instruction
        first = llm.requests[0].messages
        assert "Write in plain English." in first[0]["content"] and "Scribe" in first[0]["content"]
        assert first[1]["content"] == "Document: notes/plan\n\nAdd a risks line"


async def test_agent_command_limits_and_bad_options(live_server):
    async with ScriptedLLMServer(itertools.repeat(tool_calls(call("list_participants")))) as llm:
        done = await meshroom(
            "agent",
            "--url",
            live_server.base_url,
            "--room",
            "team",
            "--model",
            "m",
            "--base-url",
            llm.base_url,
            "--max-steps",
            "2",
            "--quiet",
            "loop forever",
        )
        assert done.returncode == 1
        assert (
            done.stdout == b""
            and done.stderr.decode().strip() == "stopped: step_limit after 2 steps"
        )
    bad = await meshroom(
        "agent",
        "--url",
        live_server.base_url,
        "--room",
        "team",
        "--model",
        "m",
        "--api",
        "soap",
        "x",
    )
    assert bad.returncode == 2 and "chat, responses or auto" in bad.stderr.decode()
    unreachable = await meshroom(
        "agent",
        "--url",
        "ws://127.0.0.1:9",
        "--room",
        "team",
        "--model",
        "m",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "hello",
    )
    assert unreachable.returncode == 3 and "failed:" in unreachable.stderr.decode()
