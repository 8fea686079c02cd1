"""Room names and document paths: what a URL may address."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshroom import RoomNameError
from meshroom.protocol._names import (
    MAX_PATH_LENGTH,
    MAX_SEGMENT_LENGTH,
    parse_target,
    validate_path,
    validate_room,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/room", ("room", "")),
        ("/my%20room", ("my room", "")),
        ("/my%20room/notes/plan.md", ("my room", "notes/plan.md")),
        ("/caf%C3%A9/r%C3%A9sum%C3%A9.md", ("café", "résumé.md")),
        ("/team/a%3Ab/c%3Fd.md", ("team", "a:b/c?d.md")),
        ("room/doc", ("room", "doc")),
        ("/日本/メモ", ("日本", "メモ")),
    ],
)
def test_parse_target(raw, expected):
    assert parse_target(raw) == expected


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ("/", "names no room"),
        ("", "names no room"),
        ("/room/", "empty segment"),
        ("//doc", "empty segment"),
        ("/room//doc", "empty segment"),
        ("/room/../other", r"'\.\.' segment"),
        ("/room/%2E%2E/other", r"'\.\.' segment"),
        ("/room/./doc", r"'\.' segment"),
        ("/..", r"'\.\.' segment"),
        ("/room/a%2Fb", "may not contain '/'"),
        ("/a%2Fb", "may not contain '/'"),
        ("/room/a%5Cb", r"may not contain '\\\\'"),
        ("/room/a%00b", "control character U\\+0000"),
        ("/room%0A", "control character U\\+000A"),
        ("/room/%FF", "not valid percent-encoded UTF-8"),
        ("/%20room", "whitespace"),
        ("/" + "r" * (MAX_SEGMENT_LENGTH + 1), "characters long"),
        ("/room/" + "/".join(["d"] * 40), "segments"),
    ],
)
def test_bad_targets_are_refused_with_a_reason(raw, match):
    with pytest.raises(RoomNameError, match=match):
        parse_target(raw)


def test_path_length_limit():
    segment = "s" * MAX_SEGMENT_LENGTH
    path = "/".join([segment] * (MAX_PATH_LENGTH // MAX_SEGMENT_LENGTH + 1))
    with pytest.raises(RoomNameError, match="characters long") as info:
        validate_path(path)
    assert info.value.name == path


def test_validate_room_and_path_direct():
    assert validate_room("team") == "team"
    assert validate_path("") == ""
    assert validate_path("a/b/c.md") == "a/b/c.md"
    with pytest.raises(RoomNameError, match="may not contain '/'"):
        validate_room("a/b")
    with pytest.raises(RoomNameError, match="must be a string"):
        validate_room(3)  # type: ignore[arg-type]
    with pytest.raises(RoomNameError):
        validate_path("/leading")
    assert issubclass(RoomNameError, ValueError)


_SAFE = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zs"), blacklist_characters="/\\"),
    min_size=1,
    max_size=20,
).filter(lambda s: s not in (".", ".."))


@given(_SAFE, st.lists(_SAFE, max_size=4))
def test_percent_encoded_names_round_trip(room, segments):
    from urllib.parse import quote

    raw = "/" + "/".join(quote(part, safe="") for part in [room, *segments])
    assert parse_target(raw) == (room, "/".join(segments))


@given(st.text(max_size=60))
def test_any_text_parses_or_raises_room_name_error(raw):
    try:
        room, path = parse_target(raw)
    except RoomNameError:
        return
    assert room and ".." not in path.split("/")
