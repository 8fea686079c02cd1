"""A move keeps the edits made concurrently inside the moved element.

Peers reach each other through one hub document with a `MoveForwarder`, as browsers reach
each other through a room's server. Updates go one by one, as y-websocket sends them, or as
a whole state diff, as a reconnecting client's sync does (its delete set then holds every
deletion it knows, the move's own ones included).
"""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Doc, TransactionEvent

from meshdoc import Element, MeshDocument, MoveForwarder

LETTERS = "abcdefghijklmnopqrstuvwxyz"


class Star:
    """Replicas that talk only to a hub, which forwards edits into moved elements."""

    def __init__(self, peers: int) -> None:
        self.hub = MeshDocument(doc=Doc(client_id=1))
        self.forwarder = MoveForwarder(self.hub.doc)
        letters = iter(LETTERS * 4)
        for s in range(3):
            section = self.hub.root.append_child("section", {"name": f"s{s}"})
            for _ in range(2):
                para = section.append_child("paragraph")
                para.text.insert(0, "".join(next(letters) for _ in range(4)))
        self.peers = [MeshDocument(doc=Doc(client_id=100 + i)) for i in range(peers)]
        self.outbox: list[list[bytes]] = [[] for _ in self.peers]
        self.inbox: list[list[bytes]] = [[] for _ in self.peers]
        self._quiet = False
        self.hub.doc.observe(self._relay)
        for i, peer in enumerate(self.peers):
            peer.doc.apply_update(self.hub.doc.get_update())
            peer.doc.observe(lambda event, i=i: self._send(i, event))

    def _relay(self, event: TransactionEvent) -> None:
        for inbox in self.inbox:
            inbox.append(event.update)

    def _send(self, i: int, event: TransactionEvent) -> None:
        if not self._quiet:
            self.outbox[i].append(event.update)

    def hub_apply(self, update: bytes) -> None:
        pending = self.forwarder.before(update)
        self.hub.doc.apply_update(update)
        self.forwarder.after(pending)

    def send(self, i: int, whole: bool = False) -> None:
        """Peer `i`'s edits to the hub."""
        if whole:
            self.outbox[i].clear()
            self.hub_apply(self.peers[i].doc.get_update(self.hub.doc.get_state()))
        while self.outbox[i]:
            self.hub_apply(self.outbox[i].pop(0))

    def deliver(self, i: int, whole: bool = False) -> None:
        """Peer `i`'s edits to the hub, then everything the hub has to peer `i`."""
        peer = self.peers[i]
        self.send(i, whole)
        self._quiet = True
        try:
            if whole:
                self.inbox[i].clear()
                peer.doc.apply_update(self.hub.doc.get_update(peer.doc.get_state()))
            while self.inbox[i]:
                peer.doc.apply_update(self.inbox[i].pop(0))
        finally:
            self._quiet = False

    def settle(self) -> None:
        for _ in range(2):
            for i in range(len(self.peers)):
                self.deliver(i)


def paragraphs(doc: MeshDocument) -> list[Element]:
    return doc.root.find("paragraph")


def all_text(doc: MeshDocument) -> str:
    return "|".join(str(p.text) for p in paragraphs(doc))


def test_an_edit_that_reaches_the_hub_after_the_move_lands_in_the_copy() -> None:
    star = Star(2)
    mover, editor = star.peers
    paragraphs(mover)[0].move(mover.root.get_child_elements()[2])
    para = paragraphs(editor)[0]
    para.text.insert(2, "[x]")
    para.text.delete(0, 1)
    para.set_attribute("align", "right")
    star.deliver(0)
    star.deliver(1)
    star.settle()
    for doc in (star.hub, mover, editor):
        moved = doc.root.get_child_elements()[2].get_child_elements()[-1]
        assert str(moved.text) == "b[x]cd" and moved.get_attribute("align") == "right"
        assert len(paragraphs(doc)) == 6
    assert mover.to_xml() == editor.to_xml() == star.hub.to_xml()


