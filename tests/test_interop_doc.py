"""Interop with Yjs in Node: documents written here read back identically there, and back.

Drives ``node tests/node/doc_peer.mjs`` with base64 updates on stdin/stdout.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from _meshdoc_schemas import article_schema

from meshdoc import (
    Element,
    MeshDocument,
    StickyRange,
    decode_sticky_position,
    encode_sticky_position,
)

pytestmark = pytest.mark.interop

NODE_DIR = Path(__file__).resolve().parent / "node"


def _node(updates: list[bytes], ops: list[dict[str, Any]] | None = None, **extra: Any) -> dict:
    node = shutil.which("node")
    assert node is not None, "node is required for the interop tests"
    payload = {
        "updates": [base64.b64encode(u).decode() for u in updates],
        "ops": ops or [],
        **extra,
    }
    proc = subprocess.run(
        [node, "doc_peer.mjs"],
        cwd=NODE_DIR,
        input=json.dumps(payload).encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    out = json.loads(proc.stdout)
    out["update"] = base64.b64decode(out["update"])
    out["diff"] = base64.b64decode(out["diff"])
    return out


def _deltas(doc: MeshDocument) -> list[list[dict]]:
    deltas = []

    def walk(element: Element) -> None:
        for child in element.get_children():
            if isinstance(child, Element):
                walk(child)
            else:
                deltas.append(child.to_delta())

    walk(doc.root)
    return deltas


def _written_here() -> MeshDocument:
    doc = MeshDocument(article_schema())
    doc.root.set_attribute("title", "Interop")
    heading = doc.root.append_child("heading", {"level": 2})
    heading.text.insert(0, "Größe 😀")
    para = doc.root.append_child("paragraph", {"align": "center"})
    para.text.insert(0, "plain bold link")
    para.text.format(6, 4, {"bold": {}})
    para.text.format(11, 4, {"link": {"href": "https://example.org/?a=1"}})
    para.append_child("hardBreak")
    para.append_text("after the break", {"italic": {}})
    section = doc.root.append_child("section", {"name": "S", "collapsed": True, "weight": 2.5})
    section.append_child("title").text.insert(0, "T")
    return doc


def test_python_document_reads_back_identically_in_yjs():
    doc = _written_here()
    out = _node([doc.get_update()])
    assert out["xml"] == doc.to_xml()
    assert "<hardbreak $id=" in out["xml"] and 'weight="2.5"' in out["xml"]
    assert out["texts"] == _deltas(doc)
    assert out["texts"][1][1] == {"insert": "bold", "attributes": {"bold": {}}}
    assert out["rootAttributes"] == {"title": "Interop"}
    # Yjs re-encodes the same content: loading it back gives the same JSON
    assert MeshDocument.from_update(article_schema(), out["update"]).to_json() == doc.to_json()


def test_node_edits_apply_here_and_show_through_the_element_api():
    doc = _written_here()
    heading, para, _section = doc.root.get_children()
    ops = [
        {
            "op": "element",
            "path": [],
            "index": 1,
            "tag": "paragraph",
            "attrs": {"$id": "from-node", "align": "right"},
            "text": "typed in a browser",
            "marks": {"bold": {}},
        },
        {"op": "text", "path": [0, 0], "index": 0, "text": "New "},
        {"op": "format", "path": [2, 0], "index": 0, "length": 5, "marks": {"italic": {}}},
        {"op": "attr", "path": [0], "key": "level", "value": 3},
        {"op": "root_attr", "key": "title", "value": "Edited in Node"},
    ]
    out = _node([doc.get_update()], ops, clientID=4242)
    doc.apply_update(out["diff"], origin="node")
    added = doc.get_node_by_id("from-node")
    assert added is not None and added.tag_name == "paragraph"
    assert added.get_attribute("align") == "right"
    assert str(added.text) == "typed in a browser"
    assert added.text.to_delta() == [{"insert": "typed in a browser", "attributes": {"bold": {}}}]
    assert str(heading.text) == "New Größe 😀"
    assert heading.get_attribute("level") == 3
    assert para.text.to_delta()[0] == {"insert": "plain", "attributes": {"italic": {}}}
    assert doc.root.get_attribute("title") == "Edited in Node"
    assert [c.id for c in doc.root.get_children()][1] == "from-node"
    assert doc.validate() == []
    assert doc.to_xml() == out["xml"]
    assert _deltas(doc) == out["texts"]


def test_concurrent_edits_in_node_and_python_converge():
    doc = _written_here()
    base = doc.get_update()
    para = doc.find("paragraph")[0]
    para.text.insert(0, ">> ")  # Python edits while Node edits the same text
    doc.root.append_child("paragraph").text.insert(0, "python")
    ops = [
        {"op": "text", "path": [1, 0], "index": 15, "text": "!!"},
        {"op": "delete", "path": [2], "index": 0, "length": 1},
    ]
    out = _node([base], ops, clientID=7)
    doc.apply_update(out["diff"])
    merged = _node([out["update"], doc.get_update()])
    assert merged["xml"] == doc.to_xml()
    assert str(para.text) == ">> plain bold link!!"
    assert doc.find("title") == []  # Node removed the section's title
    assert doc.validate() == []


def test_other_fragment_names_bind_the_same_way():
    doc = MeshDocument(None, fragment="prosemirror")
    doc.root.append_child("paragraph").append_text("hello")
    doc.root.set_attribute("lang", "en")
    out = _node([doc.get_update()], fragment="prosemirror")
    assert out["xml"] == doc.to_xml()
    assert out["rootAttributes"] == {"lang": "en"}
    empty = _node([doc.get_update()], fragment="default")
    assert empty["xml"] == ""


def test_sticky_ranges_travel_as_yjs_binary_positions():
    doc = MeshDocument(article_schema())
    para = doc.root.append_child("paragraph")
    text = para.text
    text.insert(0, "Größe 😀 matters here")
    selection = StickyRange.create(text, 8, 7)  # "matters"
    assert str(text)[8:15] == "matters"
    # Node resolves our binary positions after its own edit before the range
    ops = [{"op": "text", "path": [0, 0], "index": 0, "text": "¡"}]
    wire = [
        {"path": [0, 0], "position": base64.b64encode(encode_sticky_position(p)).decode()}
        for p in (selection.start, selection.end)
    ]
    out = _node([doc.get_update()], ops, resolve=wire, clientID=99)
    assert out["resolved"] == [9, 16]  # the same indices Python resolves below
    doc.apply_update(out["diff"])
    assert selection.resolve(text) == (9, 16)
    assert str(text)[9:16] == "matters"
    # positions made by Yjs decode and resolve here
    out = _node([doc.get_update()], make=[{"path": [0, 0], "index": 9, "assoc": 0}])
    (made,) = out["made"]
    position = decode_sticky_position(base64.b64decode(made))
    text.insert(0, ">> ")
    assert str(text)[text.index_of(position) :].startswith("matters")
    assert StickyRange.from_bytes(selection.to_bytes()) == selection
    assert StickyRange.from_json(selection.to_json()) == selection
