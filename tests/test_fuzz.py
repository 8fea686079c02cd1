"""Fuzz: hostile connections throw >= 10,000 bad frames while honest clients edit.

Hostile peers (no token, bad tokens, read-only tokens, writers on another
document) send random bytes, truncated var-uints, sync messages with garbage
payloads, bad state vectors, junk awareness, unknown message types, text
frames, oversized frames and floods; each reconnects when the server closes
it. Honest writers and a reader edit one document all along. Afterwards: the
server process is alive and healthy, honest clients were never disconnected
and hold exactly the honest edits, and the server keeps (almost) nothing it
allocated for the fuzz. The server's Python allocations are traced
(`tracemalloc`, started after a warm-up round); the fuzz runs in two halves,
each with its own room, and once a half's connections and room are gone what
is still alive is measured: the second half may add at most
`GROWTH_TOLERANCE` (64 KiB: 13 bytes for each of its 5,000 frames, while a
leak of 100 bytes for each message a session handles adds ~90 KB), and all
of it stays under `RETAINED_TOLERANCE`. Resident memory is checked too,
coarsely, for native allocations (pycrdt's Rust side) that tracemalloc does
not see.
"""

from __future__ import annotations

import json
import random
import time
import urllib.request

import anyio
import pytest
from conftest import eventually, free_port
from pycrdt import Doc, Text
from test_auth_peer import (
    SECRET,
    awareness_message,
    open_peer,
    rss_bytes,
    start_server,
    stop_server,
    sync_step1,
    update_message,
    url_for,
    var_bytes,
    var_uint,
)
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from meshroom.auth import Grant, mint_token

FRAMES = 10_000
HOSTILE_TASKS = 6
MAX_MESSAGE = 64 * 1024
#: Python memory allocated during the fuzz and still alive once its rooms closed. A
#: leak-free server keeps ~100 KB, about as much after 30,000 frames as after 10,000.
RETAINED_TOLERANCE = 256 * 1024
#: What the second half of the fuzz may add to what the first half kept. A leak-free
#: server adds ~20 KB.
GROWTH_TOLERANCE = 64 * 1024
#: Allowed RSS growth after the fuzz, over the warmed-up baseline (allocator slack and
#: tracemalloc's own tables; native leaks of pycrdt documents show up here).
RSS_TOLERANCE = 8 * 1024 * 1024

#: A `JwtAuth` server whose ``/_test/traced?start`` starts tracemalloc and whose
#: ``/_test/traced`` answers the traced memory alive after a garbage collection (and
#: the rooms open: `/healthz` tells an anonymous caller of an auth server nothing).
SERVER_SCRIPT = """
import gc
import json
import os
import tracemalloc

import uvicorn
from meshroom import Limits, Server, create_app
from meshroom.auth import JwtAuth

limits = Limits(**json.loads(os.environ["LIMITS"]))
server = Server(extensions=[JwtAuth(os.environ["SECRET"])], grace_period=0.2, limits=limits)
server_app = create_app(server)


async def app(scope, receive, send):
    if scope["type"] != "http" or scope["path"] != "/_test/traced":
        return await server_app(scope, receive, send)
    gc.collect()
    if scope["query_string"] == b"start":
        tracemalloc.start()
    current, peak = tracemalloc.get_traced_memory()
    rooms = len(server.room_names())
    body = json.dumps({"current": current, "peak": peak, "rooms": rooms}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), ws="websockets-sansio",
            ws_per_message_deflate=False, log_level="warning", lifespan="on")
"""

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _token(paths=("*",), *, read_only=False, pid="x", room="fuzz", secret=SECRET) -> str:
    grants = [Grant(room, paths, read_only=read_only)]
    return mint_token(secret=secret, grants=grants, participant_id=pid)


def _valid_update(rng: random.Random) -> bytes:
    doc = Doc()
    doc.get("t", type=Text).insert(0, "".join(rng.choices("xyz", k=rng.randint(1, 20))))
    return doc.get_update()


