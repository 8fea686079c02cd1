"""Property tests: the fast text path (updates placed by item ID) against the plain pycrdt path.

Peers edit the same text concurrently and exchange updates at random moments; one peer edits
through the fast path, the others through pycrdt's positional calls. After every step the
fast path's item index must spell exactly the text pycrdt holds, every local edit must do what
the same edit does to a Python string, and all peers must converge. Undo, marks (which send
the text back to the plain path), origins and a Yjs late joiner are checked too.
"""

from __future__ import annotations

import base64
import json
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Assoc, Doc, UndoManager, XmlElement, XmlFragment, XmlText

import meshdoc.text._node as text_module
from meshdoc import StickyPosition, TextNode
from meshdoc.text._sticky import create_position, resolve_position

NODE_DIR = Path(__file__).resolve().parent / "node"
ALPHABET = ["a", "b", "é", "漢", "😀", "\n"]


@pytest.fixture(autouse=True)
def fast_everywhere(monkeypatch):
    monkeypatch.setattr(text_module, "FAST_PATH_MIN_LENGTH", 0)
    monkeypatch.setattr(text_module, "FAST_PATH_MIN_EDITS", 0)


class Peer:
    def __init__(self, client_id: int, fast: bool, base: bytes | None = None) -> None:
        self.doc = Doc(client_id=client_id)
        if base is None:
            fragment = self.doc.get("default", type=XmlFragment)
            ytext = fragment.children.append(XmlElement("p")).children.append(XmlText())
        else:
            self.doc.apply_update(base)
            ytext = self.doc.get("default", type=XmlFragment).children[0].children[0]
        self.node = TextNode(self.doc, ytext)
        self.state = text_module._state_for(self.doc, ytext)
        if not fast:
            self.state.fast_off = True

    def check_index(self) -> None:
        """The fast path's index (brought up to date) spells the text pycrdt holds."""
        if self.state.fast_off:
            return
        with self.doc.transaction() as txn:
            fast = self.node._fast(txn)
        assert fast is not None, "the fast path turned itself off"
        assert fast.text() == str(self.node)
        assert fast.index.visible == len(str(self.node))


def make_peers(n_plain: int) -> list[Peer]:
    first = Peer(1, fast=True)
    base = first.doc.get_update()
    return [first] + [Peer(10 + i, fast=False, base=base) for i in range(n_plain)]


def sync(src: Peer, dst: Peer) -> None:
    dst.doc.apply_update(src.doc.get_update(dst.doc.get_state()))


edit = st.tuples(
    st.sampled_from(["insert", "insert", "delete", "sync", "format"]),
    st.integers(0, 2),  # peer
    st.integers(0, 2),  # other peer (sync source)
    st.floats(0, 1),  # relative position
    st.integers(1, 4),  # length
    st.lists(st.sampled_from(ALPHABET), min_size=1, max_size=4).map("".join),
)


def apply_edit(peers: list[Peer], step: tuple[Any, ...]) -> None:
    kind, p, q, where, n, s = step
    peer = peers[p % len(peers)]
    text = str(peer.node)
    if kind == "sync":
        src = peers[q % len(peers)]
        if src is not peer:
            sync(src, peer)
        return
    if kind == "insert":
        i = round(where * len(text))
        peer.node.insert(i, s)
        assert str(peer.node) == text[:i] + s + text[i:]
    elif kind == "format" and text:
        i = min(int(where * len(text)), len(text) - 1)
        n = min(n, len(text) - i)
        key = "bold" if len(s) % 2 else "italic"
        peer.node.format(i, n, {key: [True, None, "x"][ord(s[0]) % 3]})
        assert str(peer.node) == text
    elif kind == "delete" and text:
        i = min(int(where * len(text)), len(text) - 1)
        n = min(n, len(text) - i)
        peer.node.delete(i, n)
        assert str(peer.node) == text[:i] + text[i + n :]


def converge(peers: list[Peer]) -> str:
    for a in peers:
        for b in peers:
            if a is not b:
                sync(a, b)
    texts = {str(p.node) for p in peers}
    assert len(texts) == 1, texts
    return texts.pop()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(edit, min_size=1, max_size=40))
