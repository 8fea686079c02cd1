"""Grants: room and path patterns, the room document, most generous grant wins."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshroom.auth import Grant, match_pattern, resolve_mode


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("*", "notes/plan.md", True),
        ("*", "a", True),
        ("notes/*", "notes/plan.md", True),
        ("notes/*", "notes/2026/q4.md", True),
        ("notes/*", "notes", False),
        ("notes/*", "secrets/notes/a", False),
        ("draft-?.md", "draft-1.md", True),
        ("draft-?.md", "draft-10.md", False),
        ("a.md", "a.md", True),
        ("a.md", "aXmd", False),  # '.' is literal
        ("[ab].md", "a.md", False),  # brackets are literal
        ("[ab].md", "[ab].md", True),
        ("team-*", "team-red", True),
    ],
)
def test_match_pattern(pattern, value, expected):
    assert match_pattern(pattern, value) is expected


def test_room_document_admitted_by_any_grant_for_the_room():
    reader = Grant("team", ["notes/*"], read_only=True)
    room_only = Grant("team", [])
    assert reader.admits("team", "") and room_only.admits("team", "")
    assert not room_only.admits("team", "notes/a.md")
    assert resolve_mode([reader], "team", "") == "read-only"
    assert resolve_mode([reader, Grant("team", ["x"])], "team", "") == "read-write"
    assert resolve_mode([reader], "other", "") is None


def test_most_generous_grant_wins():
    grants = [Grant("team", ["*"], read_only=True), Grant("team", ["notes/*"])]
    assert resolve_mode(grants, "team", "notes/a.md") == "read-write"
    assert resolve_mode(grants, "team", "budget.md") == "read-only"
    assert resolve_mode(grants, "elsewhere", "notes/a.md") is None


def test_claim_roundtrip_and_validation():
    grant = Grant("team", ("notes/*", "a.md"), read_only=True)
    assert Grant.from_claim(grant.to_claim()) == grant
    assert grant.to_claim() == {"room": "team", "paths": ["notes/*", "a.md"], "mode": "read-only"}
    for bad in [
        "team",
        {"room": "team", "mode": "admin"},
        {"room": "", "paths": ["*"]},
        {"room": 3},
        {"room": "team", "paths": "notes/*"},
        {"room": "team", "paths": [""]},
        {"room": "team", "paths": ["/abs"]},
        {"room": "team", "extra": 1},
    ]:
        with pytest.raises(ValueError):
            Grant.from_claim(bad)
    with pytest.raises(ValueError, match="single string"):
        Grant("team", "notes/*")  # type: ignore[arg-type]


_names = st.text(alphabet="ab/.-", min_size=1, max_size=8)


@given(_names)
def test_literal_pattern_matches_only_itself(name):
    assert match_pattern(name, name)
    assert not match_pattern(name, name + "x")
    assert match_pattern("*", name)


def test_room_permissions_in_claims_and_resolved_most_generous():
    from meshroom.auth._grants import resolve_permissions

    muted = Grant("team", read_only=True, messages=False, offer_tools=False, call_tools=False)
    claim = muted.to_claim()
    assert claim == {
        "room": "team",
        "paths": ["*"],
        "mode": "read-only",
        "messages": False,
        "offer_tools": False,
        "call_tools": False,
    }
    assert Grant.from_claim(claim) == muted
    assert "messages" not in Grant("team").to_claim()  # what is on is not written
    old = Grant.from_claim({"room": "team", "paths": ["*"], "mode": "read-only"})
    assert (old.messages, old.offer_tools, old.call_tools) == (True, True, True)
    assert resolve_permissions([muted], "team") == {
        "may_message": False,
        "may_offer_tools": False,
        "may_call_tools": False,
    }
    # one grant of the room allowing it is enough, whatever its paths
    both = [muted, Grant("team", ["notes/*"], offer_tools=False)]
    assert resolve_permissions(both, "team") == {
        "may_message": True,
        "may_offer_tools": False,
        "may_call_tools": True,
    }
    assert (
        resolve_permissions([Grant("other", messages=False), muted], "other")["may_message"]
        is False
    )
    for bad in [{"room": "team", "messages": "no"}, {"room": "team", "call_tools": 0}]:
        with pytest.raises(ValueError, match="true or false"):
            Grant.from_claim(bad)
    with pytest.raises(ValueError, match="must be a boolean"):
        Grant("team", messages=None)  # type: ignore[arg-type]
