"""A snapshot written by meshroom loads in Node Yjs with the same content."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pycrdt import Array, Doc, Map, Text, XmlElement, XmlFragment, XmlText

from meshroom import ChangePayload, LoadDocumentPayload, StoreDocumentPayload
from meshroom.storage import FsspecStorage, StorageExtension

pytestmark = [pytest.mark.anyio, pytest.mark.interop]


async def test_snapshot_loads_in_node_yjs(tmp_path: Path, node: Any) -> None:
    storage = FsspecStorage(str(tmp_path))
    async with StorageExtension(storage) as ext:
        doc = Doc()
        await ext.on_load_document(LoadDocumentPayload("interop", "notes/plan.md", doc))
        before = doc.get_state()
        with doc.transaction():
            text = doc.get("text", type=Text)
            text += "hello wörld 👋"
            text.format(0, 5, {"bold": True})
            doc.get("tokens", type=Array).extend(["a", 1, True, None, {"k": [1, 2]}])
            meta = doc.get("meta", type=Map)
            meta["title"] = "Plan"
            meta["version"] = 3
            fragment = doc.get("default", type=XmlFragment)
            paragraph = fragment.children.append(XmlElement("paragraph", {"id": "p1"}))
            paragraph.children.append(XmlText("first"))
        update = doc.get_update(before)
        await ext.on_change(ChangePayload("interop", "notes/plan.md", doc, update, origin=None))
        await ext.on_store_document(
            StoreDocumentPayload("interop", "notes/plan.md", doc, "room-close")
        )
    snapshot = tmp_path / "interop" / "docs" / "notes" / "plan.md.ydoc" / "snapshot.yjs"
    result = await node("storage_load.mjs", str(snapshot))
    assert result.returncode == 0, result.stderr
    (loaded,) = result.json_lines()
    assert loaded["text"] == "hello wörld 👋"
    assert loaded["bold"][0] == {"insert": "hello", "attributes": {"bold": True}}
    assert loaded["tokens"] == ["a", 1, True, None, {"k": [1, 2]}]
    assert loaded["meta"] == {"title": "Plan", "version": 3}
    assert loaded["xml"] == str(fragment) == '<paragraph id="p1">first</paragraph>'
