"""One bound for the whole server: queued bytes, and connections, all clients together.

Each reader's own queue is bounded (`send_queue_bytes`), but readers that all stop at
once could still hold their bound each. Three real sockets stop reading (a 4 KiB
receive window) while a writer sends large edits; once what waits for them all passes
`max_queued_bytes`, the reader holding the most is closed as a slow reader, and the
total stays in bounds, while a reader that reads gets every edit.
"""

from __future__ import annotations

from contextlib import AsyncExitStack

import anyio
import pycrdt
import pytest
from conftest import eventually, open_raw_peer, run_server
from test_uvicorn_transport import _stalled_reader

from meshroom import CloseCode, Limits
from meshroom.protocol._messages import SyncMessage, SyncStep, encode_sync_step1, encode_update

pytestmark = pytest.mark.anyio

BUDGET = 3 * 1024 * 1024


async def test_the_slowest_readers_are_shed_when_the_server_budget_is_used_up():
    limits = Limits(max_queued_bytes=BUDGET, send_queue_bytes=64 * 1024 * 1024)
    async with run_server(limits=limits) as live, AsyncExitStack() as stack:
        url = live.url("budget", "doc")
        stalled = [await stack.enter_async_context(_stalled_reader(url, live.port)) for _ in "abc"]
        for reader in stalled:
            await reader.read_until(
                lambda r=reader: any(
                    isinstance(m, SyncMessage) and m.step == SyncStep.STEP1 for m in r.messages
                )
            )
        document = live.server.room("budget").documents["doc"]
        sessions = set(document.sessions)
        writer = await stack.enter_async_context(open_raw_peer(url))
        honest = await stack.enter_async_context(open_raw_peer(url))
        await writer.recv()
        await honest.recv()
        source = pycrdt.Doc(client_id=9)
        text = source.get("t", type=pycrdt.Text)
        mirror = pycrdt.Doc()
        received = mirror.get("t", type=pycrdt.Text)
        edits, size = 24, 256 * 1024  # 6 MiB for each stalled reader, 18 MiB if none were shed

        async def read_honestly() -> None:
            while len(received) < edits * size:
                message = await honest.recv(timeout=30)
                if isinstance(message, SyncMessage) and message.step == SyncStep.UPDATE:
                    mirror.apply_update(message.payload)

        async with anyio.create_task_group() as group:
            group.start_soon(read_honestly)
            for _ in range(edits):
                state = source.get_state()
                text.insert(len(text), "z" * size)
                await writer.send(encode_update(source.get_update(state)))
                await eventually(lambda: len(document.doc.get("t", type=pycrdt.Text)) == len(text))
                assert live.server.send_budget.queued <= BUDGET
        assert str(received) == str(text)
        closed = [s for s in sessions if s.close_reason is not None]
        assert closed, "no stalled reader was shed"
        for session in closed:
            code, reason = session.close_reason
            assert code == CloseCode.SLOW_READER and "bytes for queued messages" in reason


async def test_a_first_sync_larger_than_the_server_budget_is_sent_whole():
    """Sync step 2 is exempt from the budget as from `send_queue_bytes`: a document
    larger than `max_queued_bytes` still reaches a fresh client, which is not shed."""
    size = 512 * 1024
    async with (
        run_server(limits=Limits(max_queued_bytes=64 * 1024)) as live,
        live.server.open_document("big", "doc") as handle,
    ):
        handle.doc.get("t", type=pycrdt.Text).insert(0, "z" * size)
        async with open_raw_peer(live.url("big", "doc")) as fresh:
            await fresh.send(encode_sync_step1(b"\x00"))
            reply = await fresh.recv_until(
                lambda m: isinstance(m, SyncMessage) and m.step == SyncStep.STEP2, timeout=30
            )
            mirror = pycrdt.Doc()
            mirror.apply_update(reply.payload)
            assert len(mirror.get("t", type=pycrdt.Text)) == size
            session = next(iter(live.server.room("big").documents["doc"].sessions))
            assert session.close_reason is None


async def test_connections_past_the_server_limit_are_told_to_come_back_later():
    async with (
        run_server(limits=Limits(max_connections=2)) as live,
        open_raw_peer(live.url("full", "a")) as first,
        open_raw_peer(live.url("full", "b")) as second,
    ):
        await first.recv()
        await second.recv()
        async with open_raw_peer(live.url("full", "c")) as third:
            code, reason = await third.closed()
        assert code == CloseCode.TRY_AGAIN_LATER and "2 connections" in reason
        await second.websocket.close()
        await eventually(lambda: live.server._connections == 1)
        async with open_raw_peer(live.url("full", "d")) as fourth:
            assert (await fourth.recv()).step == SyncStep.STEP1
