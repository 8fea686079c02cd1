"""Auth end to end: refusals before any content, read-only enforced, identity from the token.

A real server (uvicorn, in this event loop) with `JwtAuth`, raw y-websocket
peers over real sockets. Each test checks both sides: what the refused or
read-only client got, and what the honest clients and the server hold.
"""

from __future__ import annotations

import logging
import time

import jwt
import pytest
from conftest import eventually, run_server
from pycrdt import Array, Map, Text
from test_auth_peer import OLD_SECRET, SECRET, awareness_message, open_peer, update_message

from meshroom import CloseCode, Limits
from meshroom.auth import Grant, JwtAuth, mint_token

pytestmark = pytest.mark.anyio

LIMITS = Limits(
    auth_timeout=1.0,
    read_only_violations=5,
    pre_auth_bytes=64 * 1024,
    max_message_size=256 * 1024,
)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def live():
    async with run_server(extensions=[JwtAuth([SECRET, OLD_SECRET])], limits=LIMITS) as server:
        yield server


def token(
    room: str = "team",
    paths: tuple[str, ...] = ("*",),
    *,
    read_only: bool = False,
    pid: str = "w",
    name: str = "",
    secret: str = SECRET,
    **options,
) -> str:
    grant = Grant(room, paths, read_only=read_only)
    return mint_token(
        secret=secret, grants=[grant], participant_id=pid, name=name or pid, **options
    )


def _expired() -> str:
    return token(now=time.time() - 7200, expires_in=60)


def _unsigned() -> str:
    claims = {"sub": "x", "exp": int(time.time()) + 60, "grants": [{"room": "team"}]}
    return jwt.encode(claims, None, algorithm="none")


# (case, token factory, room, path (the secret document when not ""), close code, reason)
REFUSALS = [
    ("garbage", lambda: "not-a-jwt", "team", "notes/a.md", 4401, "malformed token"),
    ("bad signature", lambda: token(secret="x" * 40), "team", "notes/a.md", 4401, "signature"),
    ("expired", _expired, "team", "notes/a.md", 4401, "token expired"),
    ("alg none", _unsigned, "team", "notes/a.md", 4401, "not accepted"),
    ("wrong room", lambda: token("other"), "team", "notes/a.md", 4403, "no access"),
    ("wrong path", lambda: token(paths=("drafts/*",)), "team", "notes/a.md", 4403, "no access"),
    ("room wrong", lambda: token("other"), "team", "", 4403, "no access"),
]


@pytest.mark.parametrize("via", ["query", "header", "message"])
@pytest.mark.parametrize(
    ("case", "make", "room", "path", "code", "reason"), REFUSALS, ids=[r[0] for r in REFUSALS]
)
async def test_refused_before_any_document_content(live, via, case, make, room, path, code, reason):
    secret_path = f"notes/{case.replace(' ', '-')}-{via}.md"
    async with open_peer(live.base_url, "team", secret_path, token()) as writer:
        await writer.write("confidential")
        path = secret_path if path else ""
        async with open_peer(live.base_url, room, path, make(), via=via, wait_sync=False) as peer:
            assert await peer.wait_closed() == code
            assert reason in peer.close_reason
            # Only the permission-denied AUTH message may arrive: no sync, no awareness.
            assert set(peer.types) <= {2}
            assert str(peer.text) == ""
        assert str(writer.text) == "confidential"


async def test_no_token_is_refused_at_once_without_content(live):
    started = time.monotonic()
    async with open_peer(live.base_url, "team", "notes/a.md", None, wait_sync=False) as peer:
        # The client opened with sync step 1, as y-websocket does: no token can follow.
        assert await peer.wait_closed() == CloseCode.UNAUTHENTICATED
        assert peer.close_reason.startswith("token required")
        assert set(peer.types) <= {2}
    assert time.monotonic() - started < 2


async def test_every_token_way_admits(live):
    async with open_peer(live.base_url, "team", "ways.md", token()) as writer:
        await writer.write("shared")
        for via in ("query", "header", "message"):
            async with open_peer(live.base_url, "team", "ways.md", token(pid=via), via=via) as peer:
                await eventually(lambda p=peer: str(p.text) == "shared")


