"""Each frame that once sized server memory from a claim, or crashed it, replayed exactly.

No timing here: what each asserts is the close (4422, its reason), that the document and
its awareness are unchanged, that the server still admits and syncs a new client, and that
this process's peak memory (the server runs in it) rose by less than 50 MiB.
What each did before the checks is next to it in `CASES`.
"""

from __future__ import annotations

import pycrdt
import pytest
from conftest import eventually, open_raw_peer, run_server
from test_decoder_bounds import (
    MEMORY_BUDGET,
    MiB,
    _reset_own_peak,
    _status_kib_self,
    any_object_claiming,
    awareness_nested,
    huge_state_vector_frame,
    nested_any,
    sync,
    update_claiming_clients,
)

from meshroom import CloseCode
from meshroom.protocol._messages import (
    AwarenessEntry,
    AwarenessMessage,
    SyncMessage,
    SyncStep,
    decode_awareness_update,
    encode_awareness,
    encode_awareness_update,
    encode_sync_step1,
    encode_update,
)
from meshroom.server._presence import MAX_ROOM_UPDATE

pytestmark = pytest.mark.anyio

#: (name, frame, document path ("" = the room document), close reason), and what it did.
CASES = [
    # The frame: +512 MiB peak, 0.2 s stall (2**29 clients: +1 GiB, 1 s).
    ("75-byte state vector", huge_state_vector_frame(), "doc",
     "bad state vector: state vector claims 268435456 clients in 72 bytes"),
    # 5 KB: long enough to go to yrs's own checks first, which sized 512 MiB from the count.
    ("update claiming 2**28 clients", sync(2, update_claiming_clients(2**28, 5000)), "doc",
     "not a Yjs update: update claims 268435456 clients in 5010 bytes"),
    ("step 2 claiming 2**28 clients", sync(1, update_claiming_clients(2**28, 5000)), "doc",
     "not a Yjs update: update claims 268435456 clients in 5010 bytes"),
    # 13 bytes: the room document's scratch copy got it unread (+512 MiB).
    ("room update claiming 2**28 clients", sync(2, update_claiming_clients(2**28)), "",
     "not a Yjs update: update claims 268435456 clients in 10 bytes"),
    # An `any` map entry whose object claims 2**27 entries, in an update of 5 KB: +256 MiB.
    ("any object claiming 2**27 entries", sync(2, any_object_claiming(2**27) + bytes(5000)),
     "doc", "not a Yjs update: an 'any' object claims 134217728 entries in 5004 bytes"),
    # The same in 21 bytes to the room document: +256 MiB.
    ("room any object claiming 2**27 entries", sync(2, any_object_claiming(2**27)), "",
     "not a Yjs update: an 'any' object claims 134217728 entries in 4 bytes"),
    # 100 KB: yrs overflowed its stack decoding it, killing the server (SIGSEGV).
    ("any value nested 50000 deep", sync(2, nested_any(50_000)), "doc",
     "not a Yjs update: an 'any' value nests deeper than 1000 levels"),
    # Python's JSON decoder raised RecursionError: closed as an internal error (1011).
    ("awareness JSON nested 5000 deep", awareness_nested(5000), "doc",
     "awareness state of client 7 nests deeper than 128 levels"),
    # Accepted and relayed, though Python peers (meshroom's client, the cluster's other
    # processes) could not decode it: RecursionError, a little deeper in their stacks.
    ("awareness JSON nested 980 deep", awareness_nested(980), "doc",
     "awareness state of client 7 nests deeper than 128 levels"),
]  # fmt: skip


def _view(document, path: str):
    """What a refused frame must leave as it was."""
    content = document.doc.get_update() if path else None
    return content, document.awareness.states


