"""Suggestion mode: edits recorded as suggestions, listed, accepted and rejected.

Suggestions live in the document as marks (``suggestion_insert``, ``suggestion_delete``) and
an element attribute (``$suggestion``), so every schema accepts them, the JSON round-trips
them, a Yjs peer in Node reads and writes them, and replicas resolving at once converge
(the property test at the end).
"""

from __future__ import annotations

import os
import random

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_interop_doc import _node

from meshdoc import (
    RICH_TEXT_SCHEMA,
    MarkType,
    MeshDocument,
    MeshSchema,
    SchemaDefinitionError,
    SchemaError,
    StructureError,
    Suggestion,
)
from meshdoc.markdown import from_markdown, to_markdown


def _doc(text: str = "The launch is in May.\n\nSecond paragraph.\n") -> MeshDocument:
    return from_markdown(text)


def _paragraphs(doc: MeshDocument) -> list:
    return doc.root.get_child_elements()


def test_a_rewrite_is_a_deletion_and_an_insertion_per_changed_stretch():
    doc = _doc()
    first = _paragraphs(doc)[0]
    with doc.suggesting(author="editor-agent") as s:
        ids = s.rewrite_text(first, "The launch moves to June.")
    listed = doc.suggestions()
    assert [x.id for x in listed] == ids
    assert [(x.kind, x.text) for x in listed] == [
        ("delete", "is in May"),
        ("insert", "moves to June"),
    ]
    assert all(x.author == "editor-agent" and x.target == "text" for x in listed)
    assert listed[0].element_id == first.id and listed[0].where == "doc/paragraph[0]"
    # nothing is removed until someone accepts: both texts are there, marked
    assert str(first.text) == "The launch is in Maymoves to June."
    delta = first.text.to_delta()
    assert delta[1]["attributes"]["suggestion_delete"]["id"] == ids[0]
    assert delta[2]["attributes"]["suggestion_insert"]["author"] == "editor-agent"
    assert doc.validate() == []

    assert doc.accept(ids[1]) == 1  # keep the new words, unmarked
    assert doc.reject(ids[0]) == 1  # keep the old words too
    assert str(first.text) == "The launch is in Maymoves to June."
    assert all(not op.get("attributes") for op in first.text.to_delta())
    assert doc.suggestions() == []


@pytest.mark.parametrize(
    ("accept", "expected"), [(True, "The launch moves to June."), (False, "The launch is in May.")]
)
def test_accepting_or_rejecting_everything(accept: bool, expected: str):
    doc = _doc()
    with doc.suggesting(author="editor-agent") as s:
        s.rewrite_text(_paragraphs(doc)[0], "The launch moves to June.")
    resolve = doc.accept_all if accept else doc.reject_all
    assert resolve(author="someone-else") == 0
    assert resolve(author="editor-agent") == 2
    assert str(_paragraphs(doc)[0].text) == expected
    assert resolve() == 0  # idempotent: nothing left


def test_elements_suggested_in_and_out():
    doc = _doc()
    first, second = _paragraphs(doc)
    s = doc.suggesting(author="ann")
    new = s.insert_element(doc.root, 1, "heading", {"level": 2})
    new.text.insert(0, "Risks")  # a plain edit inside it: it is part of the insertion
    run = {"insert": "Budget", "marks": []}
    other = s.insert_json(doc.root, 0, {"paragraph": {"$id": None, "children": [{"$text": [run]}]}})
    gone = s.delete_element(second)
    kinds = {(x.kind, x.target, x.text) for x in doc.suggestions()}
    assert kinds == {
        ("insert", "element", "Risks"),
        ("insert", "element", "Budget"),
        ("delete", "element", "Second paragraph."),
    }
    assert new.suggestion is not None and new.suggestion["kind"] == "insert"
    assert "$suggestion" not in new.attributes  # meshdoc's own, like $id
    assert doc.validate() == []

    doc.reject(new.suggestion["id"])  # the heading goes
    doc.accept(other.suggestion["id"])  # the paragraph stays, unmarked
    doc.reject(gone)  # the deletion is withdrawn
    assert [p.tag_name for p in _paragraphs(doc)] == ["paragraph", "paragraph", "paragraph"]
    assert [p.suggestion for p in _paragraphs(doc)] == [None, None, None]
    assert to_markdown(doc) == "Budget\n\nThe launch is in May.\n\nSecond paragraph.\n"

    gone = doc.suggesting(author="ann").delete_element(first)
    assert doc.accept(gone) == 1 and first.id not in {p.id for p in _paragraphs(doc)}


