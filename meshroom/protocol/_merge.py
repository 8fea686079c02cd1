"""Merging runs of queued sync update messages into one message each.

Under load a session's queue holds many small updates; one merged frame instead of many
cuts frames, syscalls and the client's work. Every reader of a document queues the very
same messages, so the run merged last is kept (`_LastMerge`) and a broadcast is merged once.
"""

from __future__ import annotations

import operator

from pycrdt import merge_updates

from ._messages import UPDATE_PREFIX, encode_update, update_payload

__all__ = ["coalesce_updates"]


class _LastMerge:
    """The run merged last and its merged message: every reader of a document queues
    the same messages, so a broadcast's run is merged once, not once per reader.

    Runs are compared by identity (the very message objects), never by value, and
    only small ones are kept (`_LAST_MERGE_BYTES`): what a cache holds must not
    outlive the queues it came from by much. One tuple, replaced whole: a reader in
    another thread never sees one run with another's merge.
    """

    last: tuple[list[bytes], bytes] = ([], b"")


#: Largest run (bytes of its messages) `_LastMerge` keeps.
_LAST_MERGE_BYTES = 1024 * 1024


def _merge_run(run: list[bytes]) -> bytes:
    """One update message for a run of two or more update messages."""
    last_run, last_merged = _LastMerge.last
    if len(run) == len(last_run) and all(map(operator.is_, run, last_run)):
        return last_merged
    merged = encode_update(merge_updates(*map(update_payload, run)))
    kept = sum(map(len, run)) <= _LAST_MERGE_BYTES
    _LastMerge.last = (list(run), merged) if kept else ([], b"")
    return merged


def coalesce_updates(messages: list[bytes]) -> list[bytes]:
    """Merge runs of sync update messages into one update message each.

    Under load a session's queue holds many small updates; one merged frame
    instead of many cuts frames, syscalls and the client's work, and a merged
    Yjs update is applied exactly like the updates it merges. Order between
    updates and other messages (awareness, sync steps) is kept; a run of one
    is passed on as it is.
    """
    if len(messages) == 1:
        return messages
    out: list[bytes] = []
    run: list[bytes] = []

    def flush() -> None:
        if len(run) == 1:
            out.append(run[0])
        elif run:
            out.append(_merge_run(run))
        run.clear()

    for message in messages:
        if message.startswith(UPDATE_PREFIX):
            run.append(message)
        else:
            flush()
            out.append(message)
    flush()
    return out
