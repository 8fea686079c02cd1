"""`RoomClient(token=...)` against `JwtAuth`: identity from the token, read-only enforced."""

from __future__ import annotations

import anyio
import pytest
from conftest import run_server
from pycrdt import Text
from test_auth_peer import SECRET

from meshroom import ClientError, CloseCode, Limits, RoomClient
from meshroom.auth import Grant, JwtAuth, mint_token

pytestmark = pytest.mark.anyio


def _token(pid: str, name: str, *, read_only: bool = False, room: str = "team") -> str:
    grant = Grant(room, ["notes/*"], read_only=read_only)
    return mint_token(secret=SECRET, grants=[grant], participant_id=pid, name=name, kind="agent")


async def test_room_client_identity_and_read_only_from_the_token():
    limits = Limits(read_only_violations=3)
    async with (
        run_server(extensions=[JwtAuth(SECRET)], limits=limits) as live,
        RoomClient(live.base_url, "team", token=_token("ann", "Ann")) as ann,
        RoomClient(
            live.base_url,
            "team",
            name="Forged",
            id="root",
            token=_token("bob", "Bob", read_only=True),
        ) as bob,
    ):
        ann_doc = await ann.open_ydoc("notes/a.md")
        bob_doc = await bob.open_ydoc("notes/a.md")
        ann_doc.get("t", type=Text).insert(0, "by ann")
        with anyio.fail_after(10):
            await bob.wait_for(lambda: str(bob_doc.get("t", type=Text)) == "by ann")
            await ann.wait_for(lambda: "bob" in ann.participants)
        assert ann.participants["bob"]["name"] == "Bob"
        assert ann.participants["bob"]["kind"] == "agent"
        assert "root" not in ann.participants
        # Bob's edits never reach the server nor Ann; repeated, they get Bob disconnected.
        for index in range(5):
            bob_doc.get("t", type=Text).insert(0, f"bob{index} ")
            await anyio.sleep(0.05)
        with pytest.raises(ClientError) as info, anyio.fail_after(10):
            await bob.wait_for(lambda: False)
        assert info.value.code == CloseCode.READ_ONLY_VIOLATION
        server_doc = live.server.room("team").documents["notes/a.md"].doc
        assert str(server_doc.get("t", type=Text)) == "by ann"
        assert str(ann_doc.get("t", type=Text)) == "by ann"


@pytest.mark.parametrize(
    ("token", "code"),
    [
        ("junk", CloseCode.UNAUTHENTICATED),
        (_token("eve", "Eve", room="other"), CloseCode.FORBIDDEN),
    ],
)
async def test_room_client_refused(token, code):
    async with run_server(extensions=[JwtAuth(SECRET)]) as live:
        with pytest.raises(ClientError) as info, anyio.fail_after(15):
            async with RoomClient(live.base_url, "team", token=token, connect_timeout=5):
                pass
        assert info.value.code == code
        assert "junk" not in str(info.value)
