"""A real Node y-websocket client (`WebsocketProvider`, token in `params`) against auth."""

from __future__ import annotations

import pytest
from conftest import eventually, run_server
from pycrdt import Text
from test_auth_peer import SECRET, open_peer, run_node

from meshroom import CloseCode
from meshroom.auth import Grant, JwtAuth, mint_token

pytestmark = [pytest.mark.anyio, pytest.mark.interop]


def _token(read_only: bool, pid: str, name: str = "", secret: str = SECRET) -> str:
    grant = Grant("team", ["notes/*"], read_only=read_only)
    return mint_token(secret=secret, grants=[grant], participant_id=pid, name=name)


async def test_read_only_node_client_cannot_write_but_reads_and_shows_presence():
    async with (
        run_server(extensions=[JwtAuth(SECRET)]) as live,
        open_peer(live.base_url, "team", "notes/a.md", _token(False, "w")) as writer,
    ):
        await writer.write("from python")
        report = await run_node(
            "auth_peer.mjs",
            {
                "url": live.base_url,
                "room": "team/notes/a.md",
                "token": _token(True, "viewer", "Viewer"),
                "write": " EVIL",
                "waitMs": 1500,
            },
        )
        assert report["synced"] and report["writeAttempted"]
        # The Node client's own copy holds its local edit; nobody else does.
        assert report["text"] == "from python EVIL"
        doc = live.server.room("team").documents["notes/a.md"].doc
        assert str(doc.get("t", type=Text)) == "from python"
        assert str(writer.text) == "from python"
        # Its awareness was relayed (readers can show cursors), then removed on leave.
        assert any(
            state and state.get("user", {}).get("claimedId") == "forged-id"
            for state in writer.awareness_seen
        )
        # One stray write is dropped, not punished with a disconnect.
        assert report["closes"] == []
        async with open_peer(live.base_url, "team", "notes/a.md", _token(True, "r2")) as late:
            await eventually(lambda: str(late.text) == "from python")


@pytest.mark.parametrize(
    ("token", "code"),
    [
        (None, CloseCode.UNAUTHENTICATED),
        ("not-a-jwt", CloseCode.UNAUTHENTICATED),
        (_token(False, "x", secret="y" * 40), CloseCode.UNAUTHENTICATED),
        (mint_token(secret=SECRET, grants=[Grant("other")]), CloseCode.FORBIDDEN),
    ],
    ids=["missing", "garbage", "bad-signature", "wrong-room"],
)
async def test_bad_token_refused_with_documented_close_code(token, code):
    from meshroom import Limits

    async with run_server(extensions=[JwtAuth(SECRET)], limits=Limits(auth_timeout=1)) as live:
        async with open_peer(live.base_url, "team", "notes/a.md", _token(False, "w")) as writer:
            await writer.write("private")
            report = await run_node(
                "auth_peer.mjs",
                {"url": live.base_url, "room": "team/notes/a.md", "token": token, "write": "x"},
            )
        assert not report["synced"]
        assert report["text"] == ""
        # 44xx codes are terminal for y-websocket 3: it does not retry.
        assert [close["code"] for close in report["closes"]] == [code]
        assert report["closes"][0]["reason"]
