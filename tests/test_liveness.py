"""A peer whose process freezes (its TCP connection stays open) is dropped by the server.

A real Node y-websocket peer is stopped with SIGSTOP: the kernel keeps its socket open
but nothing answers. The server's keepalive pings it, gets no pong, cuts it, and its
awareness state leaves every other client at once, instead of lingering until their
own 30 s awareness timeout.
"""

from __future__ import annotations

import os
import signal
import time

import anyio
import pytest
from conftest import LiveServer, open_node_peer, serve_app

from meshroom import RoomClient, Server, create_app
from meshroom.transport import uvicorn_websocket
from meshroom.transport._uvicorn import PING_INTERVAL

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

INTERVAL = 0.3


async def test_a_frozen_peer_leaves_presence_within_three_intervals():
    server = Server(grace_period=0.2)
    ws = uvicorn_websocket(server, ping_interval=INTERVAL)
    async with serve_app(create_app(server), ws=ws) as port:
        live = LiveServer(server, port)
        async with (
            RoomClient(live.base_url, "team", name="Ann") as ann,
            open_node_peer(live.base_url, "team/notes", {"name": "Frozen"}) as frozen,
        ):
            await ann.open("notes")
            await frozen.wait_event("synced")

            def frozen_seen() -> bool:
                return any(
                    state.get("user", {}).get("name") == "Frozen"
                    for state in ann.awareness("notes").values()
                )

            with anyio.fail_after(10):
                await ann.wait_for(frozen_seen)
            os.kill(frozen.process.pid, signal.SIGSTOP)
            try:
                stopped = time.monotonic()
                with anyio.fail_after(10):
                    await ann.wait_for(lambda: not frozen_seen())
                gone_after = time.monotonic() - stopped
            finally:
                os.kill(frozen.process.pid, signal.SIGCONT)
            assert gone_after <= 3 * INTERVAL + 0.5, f"gone after {gone_after:.2f} s"
            assert ann.connected  # the honest client is untouched


def test_the_default_drops_a_frozen_peer_within_10_seconds():
    assert 3 * PING_INTERVAL <= 10
