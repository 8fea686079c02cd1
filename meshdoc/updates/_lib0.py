"""lib0's variable-length integers: the one codec for every Yjs byte format read or written here.

Yjs (lib0 ``encoding.js``/``decoding.js``) writes unsigned integers 7 bits per byte, low bits
first, the high bit saying "more follows" (``writeVarUint``), and signed ones with the sign in
bit 6 of the first byte (``writeVarInt``). Updates, state vectors, delete sets, sticky
positions and y-websocket messages all use them.

pycrdt exports ``write_var_uint`` and a ``Decoder``, but the decoder allocates an object per
message and bounds nothing; the scanners here walk untrusted bytes by position, millions of
times per trace, so the readers take ``(data, pos)`` and return ``(value, end)``. Every reader
raises `IndexError` when the bytes do not hold a var-int: they end inside it, or it runs past
`MAX_VAR_INT_BYTES` (lib0 itself refuses integers beyond 53 bits), so a frame of 0x80 bytes
costs a few steps, not a number with millions of bits.
"""

from __future__ import annotations

__all__ = [
    "MAX_VAR_INT_BYTES",
    "SMALL",
    "VarIntTooLong",
    "append_var_int",
    "append_var_uint",
    "read_var_int",
    "read_var_uint",
    "read_var_uints",
    "write_var_uint",
]


class VarIntTooLong(IndexError):
    """A var-int runs past `MAX_VAR_INT_BYTES` (an `IndexError`, so one ``except`` serves both)."""


#: The longest var-int read (8 bytes hold 56 bits, past lib0's 53-bit integers).
MAX_VAR_INT_BYTES = 8
_MAX_SHIFT = 7 * (MAX_VAR_INT_BYTES - 1)

#: The one-byte encodings of 0..127, made once (most lengths and clocks of an edit are small).
SMALL: tuple[bytes, ...] = tuple(bytes((v,)) for v in range(128))


def write_var_uint(value: int) -> bytes:
    """The lib0 var-uint of `value` (>= 0)."""
    if value < 0x80:
        if value < 0:
            raise ValueError(f"var-uint must be >= 0, got {value}")
        return SMALL[value]
    if value < 0x4000:
        return bytes((0x80 | (value & 0x7F), value >> 7))
    if value < 0x200000:
        return bytes((0x80 | (value & 0x7F), 0x80 | ((value >> 7) & 0x7F), value >> 14))
    out = bytearray()
    append_var_uint(value, out)
    return bytes(out)


def append_var_uint(value: int, out: bytearray) -> None:
    """Append the lib0 var-uint of `value` (>= 0) to `out`."""
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)


def append_var_int(value: int, out: bytearray) -> None:
    """Append lib0's ``writeVarInt`` of `value`: sign in bit 6 of the first byte, 6 then 7 bits."""
    negative = value < 0
    value = -value if negative else value
    out.append((0x80 if value > 0x3F else 0) | (0x40 if negative else 0) | (value & 0x3F))
    value >>= 6
    while value > 0:
        out.append((0x80 if value > 0x7F else 0) | (value & 0x7F))
        value >>= 7


def read_var_uint(data: bytes, pos: int) -> tuple[int, int]:
    """The var-uint at `pos` of `data`, and where it ends."""
    b = data[pos]
    if b < 0x80:
        return b, pos + 1
    result = b & 0x7F
    shift = 7
    pos += 1
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > _MAX_SHIFT:
            raise VarIntTooLong(f"var-uint longer than {MAX_VAR_INT_BYTES} bytes")


def read_var_int(data: bytes, pos: int) -> tuple[int, int]:
    """The var-int (lib0 ``readVarInt``) at `pos` of `data`, and where it ends."""
    b = data[pos]
    pos += 1
    result = b & 0x3F
    negative = b & 0x40
    shift = 6
    while b & 0x80:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if shift > _MAX_SHIFT:
            raise VarIntTooLong(f"var-int longer than {MAX_VAR_INT_BYTES} bytes")
    return (-result if negative else result), pos


def read_var_uints(data: bytes) -> list[int]:
    """Every var-uint of `data`, in order (state vectors and delete sets hold nothing else)."""
    values: list[int] = []
    append = values.append
    result = shift = 0
    for b in data:
        result |= (b & 0x7F) << shift
        if b < 0x80:
            append(result)
            result = shift = 0
        else:
            shift += 7
            if shift > _MAX_SHIFT:
                raise VarIntTooLong(f"var-uint longer than {MAX_VAR_INT_BYTES} bytes")
    if shift:
        raise IndexError("the bytes end inside a var-uint")
    return values
