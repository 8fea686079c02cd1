"""TextNode: code-point indices over pycrdt's byte offsets, marks, errors, origins, sticky
positions, and unicode interop with Yjs running in Node."""

from __future__ import annotations

import base64
import json
import random
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Assoc, Doc, UndoManager, XmlElement, XmlFragment, XmlText

from meshdoc import StickyPosition, TextNode

NODE_DIR = Path(__file__).resolve().parent / "node"


class StandIn:
    """The two things TextNode needs from a MeshDocument: `.doc` and nesting transactions."""

    def __init__(self, doc: Doc | None = None) -> None:
        self.doc = doc or Doc()

    @contextmanager
    def transaction(self, origin: Any = None):
        with self.doc.transaction(origin=origin) as txn:
            yield txn


def make_text(doc: Doc | None = None, root: str = "default") -> tuple[StandIn, TextNode]:
    document = StandIn(doc)
    fragment = document.doc.get(root, type=XmlFragment)
    paragraph = fragment.children.append(XmlElement("paragraph"))
    ytext = paragraph.children.append(XmlText())
    return document, TextNode(document, ytext)


def first_text(doc: Doc, root: str = "default") -> TextNode:
    paragraph = doc.get(root, type=XmlFragment).children[0]
    return TextNode(doc, paragraph.children[0])


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def run_node(payload: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run(
        ["node", "text_peer.mjs"],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        cwd=NODE_DIR,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


# -- code points over bytes ----------------------------------------------------------------


def test_issue_example_inserts_inside_the_accent_where_asked():
    _, node = make_text()
    node.insert(0, "héllo😀x")
    assert len(node) == 7
    node.insert(2, "_")
    assert str(node) == "hé_llo😀x"
    node.insert(7, "!")
    assert str(node) == "hé_llo😀!x"
    node.delete(6, 1)
    assert str(node) == "hé_llo!x"


def test_cjk_and_emoji_edits_match_python_strings():
    _, node = make_text()
    model = ""
    rng = random.Random(7)
    alphabet = ["a", "é", "漢", "字", "😀", "👍🏽", "ß", " ", "\u0301", "𝄞"]
    for _ in range(300):
        if model and rng.random() < 0.35:
            i = rng.randrange(len(model))
            n = rng.randint(1, min(4, len(model) - i))
            node.delete(i, n)
            model = model[:i] + model[i + n :]
        else:
            i = rng.randint(0, len(model))
            s = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 3)))
            node.insert(i, s)
            model = model[:i] + s + model[i:]
        assert str(node) == model
    assert len(node) == len(model)


def test_ascii_cache_sees_foreign_non_ascii_writes_in_the_same_transaction():
    document, node = make_text()
    node.insert(0, "abcdef")
    with document.transaction():
        node.ytext.insert(0, "é")  # raw pycrdt write: one code point, two bytes
        node.insert(3, "X")
    assert str(node) == "éabXcdef"


def test_format_and_delta():
    _, node = make_text()
    node.insert(0, "漢字 and 😀 bold")
    node.format(9, 4, {"bold": True})
    node.format(0, 2, {"link": {"href": "https://example.org"}})
    assert node.to_delta() == [
        {"insert": "漢字", "attributes": {"link": {"href": "https://example.org"}}},
        {"insert": " and 😀 "},
        {"insert": "bold", "attributes": {"bold": True}},
    ]
    node.format(9, 2, {"bold": None})
    assert node.to_delta()[-2:] == [
        {"insert": " and 😀 bo"},
        {"insert": "ld", "attributes": {"bold": True}},
    ]
    node.insert(2, "!", {"italic": True})
    assert node.to_delta()[1] == {"insert": "!", "attributes": {"italic": True}}
    assert str(node) == "漢字! and 😀 bold"


def test_replace_is_one_edit():
    document, node = make_text()
    node.insert(0, "hello wörld")
    seen: list[Any] = []
    document.doc.observe(lambda event: seen.append(event))
    node.replace(6, 5, "🌍", {"bold": True})
    assert str(node) == "hello 🌍"
    assert len(seen) == 1


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda n: n.insert(99, "x"), IndexError),
        (lambda n: n.insert(-1, "x"), IndexError),
        (lambda n: n.insert(True, "x"), TypeError),
        (lambda n: n.insert(0, b"x"), TypeError),
        (lambda n: n.insert(0, "a\ud83dz"), ValueError),
        (lambda n: n.insert(0, "x", {"bold": object()}), TypeError),
        (lambda n: n.insert(0, "x", {"size": float("nan")}), ValueError),
        (lambda n: n.insert(0, "x", {"": True}), TypeError),
        (lambda n: n.delete(2, -1), ValueError),
        (lambda n: n.delete(5, 3), IndexError),
        (lambda n: n.delete(0, 1.0), TypeError),
        (lambda n: n.format(0, 2, {}), ValueError),
        (lambda n: n.format(0, 2, ["bold"]), TypeError),
        (lambda n: n.format(3, 9, {"bold": True}), IndexError),
        (lambda n: n.replace(5, 2, "x"), IndexError),
        (lambda n: n.replace(0, 2, "\udc00"), ValueError),
        (lambda n: n.sticky_index(8), IndexError),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(call, error):
    document, node = make_text()
    node.insert(0, "ab😀cd")
    before = document.doc.get_update()
    with pytest.raises(error):
        call(node)
    assert document.doc.get_update() == before
    assert str(node) == "ab😀cd"