def test_an_edit_that_reached_the_hub_before_the_move_is_carried_over() -> None:
    star = Star(2)
    mover, editor = star.peers
    paragraphs(mover)[1].move(mover.root, 0)
    para = paragraphs(editor)[1]
    para.text.insert(4, "[y]")
    para.text.delete(1, 2)
    star.deliver(1)  # the hub has the edit before the move arrives
    star.deliver(0)
    star.settle()
    for doc in (star.hub, mover, editor):
        assert str(doc.root.get_child_elements()[0].text) == "eh[y]"
    assert mover.to_xml() == editor.to_xml() == star.hub.to_xml()


def test_edits_built_on_forwarded_edits_follow_them_and_a_resync_deletes_nothing() -> None:
    star = Star(3)
    mover, editor, _late = star.peers
    paragraphs(mover)[2].move(mover.root.get_child_elements()[0], 0)
    para = paragraphs(editor)[2]
    para.text.insert(0, "[1]")
    star.deliver(0)
    star.send(1)
    para.text.insert(3, "[2]")  # the editor has not seen the move yet
    para.text.delete(0, 1)
    star.send(1)
    star.settle()
    star.deliver(2, whole=True)  # a full delete set, the move's deletions in it
    star.settle()
    texts = {all_text(doc) for doc in (star.hub, *star.peers)}
    assert len(texts) == 1
    assert "1][2]ijkl" in texts.pop()


@st.composite
def scripts(draw: st.DrawFn) -> tuple[int, list[tuple[int, str, int, int]]]:
    peers = draw(st.integers(3, 5))
    kinds = st.sampled_from(
        ["insert", "insert", "delete", "move", "move", "send", "deliver", "resync"]
    )
    steps = draw(
        st.lists(
            st.tuples(st.integers(0, peers - 1), kinds, st.integers(0, 99), st.integers(0, 99)),
            min_size=4,
            max_size=30,
        )
    )
    return peers, steps


# Moves come from one peer (paragraphs into sections, one after another) while every other
# peer edits text: concurrent moves of one element, and of a section around a moved
# paragraph, are not covered yet (see `MoveForwarder`).
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scripts())
def test_random_concurrent_moves_and_text_edits_converge_with_no_edit_lost(
    script: tuple[int, list[tuple[int, str, int, int]]],
) -> None:
    peers, steps = script
    star = Star(peers)
    tokens: list[str] = []
    deleted: set[str] = set()
    for n, (i, kind, a, b) in enumerate(steps):
        doc = star.peers[i]
        paras = paragraphs(doc)
        sections = doc.root.get_child_elements()
        if kind == "insert":
            text = paras[a % len(paras)].text
            token = f"[{n}]"
            tokens.append(token)
            text.insert(_safe_index(str(text), b), token)
        elif kind == "delete":
            text = paras[a % len(paras)].text
            letters = [k for k, c in enumerate(str(text)) if c in LETTERS]
            if letters:
                k = letters[b % len(letters)]
                deleted.add(str(text)[k])
                text.delete(k, 1)
        elif kind == "move":  # one mover: see MoveForwarder for concurrent moves
            doc = star.peers[0]
            paras, sections = paragraphs(doc), doc.root.get_child_elements()
            target = [s for s in sections if s.tag_name == "section"]
            section = target[b % len(target)]
            para = paras[a % len(paras)]
            size = len(section.get_children()) - (1 if para.parent == section else 0)
            para.move(section, b % (size + 1))
        elif kind == "send":
            star.send(i)
        else:
            star.deliver(i, whole=kind == "resync")
    star.settle()
    xml = {doc.to_xml() for doc in (star.hub, *star.peers)}
    assert len(xml) == 1, "replicas diverged"
    text = all_text(star.hub)
    for token in tokens:
        assert text.count(token) == 1, f"{token} lost or doubled in {text!r}"
    for letter in LETTERS[:24]:
        assert text.count(letter) == (letter not in deleted), f"{letter!r} lost, doubled or back"
    ids = [p.id for p in paragraphs(star.hub)]
    assert len(ids) == len(set(ids)) == 6
    assert len(star.hub.root.get_child_elements()) == 3


def _safe_index(text: str, b: int) -> int:
    """An index outside any token (a token must stay whole to be counted)."""
    spots = [k for k in range(len(text) + 1) if not re.search(r"\[\d*$", text[:k])]
    return spots[b % len(spots)]
