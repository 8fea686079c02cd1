"""MeshSchema: definitions, dict round-trip, strict JSON Schema, runtime rules, validation."""

from __future__ import annotations

import json

import jsonschema
import pytest
from _meshdoc_schemas import article_schema
from pycrdt import XmlElement, XmlText

from meshdoc import (
    ChildProperty,
    ElementType,
    MarkType,
    MeshDocument,
    MeshSchema,
    SchemaDefinitionError,
    SchemaError,
    ValueProperty,
)


def _walk(node, found):
    if isinstance(node, dict):
        if node.get("type") == "object" or "properties" in node:
            found.append(node)
        for value in node.values():
            _walk(value, found)
    elif isinstance(node, list):
        for value in node:
            _walk(value, found)
    return found


def _sample(schema: MeshSchema) -> MeshDocument:
    doc = MeshDocument(schema)
    doc.root.set_attribute("title", "Plan")
    heading = doc.root.append_child("heading", {"level": 2})
    heading.text.insert(0, "Goals")
    para = doc.root.append_child("paragraph", {"align": "center"})
    para.text.insert(0, "Ship ")
    para.text.insert(5, "fast", {"bold": {}})
    para.append_child("hardBreak")
    para.append_text("see docs", {"link": {"href": "https://example.org"}})
    section = doc.root.append_child("section", {"name": "Later", "weight": 1.5})
    section.append_child("title").text.insert(0, "Later")
    section.append_child("paragraph")
    return doc


# ------------------------------------------------------------------ definitions


def test_schema_dict_round_trip_is_exact_and_json_serializable():
    schema = article_schema()
    data = json.loads(json.dumps(schema.to_dict()))
    loaded = MeshSchema.from_dict(data)
    assert loaded == schema
    assert loaded.to_dict() == schema.to_dict()
    assert loaded.to_json() == schema.to_json()
    assert loaded.element("section").child_property.ordered is True
    assert loaded.mark("link").properties[0].name == "href"


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (lambda: MeshSchema("doc", [ElementType("p")]), "root tag 'doc'"),
        (
            lambda: MeshSchema("doc", [ElementType("doc", [ChildProperty("c", ["nope"])])]),
            "undeclared child tags ['nope']",
        ),
        (lambda: MeshSchema("doc", [ElementType("doc"), ElementType("doc")]), "declared twice"),
        (lambda: ValueProperty("n", type="integer"), "type 'integer'"),
        (lambda: ValueProperty("$id"), "reserved"),
        (lambda: ValueProperty("n", type="number", enum=["a"]), "not of type number"),
        (
            lambda: ElementType("p", [ChildProperty("a", []), ChildProperty("b", [])]),
            "at most one ChildProperty",
        ),
        (lambda: MeshSchema.from_dict({"elements": []}), "not a schema dict"),
    ],
)
def test_bad_definitions_are_refused(build, words):
    with pytest.raises(SchemaDefinitionError) as info:
        build()
    assert words in str(info.value)


# ------------------------------------------------------------------ JSON Schema


def test_json_schema_is_strict_everywhere():
    exported = article_schema().to_json()
    objects = _walk(exported, [])
    assert len(objects) > 10
    for obj in objects:
        assert obj["additionalProperties"] is False, obj
        assert sorted(obj["required"]) == sorted(obj["properties"]), obj
    assert set(exported["$defs"]) >= {"heading", "paragraph", "section", "$text", "$run"}
    level = exported["$defs"]["heading"]["properties"]["heading"]["properties"]["level"]
    assert level == {"type": "number", "enum": [1, 2, 3]}
    align = exported["$defs"]["paragraph"]["properties"]["paragraph"]["properties"]["align"]
    assert align == {"type": ["string", "null"], "enum": ["left", "center", "right", None]}
    jsonschema.Draft202012Validator.check_schema(exported)


def test_real_documents_validate_against_the_json_schema():
    schema = article_schema()
    doc = _sample(schema)
    data = doc.to_json()
    jsonschema.validate(data, schema.to_json())
    # an empty document too
    jsonschema.validate(MeshDocument(schema).to_json(), schema.to_json())


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d["doc"]["children"][0]["heading"].__setitem__("level", 9),
        lambda d: d["doc"]["children"][0]["heading"].__setitem__("color", "red"),
        lambda d: d["doc"]["children"][0]["heading"].pop("level"),
        lambda d: d["doc"]["children"].append({"hardBreak": {"$id": None}}),
        lambda d: d["doc"]["children"][1]["paragraph"]["children"][0]["$text"][0].pop("marks"),
        lambda d: d["doc"]["children"][1]["paragraph"]["children"][0]["$text"][1]["marks"].append(
            {"sparkle": {}}
        ),
    ],
)
def test_json_schema_rejects_broken_documents(mutate):
    schema = article_schema()
    data = _sample(schema).to_json()
    mutate(data)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema.to_json())


