"""The XML string of a tree, exactly as Yjs's `toString()` writes it.

pycrdt's ``str(fragment)`` lists attributes in hash-map order, which differs
between replicas; Yjs sorts them and lower-cases tag names, and renders text
marks as nested tags (``<bold>hi</bold>``, ``<link href="…">``). Matching
Yjs byte for byte gives a stable string to compare, log or diff, and the same
one a JavaScript peer sees.
"""

from __future__ import annotations

from typing import Any

from pycrdt import XmlElement, XmlFragment, XmlText

from .._yxml import children, raw_attributes

__all__ = ["js_string", "node_to_xml"]


def js_string(value: Any) -> str:
    """A JSON value as JavaScript's ``String(value)`` writes it."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    if isinstance(value, dict):
        return "[object Object]"
    if isinstance(value, (list, tuple)):
        return ",".join("" if v is None else js_string(v) for v in value)
    return str(value)


def _runs(node: XmlText) -> list[tuple[Any, dict[str, Any]]]:
    runs: list[tuple[Any, dict[str, Any]]] = []
    for content, attrs in node.diff():
        attrs = dict(attrs or {})
        previous = runs[-1] if runs else None
        mergeable = previous is not None and isinstance(previous[0], str) and previous[1] == attrs
        if isinstance(content, str) and mergeable:
            runs[-1] = (previous[0] + content, attrs)  # type: ignore[index]
            continue
        runs.append((content, attrs))
    return runs


def _text_to_xml(node: XmlText) -> str:
    out: list[str] = []
    for content, attrs in _runs(node):
        names = sorted(attrs)
        for name in names:
            value = attrs[name]
            inner = sorted(value.items()) if isinstance(value, dict) else []
            out.append(f"<{name}" + "".join(f' {k}="{js_string(v)}"' for k, v in inner) + ">")
        out.append(content if isinstance(content, str) else js_string(content))
        out.extend(f"</{name}>" for name in reversed(names))
    return "".join(out)


def node_to_xml(node: XmlFragment | XmlElement | XmlText) -> str:
    """Yjs's ``toString()`` of `node` (fragment, element or text)."""
    if isinstance(node, XmlText):
        return _text_to_xml(node)
    inner = "".join(node_to_xml(child) for child in children(node))
    if isinstance(node, XmlFragment):
        return inner
    tag = (node.tag or "").lower()
    attrs = raw_attributes(node)
    rendered = "".join(f' {k}="{js_string(attrs[k])}"' for k in sorted(attrs))
    return f"<{tag}{rendered}>{inner}</{tag}>"