def test_marks_the_schema_does_not_declare_are_refused_before_writing():
    from _meshdoc_schemas import article_schema

    from meshdoc import MeshDocument, SchemaError

    doc = MeshDocument(article_schema())
    text = doc.root.append_child("paragraph").text
    text.insert(0, "hello")
    before = doc.doc.get_update()
    for call in (
        lambda: text.insert(0, "x", {"sparkle": True}),
        lambda: text.format(0, 2, {"sparkle": True}),
        lambda: text.replace(0, 2, "x", {"sparkle": True}),
    ):
        with pytest.raises(SchemaError):
            call()
    assert doc.doc.get_update() == before
    text.format(0, 2, {"bold": {}})  # y-prosemirror marks: an object of mark attributes
    assert text.to_delta()[0] == {"insert": "he", "attributes": {"bold": {}}}


def test_constructor_checks_its_arguments():
    document, node = make_text()
    with pytest.raises(TypeError):
        TextNode(document, document.doc.get("default", type=XmlFragment))
    with pytest.raises(ValueError):
        TextNode(StandIn(), node.ytext)


def test_edits_carry_the_transaction_origin_for_undo_and_observers():
    document, node = make_text()
    fragment = document.doc.get("default", type=XmlFragment)
    undo = UndoManager(scopes=[fragment], capture_timeout_millis=0)
    undo.include_origin("agent")
    origins: list[Any] = []
    node.ytext.observe(lambda event: origins.append(event.transaction.origin))
    with document.transaction(origin="person"):
        node.insert(0, "people 😀 ")
    with document.transaction(origin="agent"):
        node.insert(9, "agent ✨ text")
        node.format(0, 6, {"bold": True})
    with document.transaction(origin="person"):
        node.insert(len(node), " end")
    assert origins == ["person", "agent", "person"]
    assert str(node) == "people 😀 agent ✨ text end"
    assert undo.undo()
    assert str(node) == "people 😀  end"
    assert node.to_delta() == [{"insert": "people 😀  end"}]


def test_embeds_take_one_position():
    _, node = make_text()
    node.insert(0, "a😀b")
    node.ytext.insert_embed(5, {"image": "cat.png"})  # raw pycrdt: byte offset
    assert len(node) == 4
    assert str(node) == "a😀\ufffcb"
    node.insert(3, "é")
    assert node.to_delta() == [
        {"insert": "a😀"},
        {"insert": {"image": "cat.png"}},
        {"insert": "éb"},
    ]


# -- sticky positions ----------------------------------------------------------------------


def test_sticky_positions_round_trip_at_every_index():
    _, node = make_text()
    node.insert(0, "hé😀漢x")
    node.format(1, 2, {"bold": True})
    node.delete(4, 1)
    node.insert(4, "yz")
    for index in range(len(node) + 1):
        for assoc in (Assoc.AFTER, Assoc.BEFORE):
            position = node.sticky_index(index, assoc)
            again = StickyPosition.from_json(json.loads(json.dumps(position.to_json())))
            assert node.index_of(again) == index, (index, assoc, position)


def test_sticky_position_follows_concurrent_remote_edits():
    document, node = make_text()
    node.insert(0, "😀 stay here 漢字")
    cursor = node.sticky_index(2)  # sticks to the "s" of "stay"
    end = node.sticky_index(len(node))
    start = node.sticky_index(0, Assoc.BEFORE)
    remote = Doc()
    remote.apply_update(document.doc.get_update())
    remote_node = first_text(remote)
    remote_node.insert(0, "ébauche ")
    node.insert(len(node), " fin")
    node.delete(0, 2)
    document.doc.apply_update(remote.get_update(document.doc.get_state()))
    assert str(node) == "ébauche stay here 漢字 fin"
    assert node.index_of(cursor) == str(node).index("stay")
    assert node.index_of(end) == len(node)
    assert node.index_of(start) == 0


