"""Just enough of the Yjs v1 update format to read item IDs and origins, and to write one item.

pycrdt does not expose the IDs of the items that make up a text, yet a position that survives
concurrent edits (a Yjs `RelativePosition`) is made of exactly such an ID. Reading the update
produced by a single scratch insert tells which items it was placed between; writing an update
by hand places an item right after a given ID. The layout follows lib0's encoding and Yjs's
`encoding.js` (`writeStructs`, `writeDeleteSet`).
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple

from ..updates._lib0 import append_var_uint, read_var_int, read_var_uint, read_var_uints

__all__ = [
    "Item",
    "decode_delete_set",
    "decode_items",
    "decode_update",
    "encode_delete",
    "encode_item",
    "split_update",
    "utf16_length",
]


def utf16_length(text: str) -> int:
    """Length of `text` in UTF-16 code units: what Yjs clocks count."""
    if text.isascii():
        return len(text)
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


class Item(NamedTuple):
    """One struct read from an update (GC and skip structs are left out).

    (A named tuple: an index build reads every item of the document, and a frozen dataclass
    costs several times as much to make.)
    """

    client: int
    clock: int
    length: int
    origin: tuple[int, int] | None
    right_origin: tuple[int, int] | None
    parent: tuple[int, int] | str | None
    content_ref: int
    text: str | None = None  #: the content of a string item
    format: tuple[str, str] | None = None  #: key and JSON value of a format item


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        value = self.data[self.pos]
        self.pos += 1
        return value

    def uint(self) -> int:
        value, self.pos = read_var_uint(self.data, self.pos)
        return value

    def int(self) -> int:
        value, self.pos = read_var_int(self.data, self.pos)
        return value

    def bytes(self) -> bytes:
        n = self.uint()
        value = self.data[self.pos : self.pos + n]
        self.pos += n
        return value

    def string(self) -> str:
        return self.bytes().decode("utf-8", errors="surrogatepass")

    def id(self) -> tuple[int, int]:
        return (self.uint(), self.uint())

    def any(self) -> Any:
        tag = self.byte()
        if tag in (126, 127):
            return None
        if tag == 125:
            return self.int()
        if tag == 124:
            value = struct.unpack(">f", self.data[self.pos : self.pos + 4])[0]
            self.pos += 4
            return value
        if tag == 123:
            value = struct.unpack(">d", self.data[self.pos : self.pos + 8])[0]
            self.pos += 8
            return value
        if tag == 122:
            value = struct.unpack(">q", self.data[self.pos : self.pos + 8])[0]
            self.pos += 8
            return value
        if tag in (120, 121):
            return tag == 120
        if tag == 119:
            return self.string()
        if tag == 118:
            return {self.string(): self.any() for _ in range(self.uint())}
        if tag == 117:
            return [self.any() for _ in range(self.uint())]
        if tag == 116:
            return self.bytes()
        raise ValueError(f"unknown lib0 'any' tag {tag}")


def _content_length(reader: _Reader, ref: int) -> int | str | tuple[str, str]:
    """Read an item's content: its length in clock units, the string of a string item, or
    the key and JSON value of a format item."""
    if ref == 1:  # deleted
        return reader.uint()
    if ref == 2:  # JSON
        n = reader.uint()
        for _ in range(n):
            reader.string()
        return n
    if ref == 3:  # binary
        reader.bytes()
        return 1
    if ref == 4:  # string
        return reader.string()
    if ref == 5:  # embed
        reader.string()
        return 1
    if ref == 6:  # format
        return (reader.string(), reader.string())
    if ref == 7:  # type
        type_ref = reader.uint()
        if type_ref in (3, 5):  # XmlElement, XmlHook carry a name
            reader.string()
        return 1
    if ref == 8:  # any
        n = reader.uint()
        for _ in range(n):
            reader.any()
        return n
    if ref == 9:  # subdocument
        reader.string()
        reader.any()
        return 1
    raise ValueError(f"unknown Yjs content ref {ref}")


def decode_items(update: bytes) -> list[Item]:
    """The items of a v1 update, in the order they are written (by client, then clock)."""
    return _read_structs(_Reader(update))


def _read_structs(reader: _Reader) -> list[Item]:
    # (reads every item of a document when a text gets its index: one-byte varints, the
    # common case, are read inline, and string, deleted and format contents without calls
    # per byte)
    data = reader.data
    pos = reader.pos
    items: list[Item] = []
    append = items.append
    n_clients, pos = read_var_uint(data, pos)
    for _ in range(n_clients):
        count, pos = read_var_uint(data, pos)
        client, pos = read_var_uint(data, pos)
        clock, pos = read_var_uint(data, pos)
        for _ in range(count):
            info = data[pos]
            pos += 1
            ref = info & 0x1F
            if ref == 0 or ref == 10:  # GC, skip
                n, pos = read_var_uint(data, pos)
                clock += n
                continue
            origin = right_origin = parent = None
            if info & 0x80:
                a, pos = read_var_uint(data, pos)
                b, pos = read_var_uint(data, pos)
                origin = (a, b)
            if info & 0x40:
                a, pos = read_var_uint(data, pos)
                b, pos = read_var_uint(data, pos)
                right_origin = (a, b)
            if origin is None and right_origin is None:
                reader.pos = pos
                parent = reader.string() if reader.uint() == 1 else reader.id()
                if info & 0x20:
                    reader.string()
                pos = reader.pos
            text: str | None = None
            fmt: tuple[str, str] | None = None
            if ref == 4:  # string
                n = data[pos]
                if n < 0x80:
                    pos += 1
                else:
                    n, pos = read_var_uint(data, pos)
                text = data[pos : pos + n].decode("utf-8", errors="surrogatepass")
                pos += n
                length = len(text) if n == len(text) else utf16_length(text)
            elif ref == 1:  # deleted
                length, pos = read_var_uint(data, pos)
            else:
                reader.pos = pos
                content = _content_length(reader, ref)
                pos = reader.pos
                if isinstance(content, tuple):
                    length, fmt = 1, content
                else:
                    length = content  # type: ignore[assignment]
            append(Item(client, clock, length, origin, right_origin, parent, ref, text, fmt))
            clock += length
    reader.pos = pos
    return items


def decode_update(update: bytes) -> tuple[list[Item], dict[int, list[tuple[int, int]]]]:
    """The items of a v1 update and its delete set (`client -> [(clock, length), ...]`)."""
    items, tail = split_update(update)
    return items, decode_delete_set(tail)


def split_update(update: bytes) -> tuple[list[Item], bytes]:
    """The items of a v1 update, and its delete set still encoded (to compare it cheaply)."""
    reader = _Reader(update)
    items = _read_structs(reader)
    return items, update[reader.pos :]


def decode_delete_set(data: bytes) -> dict[int, list[tuple[int, int]]]:
    """`client -> [(clock, length), ...]` from an encoded delete set."""
    values = read_var_uints(data)
    deletes: dict[int, list[tuple[int, int]]] = {}
    pos = 1
    for _ in range(values[0] if values else 0):
        client, n = values[pos], values[pos + 1]
        pos += 2
        span = values[pos : pos + 2 * n]
        deletes[client] = list(zip(span[::2], span[1::2], strict=True))
        pos += 2 * n
    return deletes


def encode_item(
    client: int,
    clock: int,
    text: str,
    origin: tuple[int, int] | None,
    right_origin: tuple[int, int] | None,
) -> bytes:
    """A v1 update holding one string item placed between `origin` and `right_origin`."""
    if origin is None and right_origin is None:
        raise ValueError("an item written here needs an origin to find its parent")
    out = bytearray()
    append_var_uint(1, out)
    append_var_uint(1, out)
    append_var_uint(client, out)
    append_var_uint(clock, out)
    out.append(4 | (0x80 if origin else 0) | (0x40 if right_origin else 0))
    for ident in (origin, right_origin):
        if ident is not None:
            append_var_uint(ident[0], out)
            append_var_uint(ident[1], out)
    data = text.encode("utf-8")
    append_var_uint(len(data), out)
    out += data
    append_var_uint(0, out)  # empty delete set
    return bytes(out)


def encode_delete(client: int, clock: int, length: int) -> bytes:
    """A v1 update that only deletes `length` clock units from `(client, clock)`."""
    out = bytearray()
    append_var_uint(0, out)
    append_var_uint(1, out)
    append_var_uint(client, out)
    append_var_uint(1, out)
    append_var_uint(clock, out)
    append_var_uint(length, out)
    return bytes(out)
