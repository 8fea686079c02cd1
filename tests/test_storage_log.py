"""The log record format: every torn or damaged tail is detected, never raised."""

from __future__ import annotations

import struct

import pytest

from meshroom.storage import decode_records, encode_record

RECORDS = [b"a", b"hello world", bytes(range(256)) * 3]


def test_records_round_trip() -> None:
    data = b"".join(encode_record(r) for r in RECORDS)
    decoded = decode_records(data)
    assert decoded.records == RECORDS
    assert decoded.damage is None
    assert decoded.skipped_bytes == 0


def test_every_truncation_keeps_whole_records_only() -> None:
    frames = [encode_record(r) for r in RECORDS]
    data = b"".join(frames)
    boundaries = {0}
    for frame in frames:
        boundaries.add(max(boundaries) + len(frame))
    for cut in range(len(data)):
        decoded = decode_records(data[:cut])
        whole = sum(1 for b in sorted(boundaries)[1:] if b <= cut)
        assert decoded.records == RECORDS[:whole], cut
        assert (decoded.damage is None) == (cut in boundaries), cut


@pytest.mark.parametrize("position", [0, 3, 4, 7, 8, 12])
def test_a_flipped_bit_is_caught(position: int) -> None:
    data = bytearray(encode_record(b"hello world") + encode_record(b"next"))
    data[position] ^= 0x10
    decoded = decode_records(bytes(data))
    assert decoded.records == []
    assert decoded.damage in ("bad checksum", "short payload", "zero length")
    assert decoded.skipped_bytes == len(data)


def test_zero_filled_tail_is_damage_not_an_empty_record() -> None:
    data = encode_record(b"x") + b"\x00" * 16
    decoded = decode_records(data)
    assert decoded.records == [b"x"]
    assert decoded.damage == "zero length"
    assert decoded.skipped_bytes == 16


def test_header_is_length_and_checksum() -> None:
    frame = encode_record(b"abc")
    size, _checksum = struct.unpack_from("<II", frame)
    assert size == 3 and frame[8:] == b"abc"


def test_empty_update_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        encode_record(b"")