def test_sticky_to_deleted_character_lands_where_it_was():
    _, node = make_text()
    node.insert(0, "abc😀def")
    after = node.sticky_index(3)
    before = node.sticky_index(4, Assoc.BEFORE)
    node.delete(2, 3)
    assert str(node) == "abef"
    assert node.index_of(after) == 2
    assert node.index_of(before) == 2


def test_sticky_position_from_another_text_is_refused():
    document, node = make_text()
    node.insert(0, "one")
    other = TextNode(
        document,
        document.doc.get("default", type=XmlFragment)
        .children.append(XmlElement("p"))
        .children.append(XmlText()),
    )
    other.insert(0, "two")
    with pytest.raises(ValueError):
        node.index_of(other.sticky_index(1))
    with pytest.raises(ValueError):
        node.index_of(other.sticky_index(3))
    with pytest.raises(ValueError):
        StickyPosition.from_json({"item": {"client": -1, "clock": 0}})
    with pytest.raises(ValueError):
        StickyPosition.from_json({"assoc": 0})
    with pytest.raises(TypeError):
        node.index_of({"item": {"client": 1, "clock": 0}})


# -- Yjs in Node ---------------------------------------------------------------------------


@pytest.mark.interop
def test_yjs_late_joiner_reads_python_unicode_edits():
    document, node = make_text()
    node.insert(0, "héllo 😀 wörld 漢字")
    node.insert(7, "👍🏽")  # right after the first emoji
    node.insert(6, "✨")  # right before it
    node.format(0, 5, {"bold": True})
    node.delete(16, 2)
    node.insert(len(node), " 𝄞")
    out = run_node({"updates": [b64(document.doc.get_update())]})
    assert out["text"] == str(node)
    assert out["delta"] == node.to_delta()


@pytest.mark.interop
def test_yjs_edits_at_code_point_boundaries_read_back_in_python():
    document, node = make_text()
    node.insert(0, "a😀b漢c")
    ops = [
        ["insert", 2, "é"],
        ["insert", 1, "🎉"],
        ["delete", 4, 1],
        ["format", 0, 3, {"italic": True}],
    ]
    out = run_node({"updates": [b64(document.doc.get_update())], "ops": ops})
    document.doc.apply_update(base64.b64decode(out["update"]))
    assert str(node) == out["text"] == "a🎉😀é漢c"
    assert node.to_delta() == out["delta"]
    node.insert(3, "ü")  # between the emoji and é, Python side
    late = run_node({"updates": [b64(document.doc.get_update())]})
    assert late["text"] == str(node)


@pytest.mark.interop
def test_same_ops_same_text_in_python_and_yjs():
    rng = random.Random(11)
    alphabet = ["x", "é", "漢", "😀", "👩‍👩‍👧", "𝄞", "\u0301", "ÿ"]
    ops: list[list[Any]] = []
    document, node = make_text()
    for _ in range(150):
        size = len(node)
        roll = rng.random()
        if size and roll < 0.3:
            i = rng.randrange(size)
            n = rng.randint(1, min(3, size - i))
            ops.append(["delete", i, n])
            node.delete(i, n)
        elif size and roll < 0.45:
            i = rng.randrange(size)
            n = rng.randint(1, size - i)
            attrs = {rng.choice(["bold", "italic"]): rng.choice([True, None])}
            ops.append(["format", i, n, attrs])
            node.format(i, n, attrs)
        else:
            i = rng.randint(0, size)
            s = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 3)))
            ops.append(["insert", i, s])
            node.insert(i, s)
    fresh = run_node({"create": True, "ops": ops})
    assert fresh["text"] == str(node)
    late = run_node({"updates": [b64(document.doc.get_update())]})
    assert late["text"] == str(node)
    assert late["delta"] == node.to_delta()


@pytest.mark.interop
def test_sticky_positions_resolve_the_same_in_yjs():
    document, node = make_text()
    node.insert(0, "é😀漢 ab")
    made = [node.sticky_index(i, a).to_json() for i in range(7) for a in (0, -1)]
    out = run_node(
        {
            "updates": [b64(document.doc.get_update())],
            "ops": [["insert", 0, "𝄞 "]],
            "resolve": made,
            "make": [[i, a] for i in range(9) for a in (0, -1)],
        }
    )
    document.doc.apply_update(base64.b64decode(out["update"]))
    assert str(node) == "𝄞 é😀漢 ab"
    # a BEFORE position at 0 is the start of the text: text typed there goes after it
    expected = [0 if (i, a) == (0, -1) else i + 2 for i in range(7) for a in (0, -1)]
    assert out["resolved"] == expected
    assert [node.index_of(position) for position in map(StickyPosition.from_json, made)] == expected
    from_yjs = [node.index_of(StickyPosition.from_json(p)) for p in out["made"]]
    assert from_yjs == [i for i in range(9) for _ in (0, -1)]
