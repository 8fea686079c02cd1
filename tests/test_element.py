"""Element API: attributes, children, insertion points, move, delete, search, text."""

from __future__ import annotations

import uuid

import pytest
from _meshdoc_schemas import article_schema
from pycrdt import XmlElement, XmlText

from meshdoc import (
    Element,
    MeshDocument,
    NodeNotFoundError,
    SchemaError,
    StructureError,
)
from meshdoc.text._node import TextNode


def _tags(element: Element) -> list[str]:
    return [c.tag_name if isinstance(c, Element) else "$text" for c in element.get_children()]


def test_new_elements_get_a_uuid_id_stored_as_attribute():
    doc = MeshDocument(article_schema())
    para = doc.root.append_child("paragraph", {"align": "left"})
    assert uuid.UUID(para.id).version == 4
    assert para.node.attributes["$id"] == para.id
    assert para.tag_name == "paragraph" and para.get_attribute("align") == "left"
    assert para.attributes == {"align": "left"}
    assert para.parent == doc.root and doc.root.parent is None
    assert doc.root.id is None and doc.root.is_root and doc.root.tag_name == "doc"
    other = doc.root.append_child("paragraph")
    assert other.id != para.id


def test_attributes_set_get_remove_and_null_means_absent():
    doc = MeshDocument(article_schema())
    section = doc.root.append_child("section", {"name": "A", "weight": 2})
    assert section.get_attribute("weight") == 2 and isinstance(section.get_attribute("weight"), int)
    section.set_attribute("collapsed", True)
    section.set_attribute("weight", 0.25)
    assert section.attributes == {"name": "A", "collapsed": True, "weight": 0.25}
    section.set_attribute("collapsed", None)
    assert "collapsed" not in section.attributes
    section.remove_attribute("weight")
    section.remove_attribute("weight")  # absent: no-op
    assert section.attributes == {"name": "A"}
    assert section.get_attribute("weight", "dflt") == "dflt"
    assert section.get_attribute("$id") == section.id


def test_root_attributes_live_in_a_map_beside_the_fragment():
    doc = MeshDocument(article_schema(), fragment="prosemirror")
    doc.root.set_attribute("title", "Plan")
    assert doc.root.get_attribute("title") == "Plan"
    assert (
        doc.doc.get("prosemirror:attributes", type=type(doc.root_attribute_map))["title"] == "Plan"
    )
    doc.root.remove_attribute("title")
    assert doc.root.attributes == {}
    with pytest.raises(SchemaError):
        doc.root.set_attribute("nope", 1)


def test_insert_positions_and_children_order():
    doc = MeshDocument(article_schema())
    b = doc.root.append_child("paragraph")
    a = doc.root.insert_child_before(b, "heading", {"level": 1})
    c = doc.root.insert_child_after(b, "paragraph")
    d = doc.root.insert_child_at(1, "paragraph", {"align": "right"})
    assert [e.id for e in doc.root.get_children()] == [a.id, d.id, b.id, c.id]
    with pytest.raises(StructureError):
        doc.root.insert_child_at(9, "paragraph")
    with pytest.raises(StructureError):
        doc.root.insert_child_at(-1, "paragraph")
    stranger = MeshDocument(article_schema()).root.append_child("paragraph")
    with pytest.raises(NodeNotFoundError):
        doc.root.insert_child_after(stranger, "paragraph")


def test_rich_text_children_text_and_inline_elements():
    doc = MeshDocument(article_schema())
    para = doc.root.append_child("paragraph")
    text = para.text
    assert isinstance(text, TextNode)
    text.insert(0, "héllo 😀")
    assert para.text.ytext == text.ytext  # get, not create, the second time
    para.append_child("hardBreak")
    tail = para.append_text("next line", {"italic": {}})
    assert _tags(para) == ["$text", "hardBreak", "$text"]
    assert str(tail) == "next line" and tail.to_delta()[0]["attributes"] == {"italic": {}}
    assert str(doc.fragment).startswith(f'<paragraph $id="{para.id}">héllo 😀<hardBreak')


def test_delete_removes_subtree_and_refuses_root_and_reuse():
    doc = MeshDocument(article_schema())
    section = doc.root.append_child("section", {"name": "S"})
    inner = section.append_child("paragraph")
    keep = doc.root.append_child("paragraph")
    inner_id = inner.id
    section.delete()
    assert doc.root.get_children() == [keep]
    assert doc.get_node_by_id(inner_id) is None
    with pytest.raises(StructureError):
        doc.root.delete()
    with pytest.raises(NodeNotFoundError):
        section.delete()


def test_move_keeps_id_attributes_and_content():
    doc = MeshDocument(article_schema())
    s1 = doc.root.append_child("section", {"name": "one"})
    s2 = doc.root.append_child("section", {"name": "two"})
    para = s1.append_child("paragraph", {"align": "center"})
    para.text.insert(0, "bold words", None)
    para.text.format(0, 4, {"bold": {}})
    para.append_child("hardBreak")
    before = para.to_json()
    pid = para.id
    para.move(s2)
    assert para.id == pid and para.to_json() == before
    assert para.parent == s2 and s1.get_children() == []
    assert doc.get_node_by_id(pid) == para
    # move within the same parent, to a given index
    first = doc.root.get_children()[0]
    first.move(doc.root, 1)
    assert [e.get_attribute("name") for e in doc.root.get_children()] == ["two", "one"]
    assert doc.validate() == []


