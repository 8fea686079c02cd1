"""The forward edit that brings a document back to a saved state.

A restore must not replace the document: clients hold the current state and would need to
reload, and edits they send meanwhile would merge into a document that no longer exists.
So a restore is an ordinary update, computed as Yjs computes "undo": in a scratch document
holding the state to restore *from*, apply the version's state, then what the document
gained since the version (its update against the version's state vector) under a tracked
origin, undo that one step, and take what the undo wrote. That update deletes what was
added since the version and re-inserts (as new content, same `$id`s and attributes) what
was deleted since; applied to the live document, it is a forward edit that every client
merges like a keystroke, and that can itself be undone.

It is computed from a captured state, not from the live document, so it runs in a worker
thread (a large document takes a while) and it reverts exactly that state: edits the live
document received after the capture are kept, merged on top.
"""

from __future__ import annotations

from collections.abc import Mapping

from pycrdt import Doc, Map, UndoManager, XmlFragment

__all__ = ["revert_update"]

_SCRATCH = "meshroom.versions.scratch"
#: A meshdoc document's root types: its fragment and the root's attributes.
DEFAULT_ROOTS: Mapping[str, type] = {"default": XmlFragment, "default:attributes": Map}


def revert_update(
    current_state: bytes, version_state: bytes, roots: Mapping[str, type] = DEFAULT_ROOTS
) -> bytes:
    """The update that turns the document in `current_state` into `version_state`'s.

    Args:
        current_state: the document now (a Yjs v1 update of its full state).
        version_state: the state to go back to.
        roots: the document's root types by name (their pycrdt classes): what is reverted.
    """
    current = Doc()
    current.apply_update(current_state)
    scratch = Doc()
    scratch.apply_update(version_state)
    scopes = [scratch.get(name, type=kind) for name, kind in roots.items()]
    for name, kind in roots.items():
        current.get(name, type=kind)
    target = current.get_state()
    since = current.get_update(scratch.get_state())
    undo = UndoManager(scopes=scopes, capture_timeout_millis=0)
    undo.include_origin(_SCRATCH)
    with scratch.transaction(origin=_SCRATCH):
        scratch.apply_update(since)
    if undo.can_undo():
        undo.undo()
    return scratch.get_update(target)
