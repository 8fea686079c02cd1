"""Change events: one `DocumentEvent` per transaction that touched the document, with its origin.

pycrdt calls deep observers once per changed root type and then the document
observer once per transaction; we collect the former and emit on the latter, so
a callback sees one event per transaction however many elements it touched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pycrdt import XmlElement, XmlText

if TYPE_CHECKING:
    from ._views import DocumentView

__all__ = ["DocumentEvent", "Subscription"]


@dataclass(frozen=True)
class DocumentEvent:
    """What one transaction changed.

    Attributes:
        origin: the transaction's origin (who made the change); None for updates
            applied without one (e.g. `apply_update` outside a transaction).
        element_ids: `$id`s of the elements whose attributes, children or text changed
            (the element holding a changed text node), in event order, without duplicates.
            Best effort: Yjs deep events can miss content integrated late from a peer's
            out-of-order updates; `update` is always complete.
        root_changed: the root's children or attributes changed.
        update: the Yjs v1 update this transaction produced (what to send to peers).
    """

    origin: Any
    element_ids: list[str] = field(default_factory=list)
    root_changed: bool = False
    update: bytes = b""


class Subscription:
    """A registered callback; pass it to `MeshDocument.unobserve` (or call `close`)."""

    def __init__(self, document: DocumentView, callback: Callable[[DocumentEvent], None]) -> None:
        self._document = document
        self._callback = callback
        self._pending: dict[str, Any] | None = None
        self._subs: list[tuple[Any, Any]] = []
        fragment = document.fragment
        attrs = document.root_attribute_map
        self._subs.append((fragment, fragment.observe_deep(self._on_tree)))
        self._subs.append((attrs, attrs.observe(self._on_root_attributes)))
        self._subs.append((document.doc, document.doc.observe(self._on_commit)))

    def _begin(self, origin: Any) -> dict[str, Any]:
        if self._pending is None:
            self._pending = {"origin": origin, "ids": {}, "root": False}
        return self._pending

    def _on_tree(self, events: list[Any], txn: Any) -> None:
        pending = self._begin(txn.origin)
        for event in events:
            target = event.target
            if isinstance(target, XmlText):
                target = target.parent
            if isinstance(target, XmlElement):
                value = target.attributes.get("$id")
                if isinstance(value, str):
                    pending["ids"][value] = None
            else:
                pending["root"] = True

    def _on_root_attributes(self, event: Any, txn: Any) -> None:
        self._begin(txn.origin)["root"] = True

    def _on_commit(self, event: Any) -> None:
        pending, self._pending = self._pending, None
        origin_hash = event.transaction.origin()
        origin = None if origin_hash is None else self._document.doc._origins.get(origin_hash)
        if pending is None or pending["origin"] != origin:
            # Deep observers do not always fire (yrs skips types integrated from its pending
            # queue), so the transaction itself is the source of truth: emit it anyway.
            pending = {"ids": {}, "root": False}
        self._callback(
            DocumentEvent(
                origin=origin,
                element_ids=list(pending["ids"]),
                root_changed=pending["root"],
                update=event.update,
            )
        )

    def close(self) -> None:
        """Stop receiving events (idempotent)."""
        subs, self._subs = self._subs, []
        for owner, sub in subs:
            owner.unobserve(sub)