def hostile_frame(rng: random.Random) -> bytes | str:
    """One frame a hostile client might send.

    About one in nine is fatal to the connection (malformed or oversized); the rest
    are well-formed but useless or forbidden (unknown types, junk auth after
    authentication, writes without write access, awareness noise), so a connection
    lives for a few frames and the server handles every kind many times.
    """
    kind = rng.random() * 100
    # -- fatal: malformed or oversized -----------------------------------------------------
    if kind < 3:
        return rng.randbytes(rng.randint(0, 200))
    if kind < 4.5:
        return bytes([rng.randint(0, 3)]) + b"\x80" * rng.randint(1, 12)  # truncated var-uint
    if kind < 6.5:
        step = rng.randint(0, 5)
        return b"\x00" + var_uint(step) + var_bytes(rng.randbytes(rng.randint(1, 64)))
    if kind < 7.5:  # a length prefix that runs past the end
        return b"\x00\x02" + var_uint(rng.randint(10, 1 << 40)) + rng.randbytes(4)
    if kind < 9:
        body = var_uint(1) + var_uint(rng.getrandbits(53)) + var_uint(rng.getrandbits(32))
        body += var_bytes(rng.choice([b"{", b"[1,2", rng.randbytes(8), b"\xff\xfe"]))
        return b"\x01" + var_bytes(body)
    if kind < 9.5:
        return rng.randbytes(MAX_MESSAGE + rng.randint(1, 64 * 1024))  # oversized
    if kind < 10.5:
        return "text frame " * rng.randint(1, 5)
    if kind < 11.5:
        return sync_step1(b"\xff" * rng.randint(1, 12))  # bad state vector
    # -- well-formed but useless or forbidden ----------------------------------------------
    if kind < 36:
        return var_uint(rng.randint(4, 1 << 20)) + rng.randbytes(rng.randint(0, 32))  # unknown
    if kind < 56:
        return update_message(_valid_update(rng))  # a write: forbidden for most identities
    if kind < 76:
        return awareness_message(rng.getrandbits(31), rng.randint(1, 9), {"n": rng.random()})
    if kind < 86:
        return b"\x02" + var_bytes(rng.randbytes(rng.randint(0, 40)))  # auth junk
    return b"\x03"  # query awareness


IDENTITIES = [
    ("doc.md", None),  # no token: pre-auth buffering, timeouts, auth-message junk
    ("doc.md", "bad"),
    ("doc.md", "read-only"),
    ("", "read-only"),  # the room document
    ("", "writer"),  # room document writer: only well-formed messages are allowed
    ("junk.md", "writer"),  # a writer on another document
]


def _identity_token(kind: str | None, index: int) -> str | None:
    if kind is None:
        return None
    if kind == "bad":
        return _token(secret="z" * 40)
    return _token(read_only=kind == "read-only", pid=f"hostile-{index}")


async def _acknowledged(ws, authenticated: bool) -> None:
    """Return once the server handled everything sent so far (or closed the socket).

    Authenticated: a sync step 1 is answered after the messages before it, in order.
    Before authentication nothing is answered; a ping round trip paces the sender.
    """
    if not authenticated:
        await (await ws.ping())
        return
    await ws.send(sync_step1(b"\x00"))
    with anyio.fail_after(10):
        while True:
            reply = await ws.recv()
            if isinstance(reply, bytes) and reply[:2] == b"\x00\x01":
                return


async def _hostile(base: str, seed: int, budget: int, stats: dict) -> None:
    rng = random.Random(seed)
    handled = 0
    while handled < budget:
        path, kind = IDENTITIES[rng.randrange(len(IDENTITIES))]
        token = _identity_token(kind, seed)
        authenticated = kind in ("read-only", "writer")
        url = url_for(base, "fuzz", path, token)
        try:
            async with connect(url, max_size=None, open_timeout=10, close_timeout=2) as ws:
                stats["connections"] += 1
                if kind == "bad":
                    await ws.recv()  # the permission-denied message, then the close
                for _ in range(rng.randint(1, 300)):
                    frame = hostile_frame(rng)
                    await ws.send(frame)
                    try:
                        await _acknowledged(ws, authenticated)
                    finally:
                        handled += 1
                        stats["frames"] += 1
                    if handled >= budget:
                        break
                await ws.close()
        except ConnectionClosed as error:
            code = error.rcvd.code if error.rcvd else None
            stats["closes"][code] = stats["closes"].get(code, 0) + 1
        except (InvalidHandshake, OSError):
            stats["handshake_errors"] += 1
            await anyio.sleep(0.01)


async def _honest_round(writers, reader, expected: list[str], number: int) -> None:
    for index, writer in enumerate(writers):
        marker = f"<{index}:{number}>"
        await writer.write(marker)
        expected.append(marker)


