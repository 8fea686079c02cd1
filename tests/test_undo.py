"""Per-origin undo/redo, and sticky positions that survive concurrent edits."""

from __future__ import annotations

import json

from _meshdoc_schemas import article_schema

from meshdoc import MeshDocument


def _texts(doc: MeshDocument) -> list[str]:
    return [str(p.text) for p in doc.find("paragraph")]


def test_undo_only_reverts_my_origin():
    doc = MeshDocument(article_schema())
    agent = doc.undo_manager(origin="agent", capture_timeout_millis=0)
    with doc.transaction(origin="agent"):
        mine = doc.root.append_child("paragraph")
        mine.text.insert(0, "agent wrote this")
    with doc.transaction(origin="alice"):
        theirs = doc.root.append_child("paragraph")
        theirs.text.insert(0, "alice wrote this")
    with doc.transaction(origin="agent"):
        theirs.set_attribute("align", "center")
    assert agent.can_undo() and agent.undo_depth == 2
    assert agent.undo()  # the attribute
    assert theirs.get_attribute("align") is None
    assert agent.undo()  # the paragraph
    assert _texts(doc) == ["alice wrote this"]
    assert not agent.can_undo() and not agent.undo()
    assert agent.redo() and agent.redo()
    assert _texts(doc) == ["agent wrote this", "alice wrote this"]
    assert theirs.get_attribute("align") == "center"
    assert doc.validate() == []


def test_undo_merges_with_concurrent_remote_text_edits():
    doc = MeshDocument(article_schema())
    undo = doc.undo_manager(capture_timeout_millis=0)  # the document's default origin
    para = doc.root.append_child("paragraph")
    para.text.insert(0, "Hello")
    peer = MeshDocument.from_update(article_schema(), doc.get_update())
    peer_para = peer.get_node_by_id(para.id)
    para.text.insert(5, " world")  # mine
    peer_para.text.insert(0, ">> ")  # theirs, concurrent
    doc.apply_update(peer.get_update(doc.get_state()), origin="remote")
    assert str(para.text) == ">> Hello world"
    undo.undo()
    assert str(para.text) == ">> Hello"
    peer.apply_update(doc.get_update(peer.get_state()))
    assert peer.to_json() == doc.to_json()


def test_undo_covers_root_attributes_and_grouping():
    doc = MeshDocument(article_schema())
    undo = doc.undo_manager(origin="me", capture_timeout_millis=60_000)
    with doc.transaction(origin="me"):
        doc.root.set_attribute("title", "A")
    with doc.transaction(origin="me"):
        doc.root.append_child("paragraph")
    assert undo.undo_depth == 1  # grouped: within the capture timeout
    undo.undo()
    assert doc.to_json() == MeshDocument(article_schema()).to_json()
    undo.clear()
    assert not undo.can_redo()


def test_sticky_position_survives_concurrent_edits_and_travels_as_json():
    doc = MeshDocument(article_schema())
    para = doc.root.append_child("paragraph")
    para.text.insert(0, "héllo wörld")
    peer = MeshDocument.from_update(article_schema(), doc.get_update())
    # the peer marks the start of "wörld" and sends the position as JSON
    peer_text = peer.get_node_by_id(para.id).text
    position = peer_text.sticky_index(6)
    wire = json.dumps(position.to_json())
    # meanwhile this replica edits before the position
    para.text.insert(0, "😀 oh ")
    peer.apply_update(doc.get_update(peer.get_state()))
    doc.apply_update(peer.get_update(doc.get_state()))
    received = type(position).from_json(json.loads(wire))
    index = para.text.index_of(received)
    assert str(para.text)[index:] == "wörld"
    assert peer_text.index_of(position) == index


def test_sticky_range_follows_edits_and_refuses_bad_input():
    import pytest

    from meshdoc import StickyRange, TextRangeError, UpdateError, decode_sticky_position

    doc = MeshDocument(None)
    text = doc.root.append_child("p").append_text("Hello world")
    selection = StickyRange.create(text, 6, 5)
    text.insert(6, "big ")  # typed at the start boundary: outside the range
    text.insert(len(text), "!")  # typed at the end boundary: outside too
    start, end = selection.resolve(text)
    assert str(text)[start:end] == "world"
    text.insert(start + 2, "-")  # typed inside: part of the range
    start, end = selection.resolve(text)
    assert str(text)[start:end] == "wo-rld"
    text.delete(start, end - start)
    assert selection.resolve(text) == (start, start)
    for bad in (b"", b"\x07\x00", b"\x00\x01", b"\x00\x01\x02\x00\x00"):
        with pytest.raises(UpdateError):
            decode_sticky_position(bad)
    with pytest.raises(UpdateError):
        StickyRange.from_bytes(b"\x05\x00")
    with pytest.raises(UpdateError):
        StickyRange.from_json({"start": {}})
    with pytest.raises(TextRangeError):
        StickyRange.create(text, 3, 99)
    with pytest.raises(TextRangeError):
        StickyRange.create(text, -1, 1)
