"""`meshroom serve` without `--storage` keeps documents in memory until it stops.

A user trying the server reloads the page after the room emptied and expects the
text back; before, documents vanished with their room, 5 s after it emptied.
"""

from __future__ import annotations

import anyio
import httpx
import pycrdt
import pytest
from conftest import free_port, serve_output, start_meshroom_serve

from meshroom import RoomClient

pytestmark = pytest.mark.anyio


async def test_documents_outlive_their_room_until_the_server_stops():
    port = free_port()
    process = start_meshroom_serve(port, "--grace-period", "0")
    try:
        url = f"ws://127.0.0.1:{port}"
        async with RoomClient(url, "team", name="Ann") as ann:
            doc = await ann.open_ydoc("notes")
            doc.get("t", type=pycrdt.Text).insert(0, "still here")
        with anyio.fail_after(10):  # the room closes (grace period 0)
            while httpx.get(f"http://127.0.0.1:{port}/healthz").json()["rooms"]:
                await anyio.sleep(0.05)
        async with RoomClient(url, "team", name="Bob") as bob:
            doc = await bob.open_ydoc("notes")
            assert str(doc.get("t", type=pycrdt.Text)) == "still here"
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert "documents are kept in memory until the server stops" in serve_output(process)
