"""MeshDocument: layout in the Yjs doc, encode/decode, transactions with origins, events."""

from __future__ import annotations

import pytest
from _meshdoc_schemas import article_schema
from pycrdt import Doc, XmlFragment

from meshdoc import (
    DocumentEvent,
    MeshDocument,
    SchemaError,
    TransactionError,
    UpdateError,
)


def test_root_is_the_fragment_itself_named_default():
    doc = MeshDocument(article_schema())
    doc.root.append_child("paragraph").text.insert(0, "hi")
    raw = Doc()
    raw.apply_update(doc.get_update())
    fragment = raw.get("default", type=XmlFragment)
    (child,) = list(fragment.children)
    assert child.tag == "paragraph"  # no wrapper element around the content
    assert str(child.children[0]) == "hi"


def test_wrapping_an_existing_doc_writes_nothing():
    raw = Doc()
    state = raw.get_state()
    doc = MeshDocument(article_schema(), doc=raw, fragment="prosemirror")
    doc.to_json()
    doc.validate()
    assert raw.get_state() == state
    assert doc.doc is raw and doc.fragment_name == "prosemirror"


def test_update_round_trip_and_from_update():
    doc = MeshDocument(article_schema())
    doc.root.set_attribute("title", "T")
    doc.root.append_child("heading", {"level": 1}).text.insert(0, "Title")
    copy = MeshDocument.from_update(article_schema(), doc.get_update())
    assert copy.to_json() == doc.to_json()
    # incremental: only what the peer lacks
    state = copy.get_state()
    doc.root.append_child("paragraph")
    delta = doc.get_update(state)
    assert len(delta) < len(doc.get_update())
    copy.apply_update(delta)
    assert copy.to_json() == doc.to_json()
    assert copy.get_update(doc.get_state()) == doc.get_update(doc.get_state())


def test_bad_update_bytes_raise_update_error_and_change_nothing():
    doc = MeshDocument(article_schema())
    doc.root.append_child("paragraph")
    before = doc.get_update()
    with pytest.raises(UpdateError):
        doc.apply_update(b"\x01\x02garbage")
    with pytest.raises(UpdateError):
        doc.apply_update("not bytes")  # type: ignore[arg-type]
    with pytest.raises(UpdateError):
        MeshDocument.from_update(None, b"\xff\xff\xff")
    assert doc.get_update() == before


def test_transactions_group_edits_and_carry_origin():
    doc = MeshDocument(article_schema())
    events: list[DocumentEvent] = []
    sub = doc.observe(events.append)
    with doc.transaction(origin="alice"):
        a = doc.root.append_child("paragraph")
        a.text.insert(0, "one")
        with doc.transaction():  # nested: joins
            b = doc.root.append_child("paragraph")
        with doc.transaction(origin="alice"):  # same origin: joins
            b.set_attribute("align", "left")
    assert len(events) == 1
    (event,) = events
    assert event.origin == "alice" and event.root_changed
    assert event.update  # the bytes to send to peers
    peer = MeshDocument(article_schema())
    peer.apply_update(event.update)
    assert peer.to_json() == doc.to_json()
    a.set_attribute("align", "center")  # default origin
    assert events[-1].origin == "local" and events[-1].element_ids == [a.id]
    a.text.insert(3, "!")
    assert events[-1].element_ids == [a.id] and not events[-1].root_changed
    doc.unobserve(sub)
    doc.root.append_child("paragraph")
    assert len(events) == 3


def test_nested_transaction_with_other_origin_is_refused():
    doc = MeshDocument(None)
    with doc.transaction(origin="alice"), pytest.raises(TransactionError):
        doc.transaction(origin="bob")
    with doc.transaction(origin="bob"):
        doc.root.append_child("p")
    assert len(doc.root.get_children()) == 1


