"""Reading many streams in one ``XREAD``, paused by the one retry policy when it fails."""

from __future__ import annotations

import logging
from typing import Any

import anyio

from .._retry import Backoff

__all__ = ["READ_RETRY", "StreamReads"]

#: Pauses after failed stream reads (Redis away): 1 s, growing to 5 s.
READ_RETRY = Backoff(initial=1.0, maximum=5.0, jitter=0.0)

log = logging.getLogger("meshroom.cluster")


class StreamReads:
    """One task's reads of the streams it follows (`what` names them in the log)."""

    def __init__(self, client: Any, *, block: float, what: str) -> None:
        self._client = client
        self._block_ms = max(1, int(block * 1000))
        self._what = what
        self._failures = 0

    async def read(self, streams: dict[str, Any]) -> list[tuple[str, list[Any]]]:
        """(key, new entries) of each stream read from its id in `streams`, waiting up to
        `block` for one; none after a failed read, which is logged and paused for."""
        try:
            answer = await self._client.xread(streams, count=500, block=self._block_ms)
        except Exception:
            self._failures += 1
            delay = READ_RETRY.delay(self._failures)
            log.exception("cluster: reading %s failed; retrying in %.1f s", self._what, delay)
            await anyio.sleep(delay)
            return []
        self._failures = 0
        return [
            (key.decode() if isinstance(key, bytes) else key, entries)
            for key, entries in answer or []
        ]
