"""Sticky ranges, and the binary form of sticky positions (Yjs ``encodeRelativePosition``).

A `StickyRange` is a text selection that survives concurrent edits: an agent
can mark "the sentence I am rewriting", let people keep typing, and find the
sentence again later, or send the range to another peer. Its start sticks to
the first character of the range and its end to the last, so text typed right
at either boundary stays outside the range (as a selection in an editor does).

```py
doc = MeshDocument(None)
text = doc.root.append_child("p").append_text("Hello world")
sel = StickyRange.create(text, 6, 5)  # "world"
text.insert(0, ">> ")
assert sel.resolve(text) == (9, 14)
assert StickyRange.from_bytes(sel.to_bytes()) == sel
```
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pycrdt import Assoc

from .._exceptions import TextRangeError, UpdateError
from ..updates._lib0 import append_var_int, append_var_uint, read_var_int, read_var_uint
from ._sticky import StickyPosition

if TYPE_CHECKING:
    from ._node import TextNode

__all__ = ["StickyRange", "decode_sticky_position", "encode_sticky_position"]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def uint(self) -> int:
        try:
            value, self.pos = read_var_uint(self.data, self.pos)
        except IndexError:
            raise UpdateError("sticky position bytes end too early") from None
        return value

    def int(self) -> int:
        try:
            value, self.pos = read_var_int(self.data, self.pos)
        except IndexError:
            raise UpdateError("sticky position bytes end too early") from None
        return value

    def string(self) -> str:
        length = self.uint()
        raw = self.data[self.pos : self.pos + length]
        if len(raw) != length:
            raise UpdateError("sticky position bytes end too early")
        self.pos += length
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UpdateError(f"sticky position type name is not UTF-8: {exc}") from exc


def encode_sticky_position(position: StickyPosition) -> bytes:
    """The binary form of a position, as Yjs ``encodeRelativePosition`` writes it."""
    out = bytearray()
    if position.item is not None:
        out.append(0)
        append_var_uint(position.item[0], out)
        append_var_uint(position.item[1], out)
    elif position.tname is not None:
        out.append(1)
        raw = position.tname.encode("utf-8")
        append_var_uint(len(raw), out)
        out.extend(raw)
    elif position.type_id is not None:
        out.append(2)
        append_var_uint(position.type_id[0], out)
        append_var_uint(position.type_id[1], out)
    else:
        raise UpdateError("an empty sticky position cannot be encoded")
    append_var_int(int(position.assoc), out)
    return bytes(out)


def decode_sticky_position(data: bytes) -> StickyPosition:
    """Read the binary form written by `encode_sticky_position` or Yjs.

    Raises:
        UpdateError: the bytes are not a relative position.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise UpdateError(f"a sticky position is bytes, not {type(data).__name__}")
    reader = _Reader(bytes(data))
    kind = reader.uint()
    fields: dict[str, Any] = {}
    if kind == 0:
        fields["item"] = (reader.uint(), reader.uint())
    elif kind == 1:
        fields["tname"] = reader.string()
    elif kind == 2:
        fields["type_id"] = (reader.uint(), reader.uint())
    else:
        raise UpdateError(f"unknown sticky position kind {kind}")
    # Yjs omits assoc in positions encoded by old versions: it then means AFTER.
    assoc = reader.int() if reader.pos < len(reader.data) else 0
    if reader.pos != len(reader.data):
        raise UpdateError("trailing bytes after a sticky position")
    return StickyPosition(**fields, assoc=Assoc.BEFORE if assoc < 0 else Assoc.AFTER)


@dataclass(frozen=True)
class StickyRange:
    """A range of text that follows its characters through concurrent edits.

    Attributes:
        start: sticks to the range's first character (`Assoc.AFTER`).
        end: sticks to the range's last character (`Assoc.BEFORE`).
    """

    start: StickyPosition
    end: StickyPosition

    @classmethod
    def create(cls, text: TextNode, index: int, length: int) -> StickyRange:
        """The range of `length` code points at `index` in `text`.

        Raises:
            TextRangeError: the range reaches outside the text.
        """
        size = len(text)
        if (
            isinstance(index, bool)
            or isinstance(length, bool)
            or not isinstance(index, int)
            or not isinstance(length, int)
            or length < 0
            or not 0 <= index <= size
            or index + length > size
        ):
            raise TextRangeError(f"range ({index!r}, {length!r}) is outside the text (0..{size})")
        start = text.sticky_index(index, Assoc.AFTER)
        end = text.sticky_index(index + length, Assoc.BEFORE)
        return cls(start, end)

    def resolve(self, text: TextNode) -> tuple[int, int]:
        """The range's current ``(start, end)`` code-point indices in `text` (end excluded).

        If every character of the range was deleted, the range is empty where they were.
        """
        start = text.index_of(self.start)
        end = text.index_of(self.end)
        return start, max(start, end)

    def to_json(self) -> dict[str, Any]:
        """``{"start": <Yjs RelativePosition JSON>, "end": ...}``."""
        return {"start": self.start.to_json(), "end": self.end.to_json()}

    @classmethod
    def from_json(cls, data: Any) -> StickyRange:
        """Read `to_json` output.

        Raises:
            UpdateError: not a sticky range.
        """
        if not isinstance(data, dict) or set(data) != {"start", "end"}:
            raise UpdateError('a sticky range is {"start": {...}, "end": {...}}')
        return cls(StickyPosition.from_json(data["start"]), StickyPosition.from_json(data["end"]))

    def to_bytes(self) -> bytes:
        """Both positions in Yjs binary form, each prefixed with its length."""
        out = bytearray()
        for position in (self.start, self.end):
            raw = encode_sticky_position(position)
            append_var_uint(len(raw), out)
            out.extend(raw)
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> StickyRange:
        """Read `to_bytes` output.

        Raises:
            UpdateError: not a sticky range.
        """
        reader = _Reader(bytes(data))
        parts = []
        for _ in range(2):
            length = reader.uint()
            chunk = reader.data[reader.pos : reader.pos + length]
            if len(chunk) != length:
                raise UpdateError("sticky range bytes end too early")
            reader.pos += length
            parts.append(decode_sticky_position(chunk))
        if reader.pos != len(reader.data):
            raise UpdateError("trailing bytes after a sticky range")
        return cls(parts[0], parts[1])