async def test_key_rotation_old_and_new_secrets(live):
    for secret in (SECRET, OLD_SECRET):
        async with open_peer(live.base_url, "team", "rot.md", token(secret=secret)) as peer:
            assert peer.synced.is_set()


async def test_clock_skew_within_leeway_admitted(live):
    skewed = token(now=time.time() - 3600 - 10, expires_in=3600)  # expired 10 s ago
    async with open_peer(live.base_url, "team", "skew.md", skewed) as peer:
        assert peer.synced.is_set()


async def test_read_only_writes_never_applied_nor_relayed(live, caplog):
    caplog.set_level(logging.INFO, logger="meshroom")
    base, room, path = live.base_url, "team", "ro.md"
    reader_token = token(read_only=True, pid="r", name="Reader")
    async with (
        open_peer(base, room, path, token()) as writer,
        open_peer(base, room, path, reader_token) as reader,
    ):
        await writer.write("hello ")
        await eventually(lambda: str(reader.text) == "hello ")
        # The reader publishes awareness: relayed, so writers can show its cursor.
        await reader.send(awareness_message(reader.doc.client_id, 1, {"cursor": 3}))
        await eventually(lambda: writer.awareness.get(reader.doc.client_id) == {"cursor": 3})
        # Writes as an update and as a sync step 2: dropped, not fatal below the limit.
        await reader.write("EVIL1")
        await reader.write("EVIL2", as_step2=True)
        await writer.write("world")
        await eventually(lambda: "world" in str(reader.text))
        live_doc = live.server.room(room).documents[path].doc
        assert str(live_doc.get("t", type=Text)) == "hello world"
        assert str(writer.text) == "hello world"
        # A repeat offender is disconnected with 4406; the writer stays.
        for index in range(LIMITS.read_only_violations):
            await reader.write(f"EVIL{index + 3}")
        assert await reader.wait_closed() == CloseCode.READ_ONLY_VIOLATION
        assert "read-only" in reader.close_reason
        await writer.write("!")
        async with open_peer(base, room, path, token(read_only=True, pid="late")) as late:
            await eventually(lambda: str(late.text) == "hello world!")
        assert "EVIL" not in str(writer.text)
        assert not writer.closed.is_set()
    # Each dropped write was logged with the running count, up to the one that closed it.
    limit = LIMITS.read_only_violations
    dropped = [r.getMessage() for r in caplog.records if "dropped a write" in r.getMessage()]
    assert len(dropped) == limit + 1
    assert "'r'" in dropped[0] and dropped[-1].endswith(f"({limit + 1})")


async def test_path_patterns_decide_read_or_write(live):
    grants = [Grant("team", ["*"], read_only=True), Grant("team", ["notes/*"])]
    mixed = mint_token(secret=SECRET, grants=grants, participant_id="mixed")
    base = live.base_url
    for path, expected in (("notes/plan.md", "mine"), ("budget.md", "")):
        async with open_peer(base, "team", path, mixed) as peer:
            await peer.write("mine")
            await peer.barrier()  # the server has handled the write: applied or dropped
            live_doc = live.server.room("team").documents[path].doc
            assert str(live_doc.get("t", type=Text)) == expected
            assert not peer.closed.is_set()  # one refused write is dropped, not fatal
            async with open_peer(base, "team", path, token(pid="check")) as check:
                assert str(check.text) == expected  # what a newcomer syncs


async def test_read_only_room_document_takes_only_own_messages(live):
    """Read-only is about documents: such a token still talks in the room (unless its
    grant says ``messages: false``, see test_auth_messages), and forges nothing there."""
    reader = token(read_only=True, pid="quiet")
    async with open_peer(live.base_url, "team", "", reader) as peer:
        messages = peer.doc.get("messages", type=Array)
        before = peer.doc.get_state()
        messages.append({"from": "quiet", "to": None, "text": "hi", "time": 1})
        messages.append({"from": "someone-else", "to": None, "text": "forged", "time": 2})
        await peer.send(update_message(peer.doc.get_update(before)))
        await peer.barrier()  # the server has handled the update
        assert not peer.closed.is_set()
        server_messages = live.server.room("team").presence.messages.to_py()
        assert [m["text"] for m in server_messages] == ["hi"]


