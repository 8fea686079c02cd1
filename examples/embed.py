"""Embed a document: a typed, collaborative element tree in plain Python (no server).

Run: pip install -e . && python examples/embed.py
"""

from __future__ import annotations

import json

from meshdoc import (
    ChildProperty,
    ElementType,
    MeshDocument,
    MeshSchema,
    SchemaError,
    ValueProperty,
)

schema = MeshSchema(
    "doc",
    elements=[
        ElementType("doc", properties=[ChildProperty("children", ["heading", "paragraph"])]),
        ElementType(
            "heading",
            properties=[ValueProperty("level", type="number", enum=[1, 2, 3], required=True)],
            rich_text=True,
        ),
        ElementType(
            "paragraph",
            properties=[ValueProperty("align", enum=["left", "center", "right"])],
            rich_text=True,
        ),
    ],
)


def main() -> None:
    # A person writes a heading and a paragraph.
    alice = MeshDocument(schema, origin="alice")
    alice.root.append_child("heading", {"level": 1}).text.insert(0, "Launch plan")
    para = alice.root.append_child("paragraph")
    para.text.insert(0, "Ship on Friday.", {"bold": {}})

    # An agent works on its own replica; Yjs updates carry the edits both ways.
    agent = MeshDocument.from_update(schema, alice.get_update(), origin="agent")
    agent_para = agent.get_node_by_id(para.id)
    agent_para.text.insert(len(agent_para.text), " Tests are green.")
    agent_para.set_attribute("align", "center")
    alice.root.append_child("paragraph").text.insert(0, "Alice adds a note meanwhile.")
    alice.apply_update(agent.get_update(alice.get_state()))
    agent.apply_update(alice.get_update(agent.get_state()))
    assert alice.to_json() == agent.to_json()

    print("Converged document (what a Yjs editor shows):")
    print(" ", alice.to_xml())

    # The schema refuses a bad write, and nothing changes.
    try:
        para.set_attribute("align", "diagonal")
    except SchemaError as exc:
        print(f"\nRefused: {exc}")

    # The agent undoes its own edits only; Alice's note stays.
    undo = agent.undo_manager()
    agent_para.text.insert(0, "DRAFT: ")
    undo.undo()
    print(f"\nAfter the agent's undo: {str(agent_para.text)!r}")

    print("\nOne element as JSON (the shape schema.to_json() describes for LLMs):")
    print(" ", json.dumps(alice.get_node_by_id(para.id).to_json(), ensure_ascii=False))
    print(f"\nSchema violations: {alice.validate()}")


if __name__ == "__main__":
    main()