def test_move_refusals_change_nothing():
    doc = MeshDocument(article_schema())
    s1 = doc.root.append_child("section", {"name": "one"})
    s2 = s1.append_child("section", {"name": "two"})
    heading = doc.root.append_child("heading", {"level": 1})
    before = doc.get_update()
    with pytest.raises(StructureError):
        s1.move(s2)
    with pytest.raises(StructureError):
        s1.move(s1)
    with pytest.raises(StructureError):
        doc.root.move(s1)
    with pytest.raises(SchemaError) as info:
        heading.move(s1)
    assert info.value.rule == "child-not-allowed"
    with pytest.raises(StructureError):
        heading.move(doc.root, 5)
    assert doc.get_update() == before


def test_get_node_by_id_find_and_grep():
    doc = MeshDocument(article_schema())
    s = doc.root.append_child("section", {"name": "Risks", "collapsed": False})
    p1 = s.append_child("paragraph", {"align": "left"})
    p1.text.insert(0, "Budget may slip")
    p2 = doc.root.append_child("paragraph")
    p2.text.insert(0, "Nothing to see")
    assert doc.get_node_by_id(p1.id) == p1
    assert s.get_node_by_id(p2.id) is None  # only within the subtree
    assert doc.get_node_by_id("missing") is None
    assert doc.find("paragraph") == [p1, p2]
    assert doc.find("paragraph", align="left") == [p1]
    assert doc.find(collapsed=False) == [s]
    assert doc.find("paragraph", align="right") == []
    assert doc.grep("slip") == [p1]
    assert doc.grep("RISKS", ignore_case=True) == [s]
    assert doc.grep(r"^Nothing") == [p2]


def test_elements_are_views_that_see_remote_changes():
    doc = MeshDocument(article_schema())
    para = doc.root.append_child("paragraph")
    peer = MeshDocument(article_schema())
    peer.apply_update(doc.get_update())
    peer.get_node_by_id(para.id).set_attribute("align", "right")
    doc.apply_update(peer.get_update(doc.get_state()))
    assert para.get_attribute("align") == "right"


def test_untyped_document_allows_anything_but_reserved_names():
    doc = MeshDocument(None)
    x = doc.root.append_child("anything", {"n": 1, "flag": None})
    x.append_child("deeper").append_text("text anywhere")
    x.set_attribute("n", 2)
    assert x.attributes == {"n": 2, "flag": None}
    assert doc.root.tag_name == "doc"
    with pytest.raises(SchemaError):
        x.set_attribute("$id", "mine")
    with pytest.raises(SchemaError):
        doc.root.append_child("p", {"$id": "mine"})
    with pytest.raises(SchemaError):
        x.set_attribute("obj", {"a": 1})


def test_foreign_elements_without_id_are_usable():
    doc = MeshDocument(None)
    with doc.transaction():
        raw = doc.fragment.children.append(XmlElement("paragraph"))
        raw.children.append(XmlText("from an editor"))
    (para,) = doc.root.get_children()
    assert para.id is None
    para.set_attribute("align", "left")
    assert str(para.text) == "from an editor"
    para.delete()
    with pytest.raises(NodeNotFoundError):
        para.set_attribute("align", "right")


def test_paths_address_elements():
    doc = MeshDocument(article_schema())
    section = doc.root.append_child("section", {"name": "S"})
    para = section.append_child("paragraph")
    para.text.insert(0, "x")
    brk = para.append_child("hardBreak")
    assert brk.path == "doc/section[0]/paragraph[0]/hardBreak[1]"
    assert doc.get_node_by_path(brk.path) == brk
    assert doc.get_node_by_path("doc") == doc.root
    assert doc.get_node_by_path("doc/section[0]/paragraph[0]/hardBreak[0]") is None  # text
    assert doc.get_node_by_path("doc/heading[0]") is None  # stale: another tag there
    assert doc.get_node_by_path("doc/section[3]") is None
    assert doc.get_node_by_path("page/section[0]") is None
    assert doc.get_node_by_path("doc/section") is None


def test_get_node_by_id_never_returns_a_deleted_or_stale_node():
    doc = MeshDocument(article_schema())
    section = doc.root.append_child("section", {"name": "S"})
    para = section.append_child("paragraph")
    pid = para.id
    assert doc.get_node_by_id(pid) == para  # now remembered
    other = doc.root.append_child("section", {"name": "T"})
    para.move(other)
    assert doc.get_node_by_id(pid).parent == other  # the moved copy, not the deleted node
    peer = MeshDocument.from_update(article_schema(), doc.get_update())
    peer.get_node_by_id(other.id).delete()  # a remote peer deletes the parent
    doc.apply_update(peer.get_update(doc.get_state()))
    assert doc.get_node_by_id(pid) is None
    assert doc.get_node_by_id(section.id) == section