async def test_presence_identity_comes_from_the_token(live):
    ann = token(read_only=True, pid="ann-7", name="Ann", kind="agent")
    async with open_peer(live.base_url, "team", "", token(pid="watcher")) as watcher:
        participants = watcher.doc.get("participants", type=Map)
        async with open_peer(live.base_url, "team", "", ann, via="message") as peer:
            # The client claims another identity in its awareness and its query.
            await peer.send(
                awareness_message(peer.doc.client_id, 1, {"user": {"id": "admin", "name": "Root"}})
            )
            await eventually(lambda: "ann-7" in (participants.to_py() or {}))
            entry = participants.to_py()["ann-7"]
            assert (entry["name"], entry["kind"]) == ("Ann", "agent")
            assert "admin" not in participants.to_py()
        await eventually(lambda: "ann-7" not in (participants.to_py() or {}))


async def test_pre_auth_bytes_are_capped():
    async with (
        run_server(extensions=[JwtAuth(SECRET)], limits=Limits(pre_auth_bytes=1000)) as live,
        open_peer(
            live.base_url, "team", "a.md", "x" * 2000, via="message", wait_sync=False
        ) as peer,
    ):
        assert await peer.wait_closed() == CloseCode.UNAUTHENTICATED
        assert "before authenticating" in peer.close_reason
        assert set(peer.types) <= {2}


async def test_oversized_message_closes_only_that_connection(live):
    async with (
        open_peer(live.base_url, "team", "big.md", token()) as honest,
        open_peer(live.base_url, "team", "big.md", token(pid="big")) as big,
    ):
        await big.send(update_message(b"\x00" * (LIMITS.max_message_size + 10)))
        assert await big.wait_closed() == CloseCode.MESSAGE_TOO_BIG
        await honest.write("still fine")
        assert not honest.closed.is_set()


async def test_messages_per_second_limited():
    limits = Limits(messages_per_second=20, messages_burst=40)
    async with (
        run_server(extensions=[JwtAuth(SECRET)], limits=limits) as live,
        open_peer(live.base_url, "team", "a.md", token()) as peer,
    ):
        for clock in range(1, 400):
            if peer.closed.is_set():
                break
            try:
                await peer.send(awareness_message(peer.doc.client_id, clock, {"n": clock}))
            except Exception:
                break
        assert await peer.wait_closed() == CloseCode.RATE_LIMITED
        assert "messages per second" in peer.close_reason


async def test_connections_per_ip_limited():
    async with run_server(
        extensions=[JwtAuth(SECRET)], limits=Limits(max_connections_per_ip=3)
    ) as live:
        async with (
            open_peer(live.base_url, "team", "a.md", token(pid="1")),
            open_peer(live.base_url, "team", "a.md", token(pid="2")),
            open_peer(live.base_url, "team", "a.md", token(pid="3")),
            open_peer(live.base_url, "team", "a.md", token(pid="4"), wait_sync=False) as fourth,
        ):
            assert await fourth.wait_closed() == CloseCode.RATE_LIMITED
            assert "connections from" in fourth.close_reason
            assert set(fourth.types) <= {2}

        # Slots free up when connections close.
        async def reconnect() -> bool:
            async with open_peer(live.base_url, "team", "a.md", token(pid="5")) as peer:
                return peer.synced.is_set()

        assert await reconnect()


async def test_awareness_of_another_connection_cannot_be_spoofed(live):
    base, room, path = live.base_url, "team", "cursors.md"
    async with (
        open_peer(base, room, path, token(pid="honest")) as honest,
        open_peer(base, room, path, token(pid="watch")) as watcher,
        open_peer(base, room, path, token(read_only=True, pid="mallory")) as mallory,
    ):
        honest_id = honest.doc.client_id
        await honest.send(awareness_message(honest_id, 1, {"cursor": 1}))
        await eventually(lambda: watcher.awareness.get(honest_id) == {"cursor": 1})
        # Mallory overwrites and then removes the honest client's state, with newer clocks.
        await mallory.send(awareness_message(honest_id, 50, {"cursor": 666}))
        await mallory.send(awareness_message(honest_id, 51, None))
        # Mallory's own state still goes through (readers show cursors).
        await mallory.send(awareness_message(mallory.doc.client_id, 1, {"cursor": 2}))
        await eventually(lambda: watcher.awareness.get(mallory.doc.client_id) == {"cursor": 2})
        await mallory.barrier()
        assert watcher.awareness.get(honest_id) == {"cursor": 1}
        assert {"cursor": 666} not in watcher.awareness_seen
        # The honest client keeps updating its own state.
        await honest.send(awareness_message(honest_id, 2, {"cursor": 3}))
        await eventually(lambda: watcher.awareness.get(honest_id) == {"cursor": 3})


