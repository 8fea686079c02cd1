"""Argument checks for text edits: refuse bad input before anything is written."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .._exceptions import TextRangeError

__all__ = ["check_attributes", "check_int", "check_range", "check_text"]


def check_text(text: object) -> str:
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, not {type(text).__name__}")
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"text holds a lone surrogate {text[exc.start]!r} at {exc.start}; "
            "only whole characters can be stored"
        ) from None
    return text


def _check_json(value: object, where: str) -> None:
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where} must be a finite number, not {value!r}")
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_json(item, f"{where}[{i}]")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} keys must be str, not {type(key).__name__}")
            _check_json(item, f"{where}[{key!r}]")
        return
    raise TypeError(f"{where} must be JSON-like, not {type(value).__name__}")


def check_attributes(attributes: object, *, allow_none_values: bool) -> dict[str, Any]:
    if not isinstance(attributes, Mapping):
        raise TypeError(f"attributes must be a mapping, not {type(attributes).__name__}")
    checked: dict[str, Any] = {}
    for key, value in attributes.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"attribute names must be non-empty str, got {key!r}")
        if value is None and not allow_none_values:
            raise ValueError(f"attribute {key!r} is None; use format() to remove a mark")
        _check_json(value, f"attribute {key!r}")
        checked[key] = value
    return checked


def check_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    return value


def check_range(index: object, length: object, size: int | None) -> tuple[int, int]:
    """Check types and sign (`size` None), or also the bounds."""
    index = check_int(index, "index")
    length = check_int(length, "length")
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    if size is not None and (not 0 <= index <= size or index + length > size):
        raise TextRangeError(f"range [{index}, {index + length}) is outside the text (0..{size})")
    return index, length
