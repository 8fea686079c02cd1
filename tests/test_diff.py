"""`meshdoc.diff` on documents built from real editing traces.

Each trace (data/traces) is replayed to two moments, half-way and the end; the first text
becomes a document with a paragraph per line, and the second is reached by editing that
document line by line as `difflib` says (paragraphs kept, rewritten, inserted, deleted,
one moved). The structural diff must report exactly those changes, by `$id`, and the
Markdown diff must patch the first rendering into the second.
"""

from __future__ import annotations

import difflib
import gzip
import json
import re
from pathlib import Path
from typing import Any

import pytest

from meshdoc import MeshDocument
from meshdoc.diff import diff_documents, markdown_diff, render_document
from meshdoc.markdown import from_markdown

TRACES = Path(__file__).resolve().parents[1] / "data" / "traces"


def replay(name: str) -> tuple[str, str]:
    """The trace's text half-way through and at its end."""
    with gzip.open(TRACES / f"{name}.json.gz", "rt", encoding="utf-8") as file:
        trace: dict[str, Any] = json.load(file)
    text = trace.get("startContent", "")
    middle = ""
    txns = trace["txns"]
    for number, txn in enumerate(txns):
        for position, deleted, inserted in txn["patches"]:
            text = text[:position] + inserted + text[position + deleted :]
        if number == len(txns) // 2:
            middle = text
    assert text == trace["endContent"]
    return middle, text


def lines_of(text: str) -> list[str]:
    return [line.strip() for line in text.split("\n") if line.strip()]


def apply_unified(old: str, patch: str) -> str:
    """Apply a unified diff (what `markdown_diff` writes) to `old`."""
    source = old.splitlines(keepends=True)
    out: list[str] = []
    at = 0
    hunk = re.compile(r"@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@")
    for line in patch.splitlines(keepends=True)[2:]:
        found = hunk.match(line)
        if found:
            start = int(found.group(1)) - (0 if found.group(2) == "0" else 1)
            out.extend(source[at:start])
            at = start
        elif line.startswith(" "):
            out.append(source[at])
            at += 1
        elif line.startswith("-"):
            at += 1
        elif line.startswith("+"):
            out.append(line[1:])
    out.extend(source[at:])
    return "".join(out)


@pytest.mark.parametrize("name", ["sveltecomponent", "seph-blog1", "rustcode"])
def test_a_diff_of_documents_built_from_a_trace(name: str) -> None:
    middle, end = replay(name)
    old_lines, new_lines = lines_of(middle), lines_of(end)
    before = MeshDocument(None)
    with before.transaction():
        for line in old_lines:
            before.root.append_child("paragraph").append_text(line)
    after = MeshDocument.from_update(None, before.get_update())
    elements = after.root.get_child_elements()
    expected = {"added": 0, "removed": 0, "moved": 0, "attributes": 0, "text": 0}
    rewritten: dict[str, tuple[str, str]] = {}
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    # right to left, so earlier indices stay valid
    for tag, i1, i2, j1, j2 in reversed(matcher.get_opcodes()):
        if tag == "equal":
            continue
        pairs = min(i2 - i1, j2 - j1) if tag == "replace" else 0
        for k in range(pairs):
            element = elements[i1 + k]
            text = element.text
            text.delete(0, len(str(text)))
            text.insert(0, new_lines[j1 + k])
            rewritten[element.id] = (old_lines[i1 + k], new_lines[j1 + k])
        for k in range(i1 + pairs, i2):
            elements[k].delete()
            expected["removed"] += 1
        anchor = i1 + pairs
        for k in range(j1 + pairs, j2):
            paragraph = after.root.insert_child_at(anchor + (k - j1 - pairs), "paragraph")
            paragraph.append_text(new_lines[k])
            expected["added"] += 1
    expected["text"] = sum(1 for old, new in rewritten.values() if old != new)
    # and one kept paragraph moves to the end
    kept = [e for e in after.root.get_child_elements() if e.id not in rewritten]
    moving = next(e for e in kept if before.get_node_by_id(e.id or "") is not None)
    moving.move(after.root)
    expected["moved"] = 1

    changes = diff_documents(before, after)
    assert changes.counts() == expected
    assert expected["added"] + expected["removed"] + expected["text"] > 10, "a real edit"
    for change in changes.changes:
        if change.kind == "text":
            assert (change.before, change.after) == rewritten[change.id]
        if change.kind == "moved":
            assert change.id == moving.id and change.parent == "" and change.from_parent == ""
    # the readable diff turns the old Markdown into the new
    old_markdown, new_markdown = render_document(before), render_document(after)
    assert apply_unified(old_markdown, changes.markdown) == new_markdown


def test_unchanged_documents_have_an_empty_diff() -> None:
    document = from_markdown("# Plan\n\n- one\n- two\n")
    copy = MeshDocument.from_update(None, document.get_update())
    changes = diff_documents(document, copy)
    assert not changes and changes.changes == [] and changes.markdown == ""
    assert markdown_diff("a\n", "a\n") == ""


def test_nested_moves_attributes_and_formatting() -> None:
    document = from_markdown("# Plan\n\n- one\n- two\n\n> quoted\n")
    copy = MeshDocument.from_update(None, document.get_update())
    heading, bullets, quote = copy.root.get_child_elements()
    first_item = bullets.get_child_elements()[0]
    first_item.move(quote)  # into another parent
    heading.set_attribute("level", 3)
    quoted = quote.get_child_elements()[0].text
    quoted.format(0, 6, {"bold": {}})  # same text, new formatting
    changes = diff_documents(document, copy)
    kinds = {(change.kind, change.id) for change in changes.changes}
    assert ("moved", first_item.id) in kinds
    assert ("attributes", heading.id) in kinds
    assert ("text", quote.get_child_elements()[0].id) in kinds
    moved = next(change for change in changes.changes if change.kind == "moved")
    assert moved.from_parent == bullets.id and moved.parent == quote.id
    attributes = next(change for change in changes.changes if change.kind == "attributes")
    assert attributes.attributes == {"level": [1, 3]}
    assert changes.to_json()["counts"]["moved"] == 1