# ------------------------------------------------------------------ runtime rules


def _refused(doc: MeshDocument, action, rule: str, *words: str) -> SchemaError:
    before_update = doc.get_update()
    before_json = doc.to_json()
    with pytest.raises(SchemaError) as info:
        action()
    assert info.value.rule == rule
    for word in words:
        assert word in str(info.value)
    assert doc.to_json() == before_json
    assert doc.get_update() == before_update, "a refused write must not change the document"
    return info.value


def test_unknown_tag_is_refused_and_names_the_tag():
    doc = _sample(article_schema())
    err = _refused(doc, lambda: doc.root.append_child("table"), "unknown-tag", "<table>")
    assert err.tag == "table" and err.path == "doc"


def test_child_not_allowed_here_names_parent_and_child():
    doc = _sample(article_schema())
    para = doc.find("paragraph")[0]
    err = _refused(
        doc, lambda: para.append_child("heading", {"level": 1}), "child-not-allowed", "<paragraph>"
    )
    assert err.element_id == para.id and err.tag == "heading"
    assert err.path == "doc/paragraph[1]"


def test_unknown_attribute_is_refused():
    doc = _sample(article_schema())
    heading = doc.find("heading")[0]
    err = _refused(doc, lambda: heading.set_attribute("color", "red"), "unknown-attribute", "color")
    assert err.attribute == "color" and err.element_id == heading.id


def test_wrong_value_type_is_refused():
    doc = _sample(article_schema())
    section = doc.find("section")[0]
    _refused(doc, lambda: section.set_attribute("collapsed", "yes"), "type", "boolean")
    _refused(doc, lambda: section.set_attribute("weight", True), "type", "number")
    _refused(doc, lambda: section.set_attribute("weight", [1]), "type")


def test_value_not_in_enum_is_refused():
    doc = _sample(article_schema())
    heading = doc.find("heading")[0]
    _refused(doc, lambda: heading.set_attribute("level", 4), "enum", "[1, 2, 3]", "got 4")


def test_missing_required_attribute_is_refused_on_create_and_remove():
    doc = _sample(article_schema())
    _refused(doc, lambda: doc.root.append_child("section"), "required", "'name'")
    section = doc.find("section")[0]
    _refused(doc, lambda: section.remove_attribute("name"), "required", "'name'")
    _refused(doc, lambda: section.set_attribute("name", None), "required", "'name'")


def test_ordered_children_are_enforced():
    doc = _sample(article_schema())
    section = doc.find("section")[0]
    err = _refused(doc, lambda: section.insert_child_at(0, "paragraph"), "child-order")
    assert "order" in err.message
    _refused(doc, lambda: section.append_child("title"), "child-order", "<title>")
    section.append_child("section", {"name": "inner"})  # later groups may follow
    with doc.transaction():  # a raw (unchecked) write, as a foreign peer could make
        section.node.children.append(XmlElement("title", {"$id": "late"}))
    (violation,) = doc.validate()
    assert violation.rule == "child-order" and violation.element_id == section.id


def test_text_is_refused_where_no_rich_text_is_allowed():
    doc = _sample(article_schema())
    section = doc.find("section")[0]
    _refused(doc, lambda: section.text, "text-not-allowed", "<section>")
    _refused(doc, lambda: doc.root.append_json({"$text": []}), "text-not-allowed")


def test_marks_are_checked_in_json():
    doc = _sample(article_schema())
    para = doc.find("paragraph")[0]
    bad_mark = {"paragraph": {"children": [{"$text": [{"insert": "x", "marks": [{"glow": {}}]}]}]}}
    _refused(doc, lambda: para.parent.append_json(bad_mark), "unknown-mark", "glow")
    no_href = {"paragraph": {"children": [{"$text": [{"insert": "x", "marks": [{"link": {}}]}]}]}}
    _refused(doc, lambda: doc.root.append_json(no_href), "mark-attribute", "href")


def test_reserved_id_attribute_cannot_be_written():
    doc = _sample(article_schema())
    heading = doc.find("heading")[0]
    _refused(doc, lambda: heading.set_attribute("$id", "x"), "reserved")
    _refused(doc, lambda: heading.remove_attribute("$id"), "reserved")