def test_fast_path_index_matches_pycrdt_under_concurrent_edits(steps):
    peers = make_peers(2)
    for step in steps:
        apply_edit(peers, step)
        peers[0].check_index()
    converge(peers)
    peers[0].check_index()
    assert not peers[0].state.fast_off


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(edit, min_size=1, max_size=30), st.lists(edit, min_size=1, max_size=30))
def test_two_fast_peers_converge_with_a_plain_peer(first, second):
    peers = make_peers(1)
    fast = Peer(2, fast=True, base=peers[0].doc.get_update())
    peers.append(fast)
    for step in first + second:
        apply_edit(peers, step)
    converge(peers)
    peers[0].check_index()
    fast.check_index()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(edit, min_size=1, max_size=25), st.integers(1, 5))
def test_undo_of_fast_edits_restores_text_and_index(steps, undos):
    peers = make_peers(1)
    me = peers[0]
    fragment = me.doc.get("default", type=XmlFragment)
    undo = UndoManager(scopes=[fragment], capture_timeout_millis=0)
    undo.include_origin("me")
    history = [me.node.to_delta()]
    for step in steps:
        if step[1] % 2 == 0 and step[0] != "sync":
            with me.doc.transaction(origin="me"):
                apply_edit([me], step)
            if me.node.to_delta() != history[-1]:
                history.append(me.node.to_delta())
        else:
            apply_edit(peers, step)
            history = [me.node.to_delta()]  # others' edits interleave: only check the index
            undo.clear()
        me.check_index()
    for _ in range(undos):
        if not undo.can_undo():
            break
        undo.undo()
        me.check_index()
        if len(history) > 1:
            history.pop()
            assert me.node.to_delta() == history[-1]
    converge(peers)
    me.check_index()


def test_fast_edits_carry_the_transaction_origin():
    me = make_peers(0)[0]
    origins: list[Any] = []
    me.node.ytext.observe(lambda event: origins.append(event.transaction.origin))
    with me.doc.transaction(origin="agent"):
        me.node.insert(0, "hello 😀")
        me.node.delete(0, 1)
    with me.doc.transaction(origin="person"):
        me.node.insert(5, "!")
    assert origins == ["agent", "person"]
    assert me.state.fast is not None
    assert str(me.node) == "ello !😀"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(edit, min_size=1, max_size=40))
def test_fast_and_plain_paths_write_the_same_marked_text(steps):
    """The same local edits, marks included, give the same delta on either path."""
    fast, plain = make_peers(0)[0], make_peers(0)[0]
    plain.state.fast_off = True
    for step in steps:
        if step[0] == "sync":
            continue
        apply_edit([fast], step)
        apply_edit([plain], step)
        assert fast.node.to_delta() == plain.node.to_delta()
        fast.check_index()
        with fast.doc.transaction() as txn:
            assert fast.node._fast(txn).delta() == fast.node.to_delta()
    assert not fast.state.fast_off


def test_marks_keep_the_index_and_inserts_stay_unmarked():
    me = make_peers(0)[0]
    me.node.insert(0, "plain then bold")
    me.node.format(11, 4, {"bold": True})
    me.node.insert(13, "X")  # inside the mark: the plain path writes the format items
    me.node.insert(0, ">")  # before any mark: the fast path
    me.node.insert(len(me.node), "!")  # after the mark's end
    assert not me.state.fast_off and me.state.fast is not None
    assert me.node.to_delta() == [
        {"insert": ">plain then "},
        {"insert": "bo", "attributes": {"bold": True}},
        {"insert": "X"},
        {"insert": "ld", "attributes": {"bold": True}},
        {"insert": "!"},
    ]
    me.check_index()


def test_small_or_seldom_edited_texts_stay_on_the_plain_path(monkeypatch):
    monkeypatch.setattr(text_module, "FAST_PATH_MIN_LENGTH", 16)
    monkeypatch.setattr(text_module, "FAST_PATH_MIN_EDITS", 2)
    me = make_peers(0)[0]
    me.node.insert(0, "short")
    assert me.state.fast is None
    me.node.insert(5, " and now longer than sixteen")
    me.node.insert(0, "!")
    me.node.insert(0, "!")
    assert me.state.fast is None  # two edits on a long text: still positional
    me.node.delete(0, 1)
    assert me.state.fast is not None
    assert str(me.node) == "!short and now longer than sixteen"