def test_transactions_behave_as_pycrdt_ones():
    """`MeshDocument.transaction` opens a leaner transaction than pycrdt's, with its behaviour:
    raw pycrdt calls join it, raw observers see its origin, observer errors surface on exit
    and leave no transaction open, undo tracks its origin."""
    doc = MeshDocument(None, origin="agent")
    text = doc.root.append_child("p").text
    origins = []
    sub = doc.doc.observe(lambda event: origins.append(doc.doc._txn.origin))
    with doc.transaction() as txn:
        assert doc.doc.transaction() is txn and txn.origin == "agent"
        text.insert(0, "ab")
        text.ytext.insert(2, "c")  # pycrdt's own call joins the transaction
    assert origins == ["agent"] and str(text) == "abc"
    with pytest.raises(RuntimeError):
        txn.origin  # noqa: B018 - over
    sub.drop()

    def fail(event: object) -> None:
        raise KeyError("observer")

    sub = doc.doc.observe(fail)
    with pytest.raises(Exception) as caught, doc.transaction(origin="bob"):
        text.insert(0, "x")
    assert isinstance(caught.value.exceptions[0], KeyError)  # an ExceptionGroup, as pycrdt's
    sub.drop()
    assert doc.doc._txn is None and str(text) == "xabc"
    undo = doc.undo_manager()
    with doc.transaction():
        text.insert(0, "y")
    with doc.transaction(origin="bob"):
        text.insert(0, "z")
    assert undo.undo() and str(text) == "zxabc"


def test_remote_updates_reach_observers_with_their_origin():
    doc = MeshDocument(None)
    seen: list[DocumentEvent] = []
    doc.observe(seen.append)
    peer = MeshDocument(None, origin="peer")
    p = peer.root.append_child("p")
    doc.apply_update(peer.get_update(), origin="net")
    p.set_attribute("x", 1)
    doc.apply_update(peer.get_update(doc.get_state()))
    assert [e.origin for e in seen] == ["net", None]
    assert seen[0].root_changed and seen[1].element_ids == [p.id]
    doc.root.set_attribute("k", "v")
    assert seen[-1].root_changed and seen[-1].origin == "local"


def test_custom_default_origin_and_json_round_trip_of_root_attributes():
    doc = MeshDocument(article_schema(), origin="agent-7")
    events: list[DocumentEvent] = []
    doc.observe(events.append)
    doc.root.set_attribute("title", "x")
    assert events[0].origin == "agent-7"
    again = MeshDocument.from_json(article_schema(), doc.to_json())
    assert again.root.get_attribute("title") == "x"


def test_untyped_root_tag_round_trips():
    data = {"article": {"lang": "en", "children": [{"p": {"$id": "p1", "children": []}}]}}
    doc = MeshDocument.from_json(None, data)
    assert doc.root.tag_name == "article" and doc.to_json() == data
    assert doc.root.attributes == {"lang": "en"}
    with pytest.raises(SchemaError):
        MeshDocument.from_json(article_schema(), data)


def test_out_of_order_updates_all_arrive():
    """Updates delivered before their dependencies are integrated once those arrive.

    pycrdt 0.14 (yrs) drops some parked updates in orders like this one; the document
    re-applies what is still unsettled, so the text below is not lost.
    """
    source = MeshDocument(None)
    updates: list[bytes] = []
    source.observe(lambda event: updates.append(event.update))
    para = source.root.append_child("p")
    text = para.append_text()
    text.insert(0, "a", {"bold": {}})
    source.root.append_child("q")
    text.delete(0, 1)
    para.set_attribute("x", "1")
    text.insert(0, "zz")
    assert len(updates) == 7
    for order in [(0, 1, 3, 4, 5, 6, 2), (0, 3, 4, 5, 6, 2, 1), (6, 5, 4, 3, 2, 1, 0)]:
        replica = MeshDocument(None)
        for i in order:
            replica.apply_update(updates[i])
        assert replica.to_json() == source.to_json(), order


def test_readme_example_and_embed_example_run():
    import contextlib
    import io
    import re
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    readme = (repo / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Embed a document", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```py\n(.*?)```", section, re.S).group(1)
    assert len(code.strip().splitlines()) <= 10
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    assert re.fullmatch(
        r'<paragraph \$id="[0-9a-f-]{36}" align="center"><bold>Hello</bold></paragraph>\n',
        out.getvalue(),
    )
    proc = subprocess.run(
        [sys.executable, str(repo / "examples" / "embed.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "Refused:" in proc.stdout and "Schema violations: []" in proc.stdout


@pytest.mark.parametrize(
    "module", ["schema._schema", "tree._document", "tree._element", "tree._undo", "text._ranges"]
)
def test_docstring_examples_run(module):
    import importlib
    import re

    import meshdoc

    source = importlib.import_module(f"meshdoc.{module}").__doc__ or ""
    blocks = re.findall(r"```py\n(.*?)```", source, re.S)
    assert blocks, f"meshdoc.{module} has no example"
    namespace = {name: getattr(meshdoc, name) for name in meshdoc.__all__}
    for block in blocks:
        exec(compile(block, f"meshdoc.{module} docstring", "exec"), dict(namespace))
