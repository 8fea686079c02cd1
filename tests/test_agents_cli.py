"""`meshroom agent` as a subprocess against a live server and the scripted model server."""

from __future__ import annotations

import functools
import itertools
import json
import os
import sys
import time

import anyio
import pytest
from conftest import free_port, start_meshroom_serve

from meshdoc import ChildProperty, ElementType, MeshSchema
from meshdoc.markdown import to_markdown
from meshroom import RoomClient
from meshroom.testing import ScriptedLLMServer, call, fail, reply, tool_calls

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


async def meshroom(*args: str, env: dict[str, str] | None = None) -> anyio.abc.Process:
    with anyio.fail_after(60):
        return await anyio.run_process(
            [sys.executable, "-c", "from meshroom.cli import main; main()", *args],
            check=False,
            env=env,
        )


def error_line(done: anyio.abc.Process) -> str:
    """The one stderr line of a failed run (fails the test on anything else)."""
    stderr = done.stderr.decode()
    assert done.returncode != 0, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


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
        usage = stderr.strip().splitlines()[-1]  # what the answer cost, last
        assert usage.startswith("model ") and "tokens in " in usage and ", out " in usage
        assert int(usage.split("tokens in ")[1].split(",")[0]) > 0
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
    no_model = await meshroom("agent", "--url", live_server.base_url, "--room", "team", "x")
    assert no_model.returncode == 2 and "give --model" in error_line(no_model)


def write_script(path, steps) -> str:
    path.write_text(json.dumps(steps))
    return str(path)


async def test_script_runs_an_agent_offline_against_meshroom_serve(tmp_path):
    """`--script`: no model, no key; a real `meshroom serve`; the edit is read back."""
    steps = [
        {
            "tool_calls": [
                {
                    "name": "insert_markdown",
                    "arguments": {
                        "path": PATH,
                        "position": "last_child",
                        "target_id": None,
                        "markdown": "Risks: **none** yet.",
                    },
                }
            ]
        },
        {"reply": "Added a risks line."},
    ]
    script = write_script(tmp_path / "steps.json", steps)
    port = free_port()
    server = start_meshroom_serve(port)  # no auth, no --dev
    url = f"ws://127.0.0.1:{port}"
    try:
        env = {key: value for key, value in os.environ.items() if not key.startswith("OPENAI_")}
        done = await meshroom(
            "agent", "--url", url, "--room", "team", "--script", script, "Add a risks line",
            env=env,
        )  # fmt: skip
        stderr = done.stderr.decode()
        assert done.returncode == 0, stderr
        assert done.stdout.decode() == "Added a risks line.\n"
        assert '→ insert_markdown(path="notes/plan"' in stderr and '✓ {"inserted":["' in stderr
        async with RoomClient(url, "team", name="Reader") as reader:
            document = await reader.open(PATH)
            assert to_markdown(document) == "Risks: **none** yet.\n"
    finally:
        server.terminate()
        server.wait(30)


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([{"tool_calls": [{"name": "list_participants"}]}], "there is no reply"),
        ([{"reply": "early"}, {"reply": "late"}], "step 1 is a reply"),
        ([{"tool_calls": []}, {"reply": "x"}], 'step 1: "tool_calls" must be a non-empty list'),
        ([{"say": "x"}], "step 1: a step is an object with one of tool_calls, reply, fail"),
        ({"reply": "x"}, "a script is a non-empty JSON list of steps"),
    ],
)
async def test_bad_script_files_are_one_line(live_server, tmp_path, steps, expected):
    script = write_script(tmp_path / "steps.json", steps)
    done = await meshroom(
        "agent", "--url", live_server.base_url, "--room", "team", "--script", script, "x"
    )
    assert done.returncode == 2
    line = error_line(done)
    assert line.startswith("meshroom agent: Invalid value for --script: ") and expected in line


