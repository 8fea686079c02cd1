"""The y-websocket codec against pycrdt's reference helpers, and its refusal of bad bytes."""

from __future__ import annotations

import contextlib
import json

import pycrdt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshroom import ProtocolError
from meshroom.protocol._messages import (
    AuthMessage,
    AwarenessEntry,
    AwarenessMessage,
    QueryAwarenessMessage,
    SyncMessage,
    SyncStep,
    UnknownMessage,
    decode_auth_token,
    decode_awareness_update,
    decode_message,
    decode_permission_denied,
    encode_auth_token,
    encode_awareness,
    encode_awareness_update,
    encode_permission_denied,
    encode_query_awareness,
    encode_sync_step1,
    encode_sync_step2,
    encode_update,
    update_payload,
    write_var_string,
    write_var_uint,
)


def _doc_with_text(content: str) -> pycrdt.Doc:
    doc = pycrdt.Doc()
    doc.get("t", type=pycrdt.Text).insert(0, content)
    return doc


@pytest.mark.parametrize("number", [0, 1, 127, 128, 300, 16383, 16384, 2**32, 2**53 - 1])
def test_var_uint_matches_pycrdt(number):
    assert write_var_uint(number) == pycrdt.write_var_uint(number)
    # Decoding reads it back (as the type of an unknown message, past the known ones).
    assert decode_message(write_var_uint(number + 6) + b"z") == UnknownMessage(number + 6, b"z")
    if number <= 16384:
        framed = b"\x01" + write_var_uint(number) + b"x" * number
        assert decode_message(framed) == AwarenessMessage(b"x" * number)


def test_var_uint_refuses_negative():
    with pytest.raises(ValueError, match=">= 0"):
        write_var_uint(-1)


def test_sync_messages_match_pycrdt():
    doc = _doc_with_text("hello")
    assert encode_sync_step1(doc.get_state()) == pycrdt.create_sync_message(doc)
    update = doc.get_update()
    assert encode_update(update) == pycrdt.create_update_message(update)
    # Step 2 as pycrdt answers a step 1.
    reply = pycrdt.handle_sync_message(pycrdt.create_sync_message(pycrdt.Doc())[1:], doc)
    assert reply == encode_sync_step2(doc.get_update(b"\x00"))


def test_decode_round_trips():
    update = _doc_with_text("x").get_update()
    assert decode_message(encode_sync_step1(b"\x00")) == SyncMessage(SyncStep.STEP1, b"\x00")
    assert decode_message(encode_sync_step2(update)) == SyncMessage(SyncStep.STEP2, update)
    assert decode_message(encode_update(update)) == SyncMessage(SyncStep.UPDATE, update)
    assert decode_message(encode_awareness(b"\x00")) == AwarenessMessage(b"\x00")
    assert decode_message(encode_query_awareness()) == QueryAwarenessMessage()
    auth = decode_message(encode_auth_token("tok€n"))
    assert isinstance(auth, AuthMessage)
    assert decode_auth_token(auth.body) == "tok€n"
    denied = decode_message(encode_permission_denied("no access"))
    assert isinstance(denied, AuthMessage)
    assert decode_permission_denied(denied.body) == "no access"


def test_decoded_update_applies_in_pycrdt():
    source = _doc_with_text("shared")
    message = decode_message(encode_update(source.get_update()))
    target = pycrdt.Doc()
    target.apply_update(message.payload)
    assert str(target.get("t", type=pycrdt.Text)) == "shared"


def test_unknown_message_types_are_returned_not_raised():
    assert decode_message(b"\x07abc") == UnknownMessage(7, b"abc")
    big_type = write_var_uint(300) + b"\x01"
    assert decode_message(big_type) == UnknownMessage(300, b"\x01")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "truncated var-uint"),
        (b"\x80", "truncated var-uint"),
        (b"\x00", "truncated var-uint"),
        (b"\x00\x05\x00", "unknown sync step 5"),
        (b"\x00\x02\x05ab", "runs past the end"),
        (b"\x01\x10\x00", "runs past the end"),
        (b"\xff" * 9 + b"\x01", "var-uint longer than 8 bytes"),
    ],
)
def test_malformed_messages_raise_protocol_error(data, match):
    with pytest.raises(ProtocolError, match=match):
        decode_message(data)


def test_awareness_update_matches_pycrdt():
    doc = pycrdt.Doc()
    awareness = pycrdt.Awareness(doc)
    awareness.set_local_state({"user": {"name": "Ann"}, "cursor": None})
    reference = awareness.encode_awareness_update([doc.client_id])
    entries = decode_awareness_update(reference)
    assert entries == [AwarenessEntry(doc.client_id, 1, {"user": {"name": "Ann"}, "cursor": None})]
    assert encode_awareness_update(entries) == reference
    # And pycrdt reads ours (removal with `null`).
    other = pycrdt.Awareness(pycrdt.Doc())
    other.apply_awareness_update(reference, "test")
    assert other.states[doc.client_id]["user"]["name"] == "Ann"
    removal = encode_awareness_update([AwarenessEntry(doc.client_id, 2, None)])
    other.apply_awareness_update(removal, "test")
    assert doc.client_id not in other.states


