"""Posting room messages is its own permission: a read-only token may talk, a token
with ``messages: false`` may not, and tokens minted before the permission existed keep
their meaning. Real JWTs through `JwtAuth`, a real server, `RoomClient`s over sockets."""

from __future__ import annotations

import time

import anyio
import jwt
import pytest
from conftest import eventually, run_server
from test_auth_peer import SECRET

from meshroom import Limits, RoomClient
from meshroom.auth import Grant, JwtAuth, mint_token, verify_token

pytestmark = pytest.mark.anyio


def token(pid: str, **grant: object) -> str:
    return mint_token(secret=SECRET, grants=[Grant("team", **grant)], participant_id=pid)


def texts(client: RoomClient) -> list[str]:
    return [message.get("text") for message in client.messages]


def session_of(live, participant: str):
    room = live.server.room("team")
    return next(
        s for s in room.presence_document.sessions if s.access.participant_id == participant
    )


@pytest.fixture
async def live():
    limits = Limits(read_only_violations=10)
    async with run_server(extensions=[JwtAuth(SECRET)], limits=limits) as server:
        yield server


async def test_a_read_only_token_posts_messages_but_edits_nothing(live):
    async with (
        RoomClient(live.base_url, "team", token=token("writer")) as writer,
        RoomClient(live.base_url, "team", token=token("reader", read_only=True)) as reader,
    ):
        document = await writer.open("notes.md")
        document.root.append_child("paragraph").append_text("Agenda")
        await reader.send_message("can I join the call?")
        with anyio.fail_after(5):
            await writer.wait_for(lambda: texts(writer) == ["can I join the call?"])
        assert writer.messages[0]["from"] == "reader"
        assert session_of(live, "reader").violations == 0
        # The same token's write to a document is refused and never seen.
        copy = await reader.open("notes.md")
        with anyio.fail_after(5):
            await reader.wait_for(lambda: "Agenda" in copy.to_xml())
        copy.root.append_child("paragraph").append_text("Vandalism")
        live_doc = live.server.room("team").documents["notes.md"]
        reader_session = next(iter(s for s in live_doc.sessions if s.access.read_only))
        await eventually(lambda: reader_session.violations >= 1)
        await writer.send_message("marker")  # after the refused write, on the server
        with anyio.fail_after(5):
            await reader.wait_for(lambda: "marker" in texts(reader))
        assert "Vandalism" not in document.to_xml()


async def test_a_token_without_messages_cannot_post(live):
    muted = token("muted", messages=False)
    assert verify_token(muted, secret=SECRET).access_for("team", "").may_message is False
    async with (
        RoomClient(live.base_url, "team", token=token("ann")) as ann,
        RoomClient(live.base_url, "team", token=muted) as quiet,
    ):
        document = await quiet.open("draft.md")  # documents stay writable
        document.root.append_child("paragraph").append_text("mine")
        await quiet.send_message("let me speak")
        await eventually(lambda: session_of(live, "muted").violations >= 1)
        # repaired: gone from the sender's copy too, never in anyone's
        with anyio.fail_after(5):
            await quiet.wait_for(lambda: quiet.messages == [])
        await ann.send_message("after")
        with anyio.fail_after(5):
            await quiet.wait_for(lambda: texts(quiet) == ["after"])
        assert texts(ann) == ["after"]
        assert [m["text"] for m in live.server.room("team").presence.messages.to_py()] == ["after"]
        seen = await ann.open("draft.md")
        with anyio.fail_after(5):
            await ann.wait_for(lambda: "mine" in seen.to_xml())


async def test_a_grant_claim_without_permissions_keeps_its_meaning(live):
    claims = {
        "sub": "old-timer",
        "exp": int(time.time()) + 600,
        "grants": [{"room": "team", "paths": ["*"], "mode": "read-only"}],
    }
    old = jwt.encode(claims, SECRET, algorithm="HS256")
    access = verify_token(old, secret=SECRET).access_for("team", "")
    assert (
        access.read_only,
        access.may_message,
        access.may_offer_tools,
        access.may_call_tools,
    ) == (
        True,
        True,
        True,
        True,
    )
    async with (
        RoomClient(live.base_url, "team", token=token("ann")) as ann,
        RoomClient(live.base_url, "team", token=old) as veteran,
    ):
        await veteran.send_message("still here")
        with anyio.fail_after(5):
            await ann.wait_for(lambda: texts(ann) == ["still here"])
