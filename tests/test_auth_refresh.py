"""Token refresh on a live connection, and expiry of connections whose token was not refreshed.

Real servers over real sockets: both transports (meshroom's own push protocol, as
`meshroom serve` runs it, and plain ASGI under uvicorn's), `RoomClient` for the
honest client and raw peers for hostile input. Each test checks what the client
got and what the server's session holds.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest
from conftest import LiveServer, eventually, run_server, serve_app
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Text
from test_auth_peer import SECRET, auth_message, open_peer, var_bytes

from meshroom import ClientError, CloseCode, RoomClient, Server, create_app
from meshroom.auth import Grant, JwtAuth, mint_token

pytestmark = pytest.mark.anyio


def token(
    pid: str = "ann", *, expires_in: float = 3600, read_only: bool = False, room: str = "team"
) -> str:
    grant = Grant(room, ["*"], read_only=read_only)
    return mint_token(secret=SECRET, grants=[grant], participant_id=pid, expires_in=expires_in)


@asynccontextmanager
async def serve(transport: str, auth: JwtAuth) -> AsyncIterator[LiveServer]:
    if transport == "push":
        async with run_server(extensions=[auth]) as live:
            yield live
    else:  # the plain ASGI path: a session with reader and writer tasks
        server = Server(extensions=[auth], grace_period=0.2)
        async with serve_app(create_app(server)) as port:
            yield LiveServer(server, port)


def server_text(live: LiveServer, path: str) -> str | None:
    room = live.server.room("team")
    document = room.documents.get(path) if room is not None else None
    return None if document is None else str(document.doc.get("t", type=Text))


def sessions(live: LiveServer, pid: str) -> list:
    room = live.server.room("team")
    if room is None:
        return []
    return [session for session in room.sessions if session.access.participant_id == pid]


@pytest.mark.parametrize("transport", ["push", "asgi"])
async def test_refresh_keeps_the_connection_past_the_old_tokens_expiry(transport):
    async with (
        serve(transport, JwtAuth(SECRET, leeway=0)) as live,
        RoomClient(live.base_url, "team", token=token(expires_in=1.5)) as ann,
        RoomClient(live.base_url, "team", token=token("bob", expires_in=1.5)) as bob,
    ):
        text = (await ann.open_ydoc("a.md")).get("t", type=Text)
        await bob.open_ydoc("a.md")
        await eventually(lambda: len(sessions(live, "ann")) == 2)
        await ann.refresh_token(token(expires_in=60))
        for session in sessions(live, "ann"):  # both sockets: room document and a.md
            assert session.access.expires_at == pytest.approx(time.time() + 60, abs=5)
        # bob did not refresh: his sockets close at his token's expiry
        with pytest.raises(ClientError) as refused, anyio.fail_after(5):
            await bob.wait_for(lambda: False)
        assert refused.value.code == CloseCode.UNAUTHENTICATED
        assert refused.value.reason == "token expired"
        await anyio.sleep(0.5)  # well past ann's first token's expiry
        assert ann.connected and ann.connections("a.md") == 1  # same socket, no reconnect
        text.insert(0, "after expiry")
        await eventually(lambda: server_text(live, "a.md") == "after expiry")


async def test_refresh_changes_read_only_and_reconnections_use_the_new_token():
    async with (
        run_server(extensions=[JwtAuth(SECRET)]) as live,
        RoomClient(live.base_url, "team", token=token()) as ann,
    ):
        text = (await ann.open_ydoc("a.md")).get("t", type=Text)
        text.insert(0, "written")
        await eventually(lambda: server_text(live, "a.md") == "written")
        await ann.refresh_token(token(read_only=True))
        assert all(session.access.read_only for session in sessions(live, "ann"))
        text.insert(0, "dropped ")
        await anyio.sleep(0.3)
        assert server_text(live, "a.md") == "written"
        # a reconnection presents the refreshed token (read-only too)
        for session in sessions(live, "ann"):
            session.kill(CloseCode.GOING_AWAY, "restart")
        await eventually(lambda: ann.connections("a.md") == 2 and ann.connected)
        assert all(session.access.read_only for session in sessions(live, "ann"))


@pytest.mark.parametrize(
    ("make", "code", "reason"),
    [
        (lambda: token("mallory"), CloseCode.FORBIDDEN, "another participant"),
        (lambda: token(room="elsewhere"), CloseCode.FORBIDDEN, "no access"),
        (lambda: "not-a-jwt", CloseCode.UNAUTHENTICATED, "malformed token"),
    ],
    ids=["another sub", "no grant", "garbage"],
)
async def test_a_refused_refresh_closes_the_connection(make, code, reason):
    async with (
        run_server(extensions=[JwtAuth(SECRET)]) as live,
        RoomClient(live.base_url, "team", token=token()) as ann,
        RoomClient(live.base_url, "team", token=token("bob")) as bob,
    ):
        await ann.open_ydoc("a.md")
        with pytest.raises(ClientError) as refused, anyio.fail_after(10):
            await ann.refresh_token(make())
        assert refused.value.code == code
        assert reason in refused.value.reason
        assert refused.value.reason.startswith("token refresh refused: ")
        await eventually(lambda: not sessions(live, "ann"))
        assert sessions(live, "bob") and bob.connected
        with pytest.raises(ClientError):
            await ann.open_ydoc("b.md")  # the client reports the refusal from now on


async def test_a_revoked_token_cannot_be_refreshed_to():
    auth = JwtAuth(SECRET)
    async with run_server(extensions=[auth]) as live:
        async with RoomClient(live.base_url, "team", token=token()) as ann:
            auth.revoke(participant="ann")  # closes ann's connection too
            with pytest.raises(ClientError) as refused, anyio.fail_after(10):
                await ann.wait_for(lambda: False)
            assert refused.value.reason == "token revoked"
        await anyio.sleep(0.01)  # `iat` counts milliseconds: one issued in the same one is revoked
        async with RoomClient(live.base_url, "team", token=token()) as ann:
            revoked = mint_token(
                secret=SECRET, grants=[Grant("team")], participant_id="ann", now=time.time() - 60
            )
            with pytest.raises(ClientError) as refused, anyio.fail_after(10):
                await ann.refresh_token(revoked)  # issued before the revocation
            assert refused.value.code == CloseCode.UNAUTHENTICATED
            assert "token revoked" in refused.value.reason


async def test_raw_refresh_is_answered_with_authenticated_again():
    async with (
        run_server(extensions=[JwtAuth(SECRET)]) as live,
        open_peer(live.base_url, "team", "a.md", token()) as peer,
    ):
        assert peer.types.count(2) == 1  # the greeting, first on every session
        assert peer.types[0] == 2
        for _ in range(3):
            await peer.send(auth_message(token()))
        await eventually(lambda: peer.types.count(2) == 4)
        # more tokens at once than the server keeps waiting: that connection closes
        for _ in range(20):
            await peer.send(auth_message(token()))
        assert await peer.wait_closed() == CloseCode.RATE_LIMITED


MALFORMED = [
    b"\x02",  # no token at all
    b"\x02\x05ab",  # a token shorter than its length says
    b"\x02\x02\xff\xfe",  # not UTF-8
    b"\x02\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # a length that overflows
]


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def live():
    async with run_server(extensions=[JwtAuth(SECRET)]) as server:
        yield server


@pytest.mark.parametrize("message", MALFORMED, ids=["empty", "truncated", "utf8", "overflow"])
async def test_a_malformed_auth_message_closes_only_that_connection(live, message):
    async with (
        open_peer(live.base_url, "team", "m.md", token("bystander")) as bystander,
        open_peer(live.base_url, "team", "m.md", token("hostile")) as hostile,
    ):
        await hostile.send(message)
        assert await hostile.wait_closed() == CloseCode.PROTOCOL_ERROR
        assert hostile.close_reason
        await bystander.write("fine")
        await bystander.barrier()
        assert not bystander.closed.is_set()


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(body=st.binary(max_size=64))
async def test_any_auth_message_closes_at_most_its_own_connection(live, body):
    async with (
        open_peer(live.base_url, "team", "p.md", token("bystander")) as bystander,
        open_peer(live.base_url, "team", "p.md", token("hostile")) as hostile,
    ):
        await hostile.send(b"\x02" + body)
        await hostile.send(b"\x02" + var_bytes(b"x" * 10))  # a garbage token, well formed
        code = await hostile.wait_closed()
        assert code in (CloseCode.PROTOCOL_ERROR, CloseCode.UNAUTHENTICATED), code
        await bystander.barrier()
        assert not bystander.closed.is_set()
