"""meshdoc: Yjs-compatible documents as schema-typed element trees with rich text."""

from __future__ import annotations

__all__: list[str] = []