async def test_one_connection_cannot_flood_awareness_with_client_ids(live):
    base, room, path = live.base_url, "team", "ids.md"
    async with open_peer(base, room, path, token(pid="flood")) as flood:
        for client_id in range(1000, 1100):
            await flood.send(awareness_message(client_id, 1, {"n": client_id}))
        await flood.barrier()
        store = live.server.room(room).documents[path].awareness
        assert len(store.states) <= 8


async def test_awareness_before_a_token_is_refused():
    async with (
        run_server(extensions=[JwtAuth(SECRET)]) as live,
        open_peer(live.base_url, "team", "a.md", None, wait_sync=False) as peer,
    ):
        for clock in range(1, 100):
            try:
                await peer.send(awareness_message(7, clock, {"n": clock}))
            except Exception:
                break
        assert await peer.wait_closed() == CloseCode.UNAUTHENTICATED
        assert peer.close_reason.startswith("token required")
        assert set(peer.types) <= {2}


async def test_tokens_never_reach_the_request_log():
    class Collect(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.INFO)
            self.lines: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.lines.append(record.getMessage())

    uvicorn_log = logging.getLogger("uvicorn.error")
    collect = Collect()
    async with run_server(extensions=[JwtAuth(SECRET)]) as live:
        level = uvicorn_log.level
        uvicorn_log.setLevel(logging.INFO)
        uvicorn_log.addHandler(collect)
        try:
            secret_token = token(pid="logged")
            async with open_peer(live.base_url, "team", "log.md", secret_token) as peer:
                assert peer.synced.is_set()
        finally:
            uvicorn_log.removeHandler(collect)
            uvicorn_log.setLevel(level)
    accepted = [line for line in collect.lines if "WebSocket" in line]
    assert accepted and all("token=[redacted]" in line for line in accepted), accepted
    assert not any(secret_token in line for line in collect.lines)


async def test_authenticate_callback_decides_and_fails_closed():
    from meshroom import Access

    def decide(payload, claims):
        if claims.attributes.get("db") == "down":
            raise RuntimeError("session store unreachable")
        if payload.room == "lobby":
            return Access(claims.participant_id, claims.name, read_only=True)
        return None

    async with run_server(extensions=[JwtAuth(SECRET, authenticate=decide)]) as live:
        # The grants say "team", the application says "lobby", read-only.
        async with open_peer(live.base_url, "lobby", "x.md", token(pid="guest")) as guest:
            await guest.write("ignored")
            await guest.barrier()
            doc = live.server.room("lobby").documents["x.md"].doc
            assert str(doc.get("t", type=Text)) == ""
        async with open_peer(live.base_url, "team", "x.md", token(), wait_sync=False) as peer:
            assert await peer.wait_closed() == CloseCode.FORBIDDEN
        broken = token(attributes={"db": "down"})
        async with open_peer(live.base_url, "lobby", "x.md", broken, wait_sync=False) as peer:
            assert await peer.wait_closed() == 1011  # an internal error refuses, never admits
            assert set(peer.types) <= {2}


async def test_close_at_expiry_ends_sessions_when_their_token_expires():
    auth = JwtAuth(SECRET, leeway=0, close_at_expiry=True)
    async with run_server(extensions=[auth]) as live:
        short = token(pid="short", now=time.time() - 3600 + 3, expires_in=3600)
        async with (
            open_peer(live.base_url, "team", "exp.md", token(pid="long")) as long_lived,
            open_peer(live.base_url, "team", "exp.md", short) as short_lived,
        ):
            assert await short_lived.wait_closed() == CloseCode.UNAUTHENTICATED
            assert short_lived.close_reason == "token expired"
            await long_lived.write("still here")
            await long_lived.barrier()
            assert not long_lived.closed.is_set()