def test_an_author_edits_their_own_pending_insertion_plainly():
    doc = _doc()
    first = _paragraphs(doc)[0]
    s = doc.suggesting(author="ann")
    added = s.insert_text(first, 0, "Draft: ")
    assert s.delete_text(first, 0, 2) is None  # ann's own pending words: deleted outright
    assert str(first.text).startswith("aft: The")
    assert [x.text for x in doc.suggestions()] == ["aft: "]
    # someone else's pending insertion is content like any other: deleting it is suggested
    bob = doc.suggesting(author="bob")
    deletion = bob.delete_text(first, 0, 3)
    assert deletion is not None
    assert {x.id: x.kind for x in doc.suggestions()} == {added: "insert", deletion: "delete"}
    assert bob.delete_text(first, 0, 3) is None  # already proposed for deletion
    # whole elements: ann withdraws her own, bob cannot propose deleting ann's
    heading = s.insert_element(doc.root, 0, "heading", {"level": 1})
    with pytest.raises(StructureError, match="pending insertion"):
        bob.delete_element(heading)
    assert s.delete_element(heading) is None and heading.id not in {p.id for p in _paragraphs(doc)}
    with pytest.raises(StructureError):
        s.delete_element(doc.root)


def test_concurrent_accept_and_reject_converge_and_resolving_twice_does_nothing():
    ann = _doc()
    with ann.suggesting(author="agent") as s:
        insertion = s.insert_text(_paragraphs(ann)[0], 0, "Soon: ")
        deletion = s.delete_text(_paragraphs(ann)[1], 0, 7)
    bob = MeshDocument.from_update(RICH_TEXT_SCHEMA, ann.get_update())
    ann_state, bob_state = ann.get_state(), bob.get_state()
    ann.accept(insertion, deletion)  # at the same moment as ...
    bob.reject(insertion, deletion)  # ... bob rejects both
    ann.apply_update(bob.get_update(ann_state))
    bob.apply_update(ann.get_update(bob_state))
    assert ann.to_json() == bob.to_json()
    # the content removal wins on both: the insertion is gone (bob) and so is the deleted word
    assert to_markdown(ann) == "The launch is in May.\n\nparagraph.\n"
    before = ann.get_state()
    assert ann.accept(insertion) == 0 and ann.reject_all() == 0
    assert ann.get_state() == before  # nothing written


def test_suggestion_edits_are_undone_with_the_rest_of_their_origin():
    doc = _doc()
    undo = doc.undo_manager(origin="agent", capture_timeout_millis=0)
    with doc.suggesting(author="agent", origin="agent") as s:
        s.rewrite_text(_paragraphs(doc)[0], "The launch moves to June.")
        s.delete_element(_paragraphs(doc)[1])
    assert len(doc.suggestions()) == 3
    undo.undo()
    assert doc.suggestions() == [] and to_markdown(doc) == to_markdown(_doc())


# ------------------------------------------------------------------ the schema