async def test_script_file_that_is_not_json_and_script_with_base_url(live_server, tmp_path):
    broken = tmp_path / "steps.json"
    broken.write_text("[{")
    done = await meshroom(
        "agent", "--url", live_server.base_url, "--room", "team", "--script", str(broken), "x"
    )
    assert done.returncode == 2 and f"{broken} is not JSON" in error_line(done)
    script = write_script(tmp_path / "ok.json", [{"reply": "x"}])
    both = await meshroom(
        "agent", "--url", live_server.base_url, "--room", "team", "--script", script,
        "--base-url", "http://127.0.0.1:9/v1", "x",
    )  # fmt: skip
    assert both.returncode == 2 and "drop --base-url" in error_line(both)


async def test_model_failures_name_the_url_the_status_and_the_message(live_server):
    """No more "unhandled errors in a TaskGroup": the line says what failed."""
    base = ("agent", "--url", live_server.base_url, "--room", "team", "--model", "m")
    dead_endpoint = f"http://127.0.0.1:{free_port()}/v1"
    results = {}

    async def run(key, *args, env=None):
        results[key] = await meshroom(*base, *args, "hello", env=env)

    no_openai = {key: value for key, value in os.environ.items() if not key.startswith("OPENAI_")}
    script = [fail(503, "warming up", retry_after=0.01), fail(400, "model 'm' does not exist")]
    async with ScriptedLLMServer(script) as llm, anyio.create_task_group() as group:
        endpoint = llm.base_url
        group.start_soon(run, "refused", "--base-url", endpoint)
        group.start_soon(run, "down", "--base-url", dead_endpoint, "--quiet")  # ~8 s of retries
        group.start_soon(functools.partial(run, "no key", env=no_openai))

    refused = results["refused"]
    assert refused.returncode == 3
    *retries, last = refused.stderr.decode().strip().splitlines()
    assert retries == [
        f"model error, retry 1 in 0.0s: model endpoint {endpoint}/chat/completions "
        "answered 503: warming up"
    ]
    assert last == (
        f"meshroom agent: model endpoint {endpoint}/chat/completions answered 400: "
        "model 'm' does not exist"
    )
    down = results["down"]
    assert down.returncode == 3
    line = error_line(down)
    assert line.startswith(f"meshroom agent: model endpoint {dead_endpoint}/chat/completions: ")
    assert "Connection error" in line and line.endswith("(gave up after 5 attempts)")
    no_key = results["no key"]
    assert no_key.returncode == 2
    assert error_line(no_key) == (
        "meshroom agent: no API key for https://api.openai.com/v1: pass one (--api-key) or set "
        "OPENAI_API_KEY, or give the base URL of a local server"
    )


async def test_tool_errors_are_printed_whole(live_server):
    """A failed call's error is shown in full (it used to be cut at 120 characters)."""
    script = [tool_calls(call("no_such_tool", reason="x" * 50)), reply("done")]
    async with ScriptedLLMServer(script) as llm:
        done = await meshroom(
            "agent", "--url", live_server.base_url, "--room", "team", "--model", "m",
            "--base-url", llm.base_url, "try a tool that is not there",
        )  # fmt: skip
    stderr = done.stderr.decode()
    assert done.returncode == 0, stderr
    (failed,) = [line for line in stderr.splitlines() if line.startswith("  ✗ ")]
    assert len(failed) > 120 and "…" not in failed
    error = json.loads(failed.removeprefix("  ✗ "))
    assert error["error"] == "unknown tool 'no_such_tool'"
    assert {"insert_markdown", "send_message"} <= set(error["details"]["available"])


async def test_dead_server_fails_within_the_connect_timeout(tmp_path):
    """A dead URL is reported within --connect-timeout (+2 s), not one backoff later."""
    script = write_script(tmp_path / "steps.json", [{"reply": "never"}])
    dead = f"ws://127.0.0.1:{free_port()}"
    started = time.monotonic()
    done = await meshroom(
        "agent", "--url", dead, "--room", "team", "--script", script, "--connect-timeout", "3",
        "hello",
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert done.returncode == 3
    assert error_line(done) == f"meshroom agent: cannot connect to {dead} within 3 s"
    assert elapsed < 3 + 2, elapsed
