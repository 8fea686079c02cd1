"""Document JSON: the shape, exact round-trips, ids, and refusals of malformed JSON."""

from __future__ import annotations

import json

import jsonschema
import pytest
from _meshdoc_schemas import article_schema

from meshdoc import Element, MeshDocument, SchemaError

ARTICLE = {
    "doc": {
        "title": "Launch",
        "children": [
            {"heading": {"$id": "h1", "level": 1, "children": [{"$text": []}]}},
            {
                "paragraph": {
                    "$id": "p1",
                    "align": None,
                    "children": [
                        {
                            "$text": [
                                {"insert": "Ship ", "marks": []},
                                {"insert": "now", "marks": [{"bold": {}}, {"italic": {}}]},
                                {
                                    "insert": " 😀 docs",
                                    "marks": [
                                        {
                                            "link": {
                                                "href": "https://e.org",
                                                "target": "_blank",
                                                "rel": None,
                                                "class": None,
                                            }
                                        }
                                    ],
                                },
                            ]
                        },
                        {"hardBreak": {"$id": "br1"}},
                        {"$text": [{"insert": "line two", "marks": []}]},
                    ],
                }
            },
            {
                "section": {
                    "$id": "s1",
                    "name": "Later",
                    "collapsed": False,
                    "weight": 3,
                    "items": [
                        {"title": {"$id": "t1", "children": [{"$text": []}]}},
                        {
                            "section": {
                                "$id": "s2",
                                "name": "x",
                                "collapsed": None,
                                "weight": 0.5,
                                "items": [],
                            }
                        },
                    ],
                }
            },
        ],
    }
}


def test_round_trip_is_exact_and_validates():
    schema = article_schema()
    doc = MeshDocument.from_json(schema, ARTICLE)
    assert doc.to_json() == ARTICLE
    assert json.dumps(doc.to_json(), sort_keys=True) == json.dumps(ARTICLE, sort_keys=True)
    jsonschema.validate(doc.to_json(), schema.to_json())
    assert doc.validate() == []
    # through the wire too
    copy = MeshDocument.from_update(schema, doc.get_update())
    assert copy.to_json() == ARTICLE
    # and the text engine sees the same content
    para = doc.get_node_by_id("p1")
    assert str(para.text) == "Ship now 😀 docs"
    assert para.text.to_delta()[1] == {"insert": "now", "attributes": {"bold": {}, "italic": {}}}
    link = para.text.to_delta()[2]["attributes"]["link"]
    assert link == {"href": "https://e.org", "target": "_blank"}  # nulls are not stored


def test_untyped_round_trip_keeps_everything_as_given():
    data = {
        "doc": {
            "children": [
                {
                    "box": {
                        "$id": "b",
                        "n": 2,
                        "z": None,
                        "flag": True,
                        "children": [
                            {"$text": [{"insert": "x", "marks": [{"weird": True}]}]},
                        ],
                    }
                },
            ]
        }
    }
    doc = MeshDocument.from_json(None, data)
    assert doc.to_json() == data


def test_element_to_json_and_append_json_keep_or_assign_ids():
    doc = MeshDocument(article_schema())
    added = doc.root.append_json(
        {"paragraph": {"$id": None, "children": [{"$text": [{"insert": "hi", "marks": []}]}]}}
    )
    assert isinstance(added, Element) and added.id
    body = added.to_json()["paragraph"]
    assert body["$id"] == added.id and body["align"] is None
    kept = doc.root.insert_json_at(0, {"heading": {"$id": "mine", "level": 2}})
    assert kept.id == "mine" and doc.root.get_children()[0] == kept
    text = added.append_json({"$text": [{"insert": "more", "marks": [{"code": {}}]}]})
    assert str(text) == "more"


def test_duplicate_ids_are_refused():
    doc = MeshDocument.from_json(article_schema(), ARTICLE)
    before = doc.get_update()
    with pytest.raises(SchemaError) as info:
        doc.root.append_json({"heading": {"$id": "h1", "level": 1}})
    assert info.value.rule == "duplicate-id" and info.value.element_id == "h1"
    twice = {
        "section": {
            "name": "n",
            "items": [
                {"section": {"$id": "d", "name": "a"}},
                {"section": {"$id": "d", "name": "b"}},
            ],
        }
    }
    with pytest.raises(SchemaError) as info:
        doc.root.append_json(twice)
    assert info.value.rule == "duplicate-id"
    assert doc.get_update() == before


@pytest.mark.parametrize(
    "bad",
    [
        [],
        {"paragraph": {}, "heading": {}},
        {"paragraph": "text"},
        {"paragraph": {"children": "x"}},
        {"paragraph": {"$id": 5}},
        {"paragraph": {"children": [{"$text": "plain"}]}},
        {"paragraph": {"children": [{"$text": [{"insert": 3, "marks": []}]}]}},
        {"paragraph": {"children": [{"$text": [{"insert": "a", "marks": {"bold": {}}}]}]}},
        {
            "paragraph": {
                "children": [{"$text": [{"insert": "a", "marks": [{"bold": {}, "x": 1}]}]}]
            }
        },
        {"paragraph": {"children": [{"$text": [{"insert": "a", "color": "red"}]}]}},
    ],
)
def test_malformed_json_is_refused_with_json_shape(bad):
    doc = MeshDocument(article_schema())
    with pytest.raises(SchemaError) as info:
        doc.root.append_json(bad)
    assert info.value.rule == "json-shape"
    assert doc.root.get_children() == []


def test_document_json_needs_the_right_root():
    with pytest.raises(SchemaError) as info:
        MeshDocument.from_json(article_schema(), {"page": {}})
    assert info.value.rule == "unknown-tag"
    with pytest.raises(SchemaError):
        MeshDocument.from_json(article_schema(), {"doc": {"$id": "x"}})
    with pytest.raises(SchemaError):
        MeshDocument.from_json(article_schema(), {"doc": {"title": 3}})


def test_numbers_written_by_other_peers_read_back_as_json_numbers():
    doc = MeshDocument(article_schema())
    section = doc.root.append_child("section", {"name": "n", "weight": 7})
    body = section.to_json()["section"]
    assert body["weight"] == 7 and isinstance(body["weight"], int)
    assert json.dumps(body["weight"]) == "7"