def test_every_schema_accepts_suggestions_and_checks_their_shape():
    doc = _doc()
    first = _paragraphs(doc)[0]
    mark = {"id": "s1", "author": "ann", "time": 1}
    first.text.format(0, 3, {"suggestion_delete": mark})  # written like any mark
    with pytest.raises(SchemaError) as info:
        first.text.format(0, 3, {"suggestion_insert": {"id": "s2"}})  # author, time required
    assert info.value.rule == "mark-attribute"
    with pytest.raises(SchemaError) as info:
        first.set_attribute("$suggestion", "x")
    assert info.value.rule == "reserved"
    # a peer may write a bad one: validation names it, nothing is changed
    first.node.attributes["$suggestion"] = {"id": "s3", "kind": "maybe"}
    assert [v.rule for v in doc.validate()] == ["suggestion"]
    assert [x.id for x in doc.suggestions()] == ["s1"]  # a malformed one is not listed
    with pytest.raises(SchemaDefinitionError, match="built in"):
        MeshSchema("doc", RICH_TEXT_SCHEMA.elements, marks=[MarkType("suggestion_insert")])


def test_json_carries_suggestions_and_the_json_schema_describes_them():
    doc = _doc()
    with doc.suggesting(author="ann") as s:
        s.rewrite_text(_paragraphs(doc)[0], "The launch moves to June.")
        s.delete_element(_paragraphs(doc)[1])
    data = doc.to_json()
    second = data["doc"]["children"][1]["paragraph"]
    assert second["$suggestion"]["kind"] == "delete" and second["$suggestion"]["author"] == "ann"
    assert "$suggestion" not in data["doc"]["children"][0]["paragraph"]  # only when suggested
    again = MeshDocument.from_json(RICH_TEXT_SCHEMA, data)
    assert again.to_json() == data and len(again.suggestions()) == 3

    described = RICH_TEXT_SCHEMA.to_json(suggestions=True)
    jsonschema.Draft202012Validator.check_schema(described)
    jsonschema.validate(data, described)
    data["doc"]["children"][1]["paragraph"]["$suggestion"]["kind"] = "maybe"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, described)
    # the default export stays strict (structured output) and describes unsuggested documents
    strict = RICH_TEXT_SCHEMA.to_json()
    assert "$suggestion" not in str(strict) and "suggestion_insert" not in str(strict)
    jsonschema.validate(_doc().to_json(), strict)
    jsonschema.validate(_doc().to_json(), described)
    with pytest.raises(SchemaError) as info:
        bad = {"paragraph": {"$id": None, "$suggestion": {"id": "x"}, "children": []}}
        MeshDocument.from_json(RICH_TEXT_SCHEMA, {"doc": {"children": [bad]}})
    assert info.value.rule == "suggestion"


@pytest.mark.interop
def test_a_yjs_peer_reads_and_writes_the_same_suggestions():
    doc = _doc()
    with doc.suggesting(author="agent") as s:
        insertion = s.insert_text(_paragraphs(doc)[0], 0, "Soon: ")
        deletion = s.delete_element(_paragraphs(doc)[1])
    mark = {"id": "js1", "author": "bob", "time": 5}
    out = _node(
        [doc.get_update()],
        [
            {"op": "format", "path": [0, 0], "index": 6, "length": 3,
             "marks": {"suggestion_delete": mark}},
            {"op": "attr", "path": [1], "key": "$suggestion", "value": None},
        ],
    )  # fmt: skip
    written = out["texts"][0][0]  # what y-prosemirror reads: a mark with its attributes
    assert written["insert"] == "Soon: "
    assert written["attributes"]["suggestion_insert"]["id"] == insertion
    assert written["attributes"]["suggestion_insert"]["author"] == "agent"
    doc.apply_update(out["diff"])
    listed = {x.id: (x.author, x.kind, x.text) for x in doc.suggestions()}
    assert listed == {insertion: ("agent", "insert", "Soon: "), "js1": ("bob", "delete", "The")}
    assert deletion not in listed  # the Yjs peer cleared that attribute (a rejection)
    doc.accept("js1")
    assert str(_paragraphs(doc)[0].text) == "Soon:  launch is in May."


# ------------------------------------------------------------------ convergence

REPLICAS = 3
AUTHORS = ["ann", "bob", "agent"]
OPS = [
    "suggest_insert_text",
    "suggest_delete_text",
    "suggest_rewrite",
    "suggest_insert_element",
    "suggest_delete_element",
    "type",
    "delete_element",
    "accept",
    "reject",
    "accept_all",
    "reject_all",
]
operation = st.tuples(
    st.integers(0, REPLICAS - 1),
    st.sampled_from(OPS),
    st.integers(0, 10_000),
    st.integers(0, 10_000),
    st.text(alphabet="ab é😀", min_size=1, max_size=4),
)


