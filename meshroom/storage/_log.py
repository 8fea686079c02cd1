"""The update log's record format: length prefix + checksum, so torn tails are found.

Every record is ``<u32 length><u32 crc32(length bytes + payload)><payload>``
(little-endian). The server appends records in batches; a process killed in the
middle of a write leaves a torn last record: a short header, a short payload,
or bytes whose checksum does not match. `decode_records` stops at the first
such record and reports it instead of raising, so loading never crashes on a
torn tail. A zero length is never written, so a zero-filled tail (what some
filesystems leave after a power cut) is detected too.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["HEADER_SIZE", "DecodedLog", "decode_records", "encode_record", "encode_records"]

_HEADER = struct.Struct("<II")
HEADER_SIZE = _HEADER.size
#: Largest payload one record may carry (a Yjs update bigger than this is refused).
MAX_RECORD_BYTES = 1 << 31


def encode_record(payload: bytes) -> bytes:
    """Frame one update as a log record.

    ```py
    assert decode_records(encode_record(b"abc")).records == [b"abc"]
    ```

    Raises:
        ValueError: the payload is empty or too large to frame.
    """
    size = len(payload)
    if size == 0:
        raise ValueError("an empty update cannot be logged")
    if size >= MAX_RECORD_BYTES:
        raise ValueError(f"update of {size} bytes is too large for one log record")
    length = struct.pack("<I", size)
    checksum = zlib.crc32(payload, zlib.crc32(length))
    return _HEADER.pack(size, checksum) + payload


def encode_records(payloads: Iterable[bytes]) -> bytes:
    """Frame several updates, back to back, as one write."""
    return b"".join(encode_record(p) for p in payloads)


@dataclass
class DecodedLog:
    """The records found in one log segment, and whether its tail was damaged."""

    records: list[bytes] = field(default_factory=list)
    #: Bytes ignored after the last good record (0 when the segment is clean).
    skipped_bytes: int = 0
    #: Why the tail was rejected: "short header", "short payload", "bad checksum", "zero length".
    damage: str | None = None


def decode_records(data: bytes) -> DecodedLog:
    """Read every whole, intact record of a segment; stop at the first damaged one."""
    view = memoryview(data)
    out = DecodedLog()
    offset = 0
    total = len(data)
    while offset < total:
        if total - offset < HEADER_SIZE:
            out.damage = "short header"
            break
        size, checksum = _HEADER.unpack_from(view, offset)
        if size == 0:
            out.damage = "zero length"
            break
        start = offset + HEADER_SIZE
        if total - start < size:
            out.damage = "short payload"
            break
        payload = bytes(view[start : start + size])
        if zlib.crc32(payload, zlib.crc32(struct.pack("<I", size))) != checksum:
            out.damage = "bad checksum"
            break
        out.records.append(payload)
        offset = start + size
    out.skipped_bytes = total - offset
    return out