@pytest.mark.interop
def test_yjs_late_joiner_reads_a_fast_path_document():
    rng = random.Random(5)
    peers = make_peers(2)
    for _ in range(400):
        step = (
            rng.choice(["insert", "insert", "delete", "sync"]),
            rng.randrange(3),
            rng.randrange(3),
            rng.random(),
            rng.randint(1, 4),
            "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 4))),
        )
        apply_edit(peers, step)
    final = converge(peers)
    payload = {"updates": [base64.b64encode(peers[0].doc.get_update()).decode()]}
    proc = subprocess.run(
        ["node", "text_peer.mjs"],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        cwd=NODE_DIR,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["text"] == final


def test_a_text_outside_any_tree_edits_through_the_plain_path():
    doc = Doc()
    fragment = doc.get("default", type=XmlFragment)
    paragraph = fragment.children.append(XmlElement("p"))
    node = TextNode(doc, paragraph.children.append(XmlText()))
    del fragment.children[0]  # the paragraph (and the text) are gone: no index can be built
    node.insert(0, "nothing to see")
    state = text_module._state_for(doc, node.ytext)
    assert state.fast is None and state.fast_off


def scratch_index(peer: Peer, position: StickyPosition) -> int:
    """Resolve without the item index: on a scratch copy of the document."""
    return resolve_position(peer.doc, peer.node.ytext, position, str(peer.node))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(edit, min_size=1, max_size=25), st.lists(edit, min_size=1, max_size=25))
def test_sticky_positions_from_the_index_agree_with_the_scratch_copy(before, after):
    peers = make_peers(2)
    me = peers[0]
    for step in before:
        apply_edit(peers, step)
    size = len(str(me.node))
    made = []
    for index in range(size + 1):
        for assoc in (Assoc.AFTER, Assoc.BEFORE):
            position = me.node.sticky_index(index, assoc)  # from the item index
            assert me.node.index_of(position) == index
            assert scratch_index(me, position) == index
            with me.doc.transaction() as txn:
                offset = me.node._locate(txn, index)[1][0]
            other = create_position(me.doc, me.node.ytext, offset, assoc)
            assert me.node.index_of(other) == index
            made.append(position)
    for step in after:
        apply_edit(peers, step)
    converge(peers)
    for position in made:
        assert me.node.index_of(position) == scratch_index(me, position)
    assert me.state.fast is not None


typing = st.tuples(
    st.sampled_from(["type", "type", "type", "backspace", "forward-delete", "jump", "remote"]),
    st.floats(0, 1),  # where a jump lands, or where the remote peer edits
    st.sampled_from(ALPHABET),
)


@pytest.mark.parametrize("block", [4, 128])
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(steps=st.lists(typing, min_size=1, max_size=80))
def test_typing_and_backspacing_at_a_cursor_keep_the_index_true(steps, block, monkeypatch):
    """Keystrokes at a moving cursor (the fast path's remembered position) with remote edits."""
    import meshdoc.text._index as index_module

    monkeypatch.setattr(index_module, "_MAX_BLOCK", block)  # small blocks: many splits
    local, remote = make_peers(1)
    cursor = 0
    for kind, where, char in steps:
        text = str(local.node)
        cursor = min(cursor, len(text))
        if kind == "type":
            local.node.insert(cursor, char)
            assert str(local.node) == text[:cursor] + char + text[cursor:]
            cursor += 1
        elif kind == "backspace" and cursor > 0:
            local.node.delete(cursor - 1, 1)
            assert str(local.node) == text[: cursor - 1] + text[cursor:]
            cursor -= 1
        elif kind == "forward-delete" and cursor < len(text):
            local.node.delete(cursor, 1)
            assert str(local.node) == text[:cursor] + text[cursor + 1 :]
        elif kind == "jump":
            cursor = round(where * len(text))
        elif kind == "remote":
            sync(local, remote)
            remote_text = str(remote.node)
            remote.node.insert(round(where * len(remote_text)), char * 2)
            sync(remote, local)
        local.check_index()
    converge([local, remote])
    local.check_index()
    assert not local.state.fast_off


def test_backspaced_tombstones_join_and_a_concurrent_insert_cuts_them_again():
    """Consecutive deletions leave one tombstone run, not one per keystroke; a peer's insert
    anchored inside it still lands where pycrdt puts it."""
    local, remote = make_peers(1)
    local.node.insert(0, "hello world")
    sync(local, remote)
    for _ in range(5):  # backspace "world"
        local.node.delete(len(str(local.node)) - 1, 1)
    local.node.insert(6, "there")
    local.node.delete(6, 1)  # and a forward delete from the cursor
    local.node.delete(6, 1)
    fast = local.state.fast
    assert fast is not None
    assert [run.text for run in fast.index] == ["hello ", None, "ere", None]
    remote.node.insert(8, "XY")  # between "wo" and "rld", which are one tombstone here
    remote.node.insert(6, "?")
    sync(remote, local)
    local.check_index()
    assert converge([local, remote]) == str(local.node)
    local.check_index()
