"""The room-document check works on a mirrored scratch copy, judging only what an update changes.

These run long sequences of server edits, accepted, repaired and refused client
updates against one `Presence`, so a scratch copy that drifted from the live
document (a missed server edit, a refused update left in it) shows up as a
wrong verdict or a wrong repair.
"""

from __future__ import annotations

import pycrdt
import pytest

from meshroom.server._hooks import Access
from meshroom.server._presence import Presence


def _client_edit(doc: pycrdt.Doc, edit) -> bytes:  # type: ignore[no-untyped-def]
    client = pycrdt.Doc()
    client.apply_update(doc.get_update())
    state = client.get_state()
    edit(client)
    return client.get_update(state)


def _apply(presence: Presence, update: bytes, sender: str) -> str | None:
    def apply(repaired: bool) -> None:
        presence.doc.apply_update(update)

    problem = presence.apply_client_update(update, sender, apply)
    presence.trim()
    return problem


def _texts(presence: Presence) -> list[str]:
    return [m.get("text") for m in presence.messages.to_py()]


def test_verdicts_stay_right_over_many_edits():
    doc = pycrdt.Doc()
    presence = Presence(doc, max_messages=5)
    ann = Access(participant_id="ann", name="Ann")
    presence.join(ann)
    for number in range(12):
        presence.append("server", text=f"s{number}")
        ok = _client_edit(
            doc,
            lambda c, n=number: c.get("messages", type=pycrdt.Array).append(
                {"from": "ann", "text": f"a{n}", "time": n}
            ),
        )
        assert _apply(presence, ok, "ann") is None
        # Refused: deletes the newest message; nothing changes, later checks still right.
        delete = _client_edit(doc, lambda c: c.get("messages", type=pycrdt.Array).pop())
        before = _texts(presence)
        assert _apply(presence, delete, "ann") == "room messages can only be appended"
        assert _texts(presence) == before

        # Repaired: one forged and one own message in one update; only the own one stays.
        def forge(c: pycrdt.Doc, n: int = number) -> None:
            messages = c.get("messages", type=pycrdt.Array)
            messages.append({"from": "bob", "text": f"forged{n}", "time": n})
            messages.append({"from": "ann", "text": f"b{n}", "time": n})

        problem = _apply(presence, _client_edit(doc, forge), "ann")
        assert problem is not None and "may not claim" in problem
        assert _texts(presence)[-1] == f"b{number}"
        assert not any(text.startswith("forged") for text in _texts(presence))
        assert len(_texts(presence)) == min(5, 3 * (number + 1))

    # A participant write is repaired back to the server's entries.
    def rename(c: pycrdt.Doc) -> None:
        c.get("participants", type=pycrdt.Map)["ann"] = {"name": "Mallory"}

    assert _apply(presence, _client_edit(doc, rename), "ann") == (
        "participants are maintained by the server"
    )
    assert presence.snapshot()["ann"]["name"] == "Ann"


def test_a_check_alone_leaves_no_trace_in_later_checks():
    doc = pycrdt.Doc()
    presence = Presence(doc, max_messages=50)
    message = {"from": "ann", "text": "x", "time": 1}
    update = _client_edit(doc, lambda c: c.get("messages", type=pycrdt.Array).append(message))
    assert presence.check_client_update(update, "ann") is None
    assert presence.messages.to_py() in (None, [])
    # The same update, really applied now, is judged (and applied) like new.
    assert _apply(presence, update, "ann") is None
    assert _texts(presence) == ["x"]


def test_bytes_that_are_not_an_update_raise_and_change_nothing():
    doc = pycrdt.Doc()
    presence = Presence(doc, max_messages=5)
    presence.append("server", text="kept")
    with pytest.raises(ValueError, match="not a Yjs update"):
        _apply(presence, b"\x01\x02junk", "ann")
    assert _texts(presence) == ["kept"]
    other = _client_edit(doc, lambda c: c.get("elsewhere", type=pycrdt.Map).update({"x": 1}))
    problem = _apply(presence, other, "ann")
    assert "only has participants, documents, toolkits, queues, streams, messages" in problem
    assert "elsewhere" not in set(doc.keys())
    ok = _client_edit(
        doc,
        lambda c: c.get("messages", type=pycrdt.Array).append(
            {"from": "ann", "text": "after", "time": 2}
        ),
    )
    assert _apply(presence, ok, "ann") is None
    assert _texts(presence) == ["kept", "after"]
