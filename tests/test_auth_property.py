"""Property: whatever clients with random grants do, documents hold only permitted edits.

Random clients (random rooms, path patterns, read-only or not) connect to random
documents and write. Afterwards, over real sockets against one server process:
every document contains exactly the edits of clients whose grants let them
write there; refused connections got 4403; every reader converged to the
writers' state.
"""

from __future__ import annotations

import re
import uuid

import anyio
import pytest
from conftest import eventually, free_port
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_auth_peer import SECRET, open_peer, start_auth_server, stop_server

from meshroom import CloseCode
from meshroom.auth import Grant, mint_token, resolve_mode

ROOMS = ("A", "B")
PATHS = ("notes/x.md", "a.md", "b.md")
TARGETS = [(room, path) for room in ROOMS for path in PATHS]
MARKER = re.compile(r"<c\d+:\d+>")

grant_strategy = st.builds(
    lambda room, paths, read_only: (room, paths, read_only),
    st.sampled_from(ROOMS),
    st.sampled_from([("*",), ("notes/*",), ("a.md",), ("a.md", "b.md"), ()]),
    st.booleans(),
)
scenario_strategy = st.fixed_dictionaries(
    {
        "clients": st.lists(
            st.lists(grant_strategy, min_size=1, max_size=2), min_size=2, max_size=4
        ),
        "ops": st.lists(
            st.tuples(st.integers(0, 3), st.integers(0, len(TARGETS) - 1), st.booleans()),
            min_size=1,
            max_size=8,
        ),
    }
)


@pytest.fixture(scope="module")
def server_url():
    port = free_port()
    process = start_auth_server(port)
    try:
        yield f"ws://127.0.0.1:{port}"
    finally:
        stop_server(process)


async def _scenario(base: str, scenario: dict) -> None:
    prefix = uuid.uuid4().hex[:8]
    real = {room: f"{prefix}-{room}" for room in ROOMS}
    clients = [
        [Grant(real[room], paths, read_only=read_only) for room, paths, read_only in grants]
        for grants in scenario["clients"]
    ]
    tokens = [
        mint_token(secret=SECRET, grants=grants, participant_id=f"c{index}")
        for index, grants in enumerate(clients)
    ]
    auditor = mint_token(
        secret=SECRET, grants=[Grant(f"{prefix}-*", read_only=True)], participant_id="auditor"
    )
    peers: dict[tuple[int, int], object] = {}
    expected: dict[int, set[str]] = {target: set() for target in range(len(TARGETS))}
    wrote: set[tuple[int, int]] = set()
    async with anyio.create_task_group() as group:
        stop = anyio.Event()

        async def hold(client: int, target: int, ready: anyio.Event) -> None:
            room, path = TARGETS[target]
            async with open_peer(base, real[room], path, tokens[client], wait_sync=False) as peer:
                await eventually(lambda: peer.synced.is_set() or peer.closed.is_set())
                peers[(client, target)] = peer
                ready.set()
                await stop.wait()

        for number, (client, target, write) in enumerate(scenario["ops"]):
            client %= len(clients)
            room, path = TARGETS[target]
            mode = resolve_mode(clients[client], real[room], path)
            if (client, target) not in peers:
                ready = anyio.Event()
                group.start_soon(hold, client, target, ready)
                await ready.wait()
            peer = peers[(client, target)]
            if mode is None:
                assert await peer.wait_closed() == CloseCode.FORBIDDEN
                continue
            assert peer.synced.is_set(), (client, target, peer.close_code)
            if write:
                marker = f"<c{client}:{number}>"
                await peer.write(marker)
                wrote.add((client, target))
                if mode == "read-write":
                    expected[target].add(marker)
        for peer in peers.values():
            if not peer.closed.is_set():
                await peer.barrier()
        for target, (room, path) in enumerate(TARGETS):
            async with open_peer(base, real[room], path, auditor) as audit:
                markers = set(MARKER.findall(str(audit.text)))
                assert markers == expected[target], (TARGETS[target], markers, expected[target])
                final = str(audit.text)
            for (client, peer_target), peer in peers.items():
                if peer_target != target or peer.closed.is_set():
                    continue
                if (client, target) in wrote:
                    # A writer's (or a refused writer's) copy holds the server's state too.
                    await eventually(
                        lambda p=peer, t=target: expected[t] <= set(MARKER.findall(str(p.text)))
                    )
                else:
                    await eventually(lambda p=peer, f=final: str(p.text) == f)
        stop.set()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenario_strategy)
def test_documents_only_hold_permitted_edits(server_url, scenario):
    anyio.run(_scenario, server_url, scenario)
