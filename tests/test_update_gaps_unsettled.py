"""`Unsettled`: the per-doc holder of updates that wait for a gap, and its cached state.

`Unsettled.integrate` skips reading the doc's state vector when `follows_on` shows an
update follows on from a cached lower bound of it. That is safe only while the cache stays
a lower bound: a cache ahead of the doc would let a struct after a gap through.
"""

from __future__ import annotations

import random

import pytest
from pycrdt import Doc, Map, Text, merge_updates

from meshdoc import MeshDocument
from meshdoc.updates._gaps import decode_state, follows_on, unsettled_of


def _edits(seed: int, count: int = 60) -> list[bytes]:
    """Transactions of three peers editing one text and one map, shared as they go."""
    rng = random.Random(seed)
    peers = [Doc(client_id=client) for client in (11, 2222222, 3)]
    updates: list[bytes] = []
    for _ in range(count):
        peer = rng.choice(peers)
        for other in peers:  # each peer has seen a random part of the others' updates
            if other is not peer and rng.random() < 0.5:
                peer.apply_update(other.get_update(peer.get_state()))
        since = peer.get_state()
        text = peer.get("t", type=Text)
        shown = str(text)
        at = [len(shown[:i].encode()) for i in range(len(shown) + 1)]  # pycrdt counts bytes
        choice = rng.random()
        with peer.transaction():
            if choice < 0.6 or not shown:
                word = rng.choice(["a", "é", "😀", "xy", "ü b"])
                text.insert(rng.choice(at), word)
            elif choice < 0.8:
                start = rng.randrange(len(shown))
                stop = min(len(shown), start + rng.randint(1, 3))
                del text[at[start] : at[stop]]
            else:
                peer.get("m", type=Map)[rng.choice("kl")] = rng.randint(0, 9)
        updates.append(peer.get_update(since))
    return updates


@pytest.mark.parametrize("seed", range(12))
def test_the_cached_state_never_runs_ahead_of_the_doc(seed):
    rng = random.Random(seed)
    updates = _edits(seed)
    complete = Doc()
    for update in updates:
        complete.apply_update(update)
    replica = MeshDocument(None)
    unsettled = unsettled_of(replica.doc)
    pending = list(updates)
    while pending:
        # mostly in order, some out of it, sometimes two at once (as a relay merges them)
        count = min(len(pending), rng.randint(1, 2))
        picked = [
            pending.pop(rng.randrange(len(pending)) if rng.random() < 0.2 else 0)
            for _ in range(count)
        ]
        replica.apply_update(merge_updates(*picked) if count > 1 else picked[0])
        state = decode_state(replica.get_state())
        for client, clock in unsettled._known.items():
            assert clock <= state.get(client, 0)
    assert str(replica.doc.get("t", type=Text)) == str(complete.get("t", type=Text))
    assert decode_state(replica.get_state()) == decode_state(complete.get_state())
    assert unsettled.updates == []


def test_a_run_may_need_another_run_of_the_same_update():
    a, b = Doc(client_id=1), Doc(client_id=2)
    a.get("t", type=Text).insert(0, "é")
    first = a.get_update()
    b.apply_update(first)
    b.get("t", type=Text).insert(2, "x")  # after client 1's "é" (2 bytes), its origin
    both = merge_updates(first, b.get_update(encode_state({1: 1})))
    ends, sure = follows_on(both, {})
    assert sure
    assert dict(zip(ends[::2], ends[1::2], strict=True)) == {1: 1, 2: 1}
    _, sure = follows_on(b.get_update(encode_state({1: 1})), {})
    assert not sure  # client 1's "é" is neither known nor in the update


def test_a_keystroke_is_sure_only_when_its_origins_are_known():
    a = Doc(client_id=5)
    text = a.get("t", type=Text)
    text.insert(0, "ab")
    since = a.get_state()
    text.insert(1, "😀")  # between "a" (5, 0) and "b" (5, 1)
    keystroke = a.get_update(since)
    assert follows_on(keystroke, {5: 2}) == ([5, 4], True)  # an emoji is 2 UTF-16 units
    assert follows_on(keystroke, {5: 1})[1] is False  # starts past the state: a gap
    assert follows_on(keystroke, {5: 3})[1] is True


def test_a_truncated_update_is_refused():
    a = Doc(client_id=5)
    a.get("t", type=Text).insert(0, "abc")
    update = a.get_update()
    replica = MeshDocument(None)
    with pytest.raises(ValueError):
        unsettled_of(replica.doc).integrate(replica.doc, update[:-5])
    assert replica.get_state() == b"\x00"


def encode_state(state: dict[int, int]) -> bytes:
    """A v1 state vector."""
    out = bytearray()

    def uint(value: int) -> None:
        while value > 0x7F:
            out.append(0x80 | (value & 0x7F))
            value >>= 7
        out.append(value)

    uint(len(state))
    for client, clock in state.items():
        uint(client)
        uint(clock)
    return bytes(out)


def test_a_keystroke_after_an_unknown_origin_waits_and_moves_no_cache():
    """yrs parks a struct whose origin it lacks (its client's clock stays): the cached
    state must not move past it, or a later struct of that client would pass a gap."""
    a = Doc(client_id=1)
    text = a.get("t", type=Text)
    text.insert(0, "x")
    replica = MeshDocument(None)
    replica.apply_update(a.get_update())
    text.insert(1, "y")  # (1, 1): the replica lacks it
    b = Doc(client_id=2)
    b.apply_update(a.get_update())
    since = b.get_state()
    b.get("t", type=Text).insert(2, "z")  # origin (1, 1)
    keystroke = b.get_update(since)
    unsettled = unsettled_of(replica.doc)
    unsettled.integrate(replica.doc, keystroke)
    assert decode_state(replica.get_state()) == {1: 1}
    assert unsettled._known.get(2, 0) == 0
    assert unsettled.updates == [keystroke]
    replica.apply_update(a.get_update())
    assert str(replica.doc.get("t", type=Text)) == "xyz"
    assert unsettled.updates == []


def test_updates_that_wait_cost_nothing_until_what_they_need_goes_in():
    """`settle` (a merge of everything that waits) runs only once an update reached a clock
    a waiting update needs: a gap that never fills does not tax every keystroke."""
    typist = Doc(client_id=7)
    text = typist.get("t", type=Text)
    text.insert(0, "ab")
    replica = MeshDocument(None)
    replica.apply_update(typist.get_update())
    unsettled = unsettled_of(replica.doc)

    keystrokes = []
    for _ in range(3):
        since = typist.get_state()
        text.insert(len(text), "é")
        keystrokes.append(typist.get_update(since))
    unsettled.integrate(replica.doc, keystrokes[2])  # (7, 4): waits for (7, 2) and (7, 3)
    unsettled.settle(replica.doc)
    assert unsettled.updates == [keystrokes[2]]
    assert not unsettled  # nothing to try until client 7 reaches clock 4

    other = Doc(client_id=8)
    other.apply_update(typist.get_update())
    since = other.get_state()
    other.get("t", type=Text).insert(0, "z")
    unsettled.integrate(replica.doc, other.get_update(since))
    assert not unsettled  # another client's keystroke: no settle
    unsettled.integrate(replica.doc, keystrokes[0])
    assert not unsettled  # client 7 at clock 3: the waiting one starts at 4
    unsettled.integrate(replica.doc, keystrokes[1])
    assert unsettled  # now it follows on
    unsettled.settle(replica.doc)
    assert unsettled.updates == []
    assert str(replica.doc.get("t", type=Text)) == "zabééé"