def _get(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return json.loads(response.read())


def _health(port: int) -> dict:
    return _get(port, "/healthz")


async def _wait_rooms_closed(port: int) -> None:
    await eventually(lambda: _get(port, "/_test/traced")["rooms"] == 0, timeout=30, interval=0.1)


async def _fuzz_round(base: str, seed: int, frames: int, stats: dict) -> list[str]:
    writers_tokens = [_token(pid=f"honest-{i}") for i in range(2)]
    expected: list[str] = []
    async with (
        open_peer(base, "fuzz", "doc.md", writers_tokens[0]) as first,
        open_peer(base, "fuzz", "doc.md", writers_tokens[1]) as second,
        open_peer(base, "fuzz", "doc.md", _token(read_only=True, pid="reader")) as reader,
    ):
        writers = [first, second]
        done = anyio.Event()

        async def honest() -> None:
            number = 0
            while not done.is_set():
                await _honest_round(writers, reader, expected, number)
                number += 1
                await anyio.sleep(0.05)

        async with anyio.create_task_group() as group:
            group.start_soon(honest)
            async with anyio.create_task_group() as hostile:
                per_task = frames // HOSTILE_TASKS + 1
                for task in range(HOSTILE_TASKS):
                    hostile.start_soon(_hostile, base, seed * 100 + task, per_task, stats)
            done.set()
        for peer in (*writers, reader):
            assert not peer.closed.is_set(), (peer.close_code, peer.close_reason)
            await peer.barrier()
        text = "".join(expected)
        for peer in (*writers, reader):
            await eventually(lambda p=peer: len(str(p.text)) == len(text))
            content = str(peer.text)
            assert sorted(content.replace(">", ">\n").split()) == sorted(expected)
        assert str(first.text) == str(second.text) == str(reader.text)
    return expected


async def test_hostile_frames_do_not_hurt_server_or_honest_clients():
    port = free_port()
    base = f"ws://127.0.0.1:{port}"
    limits = {"max_message_size": MAX_MESSAGE, "auth_timeout": 2}
    process = start_server(SERVER_SCRIPT, port, {"SECRET": SECRET, "LIMITS": json.dumps(limits)})
    stats = {"frames": 0, "connections": 0, "closes": {}, "handshake_errors": 0}
    try:
        # Warm-up: import paths, allocator arenas and caches, then the baseline.
        await _fuzz_round(base, 1, 1_000, {**stats, "closes": {}})
        await _wait_rooms_closed(port)
        baseline = rss_bytes(process.pid)
        _get(port, "/_test/traced?start")
        started = time.perf_counter()
        # Two halves, each with its own room: what the first keeps may be one-off (a
        # cache filled once); what the second adds to it is what the server keeps per frame.
        expected: list[str] = []
        retained = []
        for seed in (2, 3):
            expected += await _fuzz_round(base, seed, FRAMES // 2, stats)
            assert process.poll() is None, "the server process died"
            await _wait_rooms_closed(port)
            retained.append(_get(port, "/_test/traced")["current"])
        elapsed = time.perf_counter() - started
        after = rss_bytes(process.pid)
        growth = retained[1] - retained[0]
        assert stats["frames"] >= FRAMES
        assert _health(port)["status"] == "ok"
        # Hostile connections were closed for the right reasons, not by crashes (1011).
        assert 1011 not in stats["closes"], stats["closes"]
        assert growth <= GROWTH_TOLERANCE, f"{growth} bytes kept by the second half ({retained})"
        assert retained[1] <= RETAINED_TOLERANCE, f"{retained[1]} bytes kept from the fuzz"
        assert after - baseline <= RSS_TOLERANCE, (baseline, after)
        report = {
            "frames": stats["frames"],
            "hostile_connections": stats["connections"],
            "close_codes": {str(k): v for k, v in sorted(stats["closes"].items(), key=str)},
            "honest_edits": len(expected),
            "seconds": round(elapsed, 2),
            "rss_baseline_mib": round(baseline / 2**20, 1),
            "rss_after_mib": round(after / 2**20, 1),
            "python_bytes_retained": retained,
            "python_bytes_growth": growth,
        }
        print("\nfuzz:", json.dumps(report))
    finally:
        output = stop_server(process)
    # No handler crashed: the server logs a traceback for any unexpected exception.
    assert "Traceback" not in output, output[-4000:]
