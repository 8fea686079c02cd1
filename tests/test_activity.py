"""The activity log: each room session's events, written through storage and read back.

A real server over real sockets, real `RoomClient`s and an agent driven by the scripted
model server; logs go to a real folder (or memory) through `FsspecStorage`, and are read
back with `ActivityLog`, over ``GET /rooms/{room}/activity`` and with ``meshroom log``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import httpx
import pycrdt
import pytest
from conftest import ROOT, eventually, run_server, serve_app

from meshroom import ClientError, RoomClient, Server, create_app
from meshroom.activity import ActivityExtension, ActivityLog, activity_route
from meshroom.agents import Agent, OpenAILLM
from meshroom.agents.toolkits import room_toolkit
from meshroom.auth import Grant, JwtAuth, mint_token
from meshroom.storage import FsspecStorage, StorageExtension
from meshroom.testing import ScriptedLLMServer, call, reply, tool_calls
from meshroom.transport import uvicorn_websocket

pytestmark = pytest.mark.anyio

SECRET = "activity-test-secret-0123456789abcdef"


def types(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]


async def closed(live: Any, room: str = "team") -> None:
    await eventually(lambda: room not in live.server.room_names())


async def settled(server: Server, activity: ActivityExtension) -> None:
    """Every event recorded so far went to the hooks and was written."""
    await server.activity.drain()
    await activity.flush()


async def test_a_session_logs_joins_documents_saves_and_its_end(tmp_path: Path) -> None:
    storage = FsspecStorage(str(tmp_path))
    activity = ActivityExtension(storage, flush_interval=0.01)
    async with run_server(extensions=[StorageExtension(storage), activity]) as live:
        async with RoomClient(live.base_url, "team", name="Ann", id="ann") as ann:
            doc = await ann.open_ydoc("notes/plan")
            doc.get("t", type=pycrdt.Text).insert(0, "secret plans")
        await closed(live)
        await settled(live.server, activity)
        log = ActivityLog(storage)
        (first,) = await log.sessions("team")
        events = await log.events("team")
        assert types(events) == [
            "room.opened",
            "participant.joined",
            "document.created",
            "participant.left",
            "document.saved",
            "document.closed",
            "room.closed",
        ]
        joined = events[1]
        assert joined["participant"] == "ann" and joined["name"] == "Ann"
        assert joined["kind"] == "person" and joined["process"].endswith(f":{os.getpid()}")
        saved = events[4]
        assert saved["path"] == "notes/plan" and saved["bytes"] > 12 and saved["ms"] >= 0
        assert all(event["session"] == first and event["room"] == "team" for event in events)
        # beside the room's documents, and never their contents
        folder = tmp_path / "team" / "activity" / first
        data = b"".join(path.read_bytes() for path in folder.iterdir())
        assert b"participant.joined" in data and b"secret plans" not in data

        # a room opened again is a new session; the old one is kept
        async with RoomClient(live.base_url, "team", name="Ann", id="ann") as ann:
            await ann.open_ydoc("notes/plan")
            await eventually(lambda: "team" in live.server.room_names())
        await closed(live)
        await settled(live.server, activity)
        sessions = await log.sessions("team")
        assert len(sessions) == 2 and sessions[0] == first
        assert "document.opened" in types(await log.events("team", sessions[1]))


async def test_questions_to_agents_and_their_runs(tmp_path: Path) -> None:
    plain = FsspecStorage(str(tmp_path / "plain"))
    detailed = FsspecStorage(str(tmp_path / "detailed"))
    logs = [
        ActivityExtension(plain, flush_interval=0.01),
        ActivityExtension(detailed, flush_interval=0.01, tool_details=True),
    ]
    script = [
        tool_calls(call("list_participants")),
        reply("Ann and I are here."),
    ]
    async with (
        run_server(extensions=logs) as live,
        ScriptedLLMServer(script) as llm_server,
        OpenAILLM("scripted", base_url=llm_server.base_url) as llm,
        RoomClient(live.base_url, "team", name="Ann", id="ann") as ann,
    ):
        agent = Agent("Editor", toolkits=[room_toolkit()], llm=llm, participant_id="editor")
        async with agent.connect(live.base_url, "team"):
            await ann.wait_for(lambda: "editor" in ann.participants)
            await ann.send_message("lunch anyone?")  # not for an agent: not logged
            await ann.send_message("who is here?", to="editor")
            await ann.wait_for(
                lambda: any(m.get("text") == "Ann and I are here." for m in ann.messages)
            )
        for extension in logs:
            await settled(live.server, extension)
        events = await ActivityLog(plain).events("team")
        asked = [event for event in events if event["type"] == "message.to_agent"]
        assert [(a["from"], a["to"], a["text"]) for a in asked] == [
            ("ann", "editor", "who is here?")
        ]
        (tool,) = [event for event in events if event["type"] == "agent.tool_call"]
        assert tool["agent"] == "editor" and tool["tool"] == "list_participants" and tool["ok"]
        assert tool["ms"] >= 0 and "summary" not in tool  # arguments only when asked
        (run,) = [event for event in events if event["type"] == "agent.run"]
        assert run["stop"] == "answer" and run["steps"] == 2 and run["tools"] == 1
        assert run["tokens"]["prompt_tokens"] > 0
        joined = [e for e in events if e["type"] == "participant.joined" and e["kind"] == "agent"]
        assert [e["participant"] for e in joined] == ["editor"]
        (detailed_tool,) = [
            event
            for event in await ActivityLog(detailed).events("team")
            if event["type"] == "agent.tool_call"
        ]
        assert detailed_tool["summary"].startswith("list_participants(")


def token(participant: str, *grants: Grant) -> str:
    return mint_token(secret=SECRET, grants=grants, participant_id=participant, name=participant)


async def test_refusals_are_logged_without_the_token(tmp_path: Path) -> None:
    storage = FsspecStorage(str(tmp_path))
    activity = ActivityExtension(storage, flush_interval=0.01)
    forged = mint_token(secret="another-secret-0123456789abcdefgh", grants=[Grant("team")])
    elsewhere = token("eve", Grant("other"))
    async with run_server(extensions=[JwtAuth(SECRET), activity]) as live:
        for bad in (forged, elsewhere):
            with pytest.raises(ClientError):  # refused: the client gives up
                async with RoomClient(live.base_url, "team", token=bad):
                    pass
        await settled(live.server, activity)
    events = await ActivityLog(storage).events("team")
    refusals = [event for event in events if event["type"] == "auth.refused"]
    assert [r["code"] for r in refusals] == [4401, 4403]
    assert all(r["path"] == "" and r["client"].startswith("127.0.0.1:") for r in refusals)
    data = b"".join(path.read_bytes() for path in (tmp_path / "team").rglob("*.alog"))
    assert forged.encode() not in data and elsewhere.encode() not in data
    assert b'"reason"' in data


async def test_the_activity_endpoint_answers_admins_only(tmp_path: Path) -> None:
    storage = FsspecStorage(str(tmp_path))
    activity = ActivityExtension(storage, flush_interval=0.01)
    server = Server(extensions=[JwtAuth(SECRET), activity], grace_period=0.1)
    app = create_app(server, extra_routes=[activity_route(server, ActivityLog(storage))])
    admin = token("ada", Grant("team", admin=True))
    member = token("ann", Grant("team"))
    other_admin = token("oz", Grant("other", admin=True))
    async with serve_app(app, ws=uvicorn_websocket(server)) as port:
        async with RoomClient(f"ws://127.0.0.1:{port}", "team", token=member) as ann:
            await ann.open_ydoc("notes")
        await settled(server, activity)
        url = f"http://127.0.0.1:{port}/rooms/team/activity"
        async with httpx.AsyncClient() as http:
            assert (await http.get(url)).status_code == 401
            assert (await http.get(url, params={"token": "not-a-jwt"})).status_code == 401
            answer = await http.get(url, headers={"Authorization": f"Bearer {member}"})
            assert answer.status_code == 403 and "admin grant" in answer.json()["error"]
            answer = await http.get(url, headers={"Authorization": f"Bearer {other_admin}"})
            assert answer.status_code == 403  # an admin elsewhere has no access here at all
            answer = await http.get(url, headers={"Authorization": f"Bearer {admin}"})
            assert answer.status_code == 200
            body = answer.json()
            assert body["sessions"] == [body["session"]]
            assert types(body["events"])[:2] == ["room.opened", "participant.joined"]
            later = await http.get(url, params={"token": admin, "after": str(body["next"])})
            assert later.json()["events"] == [] or later.json()["next"] > body["next"]
            missing = await http.get(url, params={"token": admin, "session": "nope"})
            assert missing.status_code == 404


class FullDisk(FsspecStorage):
    """A folder whose activity writes fail with ENOSPC while `full` (a disk full)."""

    full = False
    refused = 0

    async def append_activity(self, room: str, session: str, events: Sequence[bytes]) -> None:
        if self.full:
            self.refused += 1
            raise OSError(28, "No space left on device")
        await super().append_activity(room, session, events)


async def test_a_full_disk_drops_counted_events_and_never_blocks_editing(tmp_path: Path) -> None:
    store = FullDisk(str(tmp_path))
    store.full = True
    activity = ActivityExtension(store, flush_interval=0.01, max_buffered=4, retry=(0.01, 0.05))
    async with (
        run_server(extensions=[activity]) as live,
        RoomClient(live.base_url, "team", name="Ann", id="ann") as ann,
        RoomClient(live.base_url, "team", name="Bob", id="bob") as bob,
    ):
        mine, theirs = await ann.open_ydoc("doc"), await bob.open_ydoc("doc")
        for index in range(20):
            mine.get("t", type=pycrdt.Text).insert(0, f"{index} ")
        await eventually(lambda: str(theirs.get("t", type=pycrdt.Text)).startswith("19 "))
        async with RoomClient(live.base_url, "team", name="Cy", id="cy") as cy:
            await cy.open_ydoc("doc")
        await eventually(lambda: store.refused >= 2 and activity.dropped >= 1)
        assert activity.buffered == 4
        store.full = False
        await eventually(lambda: activity.buffered == 0)
        events = await ActivityLog(store).events("team")
        assert types(events)[:2] == ["room.opened", "participant.joined"]
        assert activity.written == 4 and len(events) == 4


async def test_retention_deletes_old_closed_sessions(tmp_path: Path) -> None:
    storage = FsspecStorage(str(tmp_path))
    await storage.append_activity("team", "20000101T000000Z-aaaaaa", [b'{"type":"room.opened"}'])
    recent = "29990101T000000Z-bbbbbb"
    await storage.append_activity("team", recent, [b'{"type":"room.opened"}'])
    activity = ActivityExtension(storage, retention=24 * 3600)
    async with run_server(extensions=[activity]):
        await eventually(
            lambda: not (tmp_path / "team" / "activity" / "20000101T000000Z-aaaaaa").exists()
        )
    assert await ActivityLog(storage).sessions("team") == [recent]


async def meshroom(*args: str) -> tuple[int, str, str]:
    with anyio.fail_after(60):
        done = await anyio.run_process(
            [sys.executable, "-m", "meshroom", *args], check=False, cwd=ROOT, env=dict(os.environ)
        )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def test_meshroom_log_reads_the_storage(tmp_path: Path) -> None:
    storage = FsspecStorage(str(tmp_path))
    activity = ActivityExtension(storage, flush_interval=0.01)
    async with run_server(extensions=[StorageExtension(storage), activity]) as live:
        async with RoomClient(live.base_url, "team", name="Ann", id="ann") as ann:
            await ann.open_ydoc("notes/plan")
        await closed(live)
        await settled(live.server, activity)
    (session,) = await ActivityLog(storage).sessions("team")
    code, out, err = await meshroom("log", "team", "--storage", str(tmp_path), "--json")
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert types(lines)[0] == "room.opened" and types(lines)[-1] == "room.closed"
    code, out, err = await meshroom("log", "team", "--storage", str(tmp_path))
    assert code == 0, err
    assert session in out and "participant.joined" in out and "Ann (ann, person)" in out
    assert (await meshroom("log", "team", "--storage", str(tmp_path), "--sessions"))[1] == (
        session + "\n"
    )
    code, _, err = await meshroom("log", "team", "--storage", str(tmp_path), "--session", "x")
    assert code == 2 and "no session 'x'" in err


async def test_meshroom_log_follow_prints_events_as_they_are_written(tmp_path: Path) -> None:
    storage = FsspecStorage(str(tmp_path))
    activity = ActivityExtension(storage, flush_interval=0.01)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    async with (
        run_server(extensions=[StorageExtension(storage), activity]) as live,
        RoomClient(live.base_url, "team", name="Ann", id="ann"),
    ):
        await settled(live.server, activity)
        follower = await anyio.open_process(
                [sys.executable, "-m", "meshroom", "log", "team", "--storage", str(tmp_path),
                 "--follow", "--json"],
                env=env,
            )  # fmt: skip
        seen: list[dict[str, Any]] = []
        try:
            assert follower.stdout is not None
            buffer = b""
            async with RoomClient(live.base_url, "team", name="Bob", id="bob"):
                with anyio.fail_after(20):
                    while not any(
                        e["type"] == "participant.joined" and e.get("participant") == "bob"
                        for e in seen
                    ):
                        buffer += await follower.stdout.receive()
                        *lines, buffer = buffer.split(b"\n")
                        seen += [json.loads(line) for line in lines if line.strip()]
        finally:
            follower.terminate()
            await follower.wait()
    assert types(seen)[0] == "room.opened"  # from the start of the session, then live
    assert any(e.get("participant") == "ann" for e in seen)


async def test_a_session_id_that_is_not_one_is_refused_by_name(tmp_path: Path) -> None:
    from meshroom import RoomNameError

    storage = FsspecStorage(str(tmp_path))
    for bad in ("../elsewhere", "", "a/b"):
        with pytest.raises(RoomNameError, match="is not a session id") as refused:
            await storage.read_activity("team", bad)
        assert refused.value.name == bad
