"""`meshroom mcp` under grants and failures: read-only tokens, a dead room, a refused token.

A real meshroom server with `JwtAuth`, `meshroom mcp` as a subprocess, the official
`mcp` client. Read-only is the server's word (the scope of its "authenticated"
message), so the MCP session lists what it may do and says why it may not write.
"""

from __future__ import annotations

import subprocess
import sys

import anyio
import pytest
from _mcp_helpers import ROOT, mcp_args, mcp_stdio, text_of
from conftest import free_port, run_server
from mcp import Client

from meshroom import RoomClient
from meshroom.agents.toolkits import documents_toolkit
from meshroom.auth import Grant, JwtAuth, mint_token

pytestmark = pytest.mark.anyio

SECRET = "an-mcp-test-secret-0123456789abcdef"
ROOM = "lab"
WRITE_TOOLS = sorted(item.name for item in documents_toolkit() if not item.read_only)


def token(*grants: Grant, name: str = "Reader") -> str:
    return mint_token(
        secret=SECRET, grants=list(grants), participant_id=name.lower(), name=name, kind="agent"
    )


async def test_a_read_only_session_lists_read_tools_and_a_write_is_a_tool_error() -> None:
    async with run_server(extensions=[JwtAuth(SECRET)]) as live:
        url = live.base_url
        ann_token = token(Grant(ROOM), name="Ann")
        async with RoomClient(url, ROOM, token=ann_token) as ann:
            document = await ann.open("notes/plan")
            document.root.append_child("paragraph").append_text("Only Ann writes.")
            reader = token(Grant(ROOM, read_only=True))
            with anyio.fail_after(60):
                async with Client(mcp_stdio(url, ROOM, "--token", reader)) as client:
                    names = {item.name for item in (await client.list_tools()).tools}
                    assert not names & set(WRITE_TOOLS)
                    assert {"read_document", "list_documents", "send_message"} <= names
                    read = await client.call_tool("read_document", {"path": "notes/plan"})
                    assert "Only Ann writes." in text_of(read)
                    refused = await client.call_tool(
                        "insert_markdown",
                        {
                            "path": "notes/plan",
                            "position": "last_child",
                            "target_id": None,
                            "markdown": "Sneaked in.",
                        },
                    )
                    assert refused.is_error
                    assert "read-only access" in text_of(refused)
                    assert "nothing was written" in text_of(refused)
            assert "Sneaked in." not in str(document.to_json())

            # Read-write for notes/*, read-only elsewhere: write tools are listed, and
            # a write outside notes/ is refused with the server's scope for that document.
            mixed = token(Grant(ROOM, ["notes/*"]), Grant(ROOM, read_only=True), name="Mixed")
            budget = await ann.open("budget")
            budget.root.append_child("paragraph").append_text("42")
            with anyio.fail_after(60):
                async with Client(mcp_stdio(url, ROOM, "--token", mixed)) as client:
                    names = {item.name for item in (await client.list_tools()).tools}
                    assert set(WRITE_TOOLS) <= names
                    markdown = {"position": "last_child", "target_id": None, "markdown": "Hi."}
                    done = await client.call_tool(
                        "insert_markdown", {"path": "notes/plan", **markdown}
                    )
                    assert not done.is_error, text_of(done)
                    refused = await client.call_tool(
                        "insert_markdown", {"path": "budget", **markdown}
                    )
                    assert refused.is_error and "read-only access to 'budget'" in text_of(refused)
            await ann.wait_for(lambda: "Hi." in str(document.to_json()))
            assert "Hi." not in str(budget.to_json())


def run_mcp(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


async def test_a_dead_room_fails_at_once_with_one_line() -> None:
    dead = f"ws://127.0.0.1:{free_port()}"
    done = await anyio.to_thread.run_sync(
        lambda: run_mcp(*mcp_args(dead, ROOM, "--connect-timeout", "1"))
    )
    assert done.returncode == 3
    assert done.stdout == ""  # nothing on the protocol's stream
    assert done.stderr.strip().splitlines() == [
        f"meshroom mcp: cannot connect to {dead} within 1 s"
    ]
    # An MCP client that starts it gets an error rather than a server that never answers.
    with anyio.fail_after(30), pytest.raises(Exception):  # noqa: B017 - the SDK's own error
        async with Client(mcp_stdio(dead, ROOM, "--connect-timeout", "1")) as client:
            await client.list_tools()


async def test_a_refused_token_fails_with_one_line_and_the_room_is_unaffected() -> None:
    async with run_server(extensions=[JwtAuth(SECRET)]) as live:
        url = live.base_url
        async with RoomClient(url, ROOM, token=token(Grant(ROOM), name="Ann")) as ann:
            forged = mint_token(
                secret="another-secret-0123456789abcdefghij", grants=[Grant(ROOM)], name="X"
            )
            for given, why in ((forged, "4401"), (token(Grant("elsewhere")), "4403")):
                done = await anyio.to_thread.run_sync(
                    lambda given=given: run_mcp(*mcp_args(url, ROOM, "--token", given))
                )
                lines = done.stderr.strip().splitlines()
                assert done.returncode == 3 and len(lines) == 1, done.stderr
                assert lines[0].startswith("meshroom mcp: ") and why in lines[0]
            assert sorted(p["name"] for p in ann.participants.values()) == ["Ann"]
            document = await ann.open("notes/plan")
            document.root.append_child("paragraph").append_text("still fine")