def test_nested_json_is_checked_completely_before_writing():
    doc = _sample(article_schema())
    deep_bad = {
        "section": {
            "name": "A",
            "items": [{"paragraph": {}}, {"section": {"name": "B", "items": [{"heading": {}}]}}],
        }
    }
    err = _refused(doc, lambda: doc.root.append_json(deep_bad), "child-not-allowed", "heading")
    assert err.path == "doc/section[3]/section[1]/heading[0]"


# ------------------------------------------------------------------ validate()


def test_validate_reports_every_violation_from_a_foreign_peer_without_writing():
    schema = article_schema()
    doc = _sample(schema)
    assert doc.validate() == []
    # Another peer (raw Yjs, no schema) writes content that breaks the schema.
    peer = MeshDocument(None)
    peer.apply_update(doc.get_update())
    with peer.doc.transaction():
        frag = peer.fragment
        frag.children.append(XmlElement("table", {"$id": "t1"}))
        heading = frag.children[0]
        heading.attributes["level"] = 7
        heading.attributes["color"] = "red"
        frag.children.append(XmlElement("section", {"$id": "s1"}))
        frag.children.append(XmlElement("paragraph"))  # no $id
        section = frag.children[2]
        section.children.append(XmlText("loose text"))
        para = frag.children[1]
        para.children[0].format(0, 2, {"glow": True})
    doc.apply_update(peer.get_update(doc.get_state()))
    before = doc.get_update()
    violations = doc.validate()
    assert doc.get_update() == before
    found = {(v.rule, v.path, v.attribute or v.tag) for v in violations}
    assert ("enum", "doc/heading[0]", "level") in found
    assert ("unknown-attribute", "doc/heading[0]", "color") in found
    assert ("unknown-tag", "doc/table[3]", "table") in found
    assert ("required", "doc/section[4]", "name") in found
    assert ("missing-id", "doc/paragraph[5]", "$id") in found
    assert ("text-not-allowed", "doc/section[2]/$text[2]", "$text") in found
    assert ("unknown-mark", "doc/paragraph[1]/$text[0]", "glow") in found
    ids = {v.element_id for v in violations if v.rule == "enum"}
    assert ids == {doc.find("heading")[0].id}
    assert doc.assign_missing_ids() == 1
    assert "missing-id" not in {v.rule for v in doc.validate()}


def test_custom_marks_and_schema_without_marks():
    schema = MeshSchema(
        "doc",
        [ElementType("doc", [ChildProperty("children", ["p"])]), ElementType("p", rich_text=True)],
        marks=[MarkType("highlight", [ValueProperty("color", enum=["yellow", "green"])])],
    )
    doc = MeshDocument(schema)
    doc.root.append_json(
        {"p": {"children": [{"$text": [{"insert": "hi", "marks": [{"highlight": {}}]}]}]}}
    )
    data = doc.to_json()
    run = data["doc"]["children"][0]["p"]["children"][0]["$text"][0]
    assert run == {"insert": "hi", "marks": [{"highlight": {"color": None}}]}
    jsonschema.validate(data, schema.to_json())
    plain = MeshSchema("doc", [ElementType("doc", rich_text=True)], marks=[])
    jsonschema.Draft202012Validator.check_schema(plain.to_json())


def test_marks_are_checked_for_new_text_and_by_the_text_hook():
    doc = _sample(article_schema())
    para = doc.find("paragraph")[0]
    _refused(doc, lambda: para.append_text("x", {"sparkle": {}}), "unknown-mark", "sparkle")
    err = _refused(
        doc,
        lambda: doc.check_marks(para.text.ytext, {"link": {"href": 3}}),
        "mark-attribute",
        "href",
    )
    assert err.element_id == para.id and err.path == "doc/paragraph[1]/$text[0]"
    doc.check_marks(para.text.ytext, {"bold": None, "link": {"href": "https://e.org"}})
    MeshDocument(None).check_marks(para.text.ytext, {"anything": True})


def test_overlapping_marks_stored_under_hashed_names_are_recognised():
    schema = MeshSchema(
        "doc",
        [ElementType("doc", [ChildProperty("children", ["p"])]), ElementType("p", rich_text=True)],
        marks=[MarkType("comment", [ValueProperty("id", required=True)])],
    )
    doc = MeshDocument(schema)
    text = doc.root.append_child("p").append_text("ab")
    with doc.transaction():  # as y-prosemirror writes two comments over one character
        text.ytext.format(0, 1, {"comment--AbC+/=12": {"id": "c1"}})
        text.ytext.format(0, 1, {"comment--zzzzzzzz": {"id": "c2"}})
        text.ytext.format(1, 2, {"comment--yyyyyyyy": {}})  # pycrdt: (start, stop)
    (violation,) = doc.validate()
    assert violation.rule == "mark-attribute" and violation.attribute == "comment--yyyyyyyy"