@pytest.mark.parametrize(
    ("update", "match"),
    [
        (write_var_uint(1) + write_var_uint(5) + write_var_uint(1) + write_var_string("[1]"),
         "not a JSON object"),
        (write_var_uint(1) + write_var_uint(5) + write_var_uint(1) + write_var_string("{"),
         "not JSON"),
        (write_var_uint(50) + write_var_uint(5), "claims 50 entries"),
        (write_var_uint(1) + write_var_uint(5) + write_var_uint(1) + b"\x05{}", "runs past"),
        (write_var_uint(1) + write_var_uint(5) + write_var_uint(1) + b"\x02\xff\xfe", "UTF-8"),
    ],
)  # fmt: skip
def test_malformed_awareness_raises_protocol_error(update, match):
    with pytest.raises(ProtocolError, match=match):
        decode_awareness_update(update)


def test_permission_denied_of_unknown_kind():
    with pytest.raises(ProtocolError, match="unknown auth message kind"):
        decode_permission_denied(write_var_uint(3))


@given(st.binary(max_size=64))
def test_update_payload_agrees_with_decode_message(tail):
    data = bytes((0, 2)) + tail
    try:
        expected = decode_message(data).payload  # type: ignore[union-attr]
    except ProtocolError:
        with pytest.raises(ProtocolError):
            update_payload(data)
        return
    assert update_payload(data) == expected


@given(st.binary(max_size=64))
def test_random_bytes_decode_or_raise_protocol_error(data):
    try:
        message = decode_message(data)
    except ProtocolError:
        return
    if isinstance(message, AwarenessMessage):
        with contextlib.suppress(ProtocolError):
            decode_awareness_update(message.update)


@given(
    st.lists(
        st.tuples(
            st.integers(0, 2**32),
            st.integers(0, 2**20),
            st.none() | st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5)),
        ),
        max_size=5,
    )
)
def test_awareness_round_trip_property(raw):
    entries = [AwarenessEntry(client, clock, state) for client, clock, state in raw]
    decoded = decode_awareness_update(encode_awareness_update(entries))
    assert decoded == entries
    assert json.dumps([e.state for e in decoded]) == json.dumps([e.state for e in entries])


def _typed_updates(count: int, client_id: int = 4) -> list[bytes]:
    """`count` update messages, each typing one more character after the last."""
    source = pycrdt.Doc(client_id=client_id)
    text = source.get("t", type=pycrdt.Text)
    messages = []
    for index in range(count):
        state = source.get_state()
        text += str(index % 10)
        messages.append(encode_update(source.get_update(state)))
    return messages


def _text_of(messages: list[bytes]) -> str:
    doc = pycrdt.Doc()
    for message in messages:
        doc.apply_update(update_payload(message))
    return str(doc.get("t", type=pycrdt.Text))


def test_readers_queueing_the_same_updates_share_one_merge():
    """Every reader of a broadcast queues the very same messages: merged once for all."""
    from meshroom.protocol._merge import coalesce_updates

    batch = _typed_updates(40)
    first = coalesce_updates(list(batch))
    second = coalesce_updates(list(batch))
    assert len(first) == 1 and second[0] is first[0]
    assert _text_of(first) == "0123456789" * 4


def test_a_shared_merge_is_only_reused_for_the_very_same_messages():
    """Runs are told apart by the message objects: another run, even an equal one of the
    same length, is merged on its own and comes out right."""
    from meshroom.protocol._merge import coalesce_updates

    batch = _typed_updates(10)
    coalesce_updates(batch)
    other = _typed_updates(10, client_id=5)
    (merged,) = coalesce_updates(other)
    assert _text_of([merged]) == "0123456789"
    assert pycrdt.get_state(update_payload(merged)) == pycrdt.get_state(
        pycrdt.merge_updates(*map(update_payload, other))
    )
    copies = [bytes(bytearray(message)) for message in other]  # equal, not the same objects
    (again,) = coalesce_updates(copies)
    assert again == merged and again is not merged
    changed = [*other[:-1], _typed_updates(10, client_id=6)[0]]  # one message differs
    assert _text_of(coalesce_updates(changed)) == _text_of(changed)


def test_a_large_merged_run_is_not_kept_after_its_frames_leave():
    """Only small runs are kept for the next reader: a large paste is not held in memory."""
    from meshroom.protocol import _merge as _protocol

    source = pycrdt.Doc(client_id=12)
    text = source.get("t", type=pycrdt.Text)
    large = []
    for _ in range(2):
        state = source.get_state()
        text += "x" * (_protocol._LAST_MERGE_BYTES // 2 + 1)
        large.append(encode_update(source.get_update(state)))
    (merged,) = _protocol.coalesce_updates(large)
    assert len(_text_of([merged])) == len(text)
    assert _protocol._LastMerge.last == ([], b"")