@pytest.mark.parametrize(("name", "frame", "path", "reason"), CASES, ids=[c[0] for c in CASES])
async def test_frame_is_refused_and_changes_nothing(name, frame, path, reason):
    async with run_server() as live:
        url = live.url("regression", path)
        async with open_raw_peer(url) as honest, open_raw_peer(url) as bad:
            await honest.recv()
            await bad.recv()
            honest_state = {"name": "Ann", "cursor": None}
            await honest.send(encode_awareness(encode_awareness_update([
                AwarenessEntry(1, 1, honest_state)
            ])))  # fmt: skip
            await honest.recv_until(lambda m: isinstance(m, AwarenessMessage))
            room = live.server.room("regression")
            document = room.documents[path] if path else room.presence_document
            before = _view(document, path)
            start = _reset_own_peak()
            await bad.send(frame)
            code, text = await bad.closed()
            rise = _status_kib_self("VmHWM") - start
            assert rise < MEMORY_BUDGET, f"peak memory rose by {rise / MiB:.1f} MiB"
            assert (code, text) == (CloseCode.PROTOCOL_ERROR, reason)
            assert _view(document, path) == before
            async with open_raw_peer(url) as newcomer:  # greeted, synced, shown who is here
                greeting = [await newcomer.recv(), await newcomer.recv()]
                await newcomer.send(encode_sync_step1(b"\x00"))
                step2 = await newcomer.recv_until(
                    lambda m: isinstance(m, SyncMessage) and m.step == SyncStep.STEP2
                )
            assert isinstance(greeting[0], SyncMessage) and greeting[0].step == SyncStep.STEP1
            assert isinstance(greeting[1], AwarenessMessage)
            assert [e.state for e in decode_awareness_update(greeting[1].update)] == [honest_state]
            assert path == "" or step2.payload == before[0]


async def test_a_room_update_too_large_to_check_is_refused_unread():
    """A 600 KiB room message of small JSON objects: checking it built 116 MiB of Python
    values a 1.9 MiB update. Now it is refused like a forgery (counted, never applied) and
    the connection stays open."""
    async with run_server() as live:
        url = live.url("regression")
        async with open_raw_peer(url) as sender:
            await sender.recv()
            await sender.send(encode_sync_step1(b"\x00"))
            step2 = await sender.recv_until(
                lambda m: isinstance(m, SyncMessage) and m.step == SyncStep.STEP2
            )
            pid = sender.authenticated[1]["id"]
            copy = pycrdt.Doc()
            copy.apply_update(step2.payload)
            state = copy.get_state()
            message = {"from": pid, "to": None, "json": [{} for _ in range(300_000)], "time": 1}
            copy.get("messages", type=pycrdt.Array).append(message)
            update = copy.get_update(state)
            assert len(update) > MAX_ROOM_UPDATE
            start = _reset_own_peak()
            await sender.send(encode_update(update))
            await sender.send(encode_sync_step1(b"\x00"))  # answered: still connected
            await sender.recv_until(lambda m: isinstance(m, SyncMessage) and m.step == 1)
            rise = _status_kib_self("VmHWM") - start
        presence = live.server.room("regression").presence
        assert presence.messages.to_py() == []
        assert rise < MEMORY_BUDGET, f"peak memory rose by {rise / MiB:.1f} MiB"


#: An update that passes the checks but that yrs refuses while applying it (a struct
#: whose parent cannot hold it): found by mutating honest updates.
YRS_REFUSES = bytes.fromhex(
    "0107a4d49dbe96f8d201000401017402686581a4d49dbe96f8d201010284a4d49dbe96f8d201030d6f2077"
    "c3b6726c6420f09f98802801016d016b017602017875037c3f8000007c40000000760101797e0173770373"
    "1f72080101610175037c3f800000770374776f7c406000002701016d03737562012800a4d49dbe96f8d201"
    "0e0171017c3f80000001a4d49dbe96f8d201010202"
)


async def test_an_update_yrs_refuses_closes_the_sender_as_a_protocol_error():
    from meshroom.protocol._messages import encode_update

    async with run_server() as live:
        url = live.url("bad", "doc")
        async with open_raw_peer(url) as honest, open_raw_peer(url) as sender:
            await honest.recv()
            await sender.recv()
            await sender.send(encode_update(YRS_REFUSES))
            code, reason = await sender.closed()
            assert code == CloseCode.PROTOCOL_ERROR and "not a Yjs update" in reason
            doc = pycrdt.Doc(client_id=5)
            doc.get("t", type=pycrdt.Text).insert(0, "still served")
            await honest.send(encode_update(doc.get_update()))
            document = live.server.room("bad").documents["doc"]
            await eventually(lambda: "still served" in str(document.doc.get("t", type=pycrdt.Text)))