def _apply(doc: MeshDocument, replica: int, op: str, a: int, b: int, word: str) -> None:
    author = AUTHORS[(replica + a) % len(AUTHORS)]
    paragraphs = _paragraphs(doc)
    suggester = doc.suggesting(author=author)
    listed = doc.suggestions()
    if op in ("accept", "reject"):
        if listed:
            ids = [listed[a % len(listed)].id, "not-there"]
            (doc.accept if op == "accept" else doc.reject)(*ids)
        return
    if op in ("accept_all", "reject_all"):
        (doc.accept_all if op == "accept_all" else doc.reject_all)(author if b % 2 else None)
        return
    if op == "suggest_insert_element" or not paragraphs:
        suggester.insert_element(doc.root, a % (len(paragraphs) + 1), "paragraph").text.insert(
            0, word
        )
        return
    target = paragraphs[a % len(paragraphs)]
    text = target.text
    size = len(text)
    try:
        if op == "suggest_insert_text":
            suggester.insert_text(text, b % (size + 1), word)
        elif op == "suggest_delete_text" and size:
            start = b % size
            suggester.delete_text(text, start, 1 + (a % (size - start)))
        elif op == "suggest_rewrite":
            old = str(text)
            cut = b % (size + 1)
            suggester.rewrite_text(text, old[:cut] + " " + word + old[cut + 1 :])
        elif op == "suggest_delete_element":
            suggester.delete_element(target)
        elif op == "type":
            text.insert(b % (size + 1), word)
        elif op == "delete_element":
            target.delete()
    except StructureError:  # another author's pending insertion: refused, nothing written
        pass


def _sync(docs: list[MeshDocument], rng: random.Random) -> None:
    order = list(range(len(docs)))
    rng.shuffle(order)
    for i in order:
        for j in order:
            if i != j:
                docs[j].apply_update(docs[i].get_update(docs[j].get_state()))


@settings(
    max_examples=int(os.environ.get("MESHDOC_SUGGESTION_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    ops=st.lists(operation, min_size=1, max_size=25),
    syncs=st.lists(st.booleans(), min_size=25, max_size=25),
    seed=st.integers(0, 2**16),
    final=st.booleans(),
)
def test_replicas_suggesting_and_resolving_at_once_converge(ops, syncs, seed, final):
    rng = random.Random(seed)
    base = _doc("One two three.\n\nFour five.\n")
    docs = [MeshDocument.from_update(RICH_TEXT_SCHEMA, base.get_update()) for _ in range(REPLICAS)]
    for step, (replica, op, a, b, word) in enumerate(ops):
        _apply(docs[replica], replica, op, a, b, word)
        if syncs[step]:
            _sync(docs, rng)
    _sync(docs, rng)
    first = docs[0].to_json()
    assert all(doc.to_json() == first for doc in docs)
    assert all(doc.suggestions() == docs[0].suggestions() for doc in docs)
    assert not [v for v in docs[0].validate() if v.rule in ("suggestion", "mark-attribute")]
    for listed in docs[0].suggestions():
        assert isinstance(listed, Suggestion) and listed.kind in ("insert", "delete")

    # Two replicas resolve everything at once, one accepting and one rejecting; a third
    # resolves stale ids afterwards. All converge with nothing pending.
    stale = [x.id for x in docs[2].suggestions()]
    docs[0].accept_all() if final else docs[0].reject_all()
    docs[1].reject_all() if final else docs[1].accept_all()
    _sync(docs, rng)
    assert all(doc.suggestions() == [] for doc in docs)
    settled = docs[0].to_json()
    assert all(doc.to_json() == settled for doc in docs)
    assert docs[2].accept(*stale) == 0 and docs[2].reject(*stale) == 0
    assert docs[2].to_json() == settled
