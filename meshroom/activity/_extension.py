"""`ActivityExtension`: write every room session's activity events to its log.

The server produces the events (`Server.activity`, the `on_activity` hook); this
extension buffers them and appends them in batches, every `flush_interval`, through an
`ActivityStore` (`FsspecStorage`: beside the room's documents), one log per session.
Records are checksummed and fsynced like a document's log, so a killed server leaves
every batch it wrote whole and a torn tail that reading skips; what it had not written
yet (at most `flush_interval` of events) is lost, which is what a log may lose.

A store that fails (a full disk) never holds editing up: events wait in a bounded
buffer while writes are retried with backoff, and past `max_buffered` new events are
dropped and counted (`dropped`, the ``meshroom_activity_dropped_total`` metric).

Tool calls are logged by name, step, outcome and duration; their arguments and results
may hold document contents, so they are left out unless `tool_details` is on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

import anyio
from anyio.abc import TaskGroup

from .._retry import Backoff
from ..server._activity import session_started
from ..server._hooks import ActivityPayload, Extension, LoadThreadPayload
from ._reader import ActivityLog
from ._store import ActivityStore

__all__ = ["DETAIL_FIELDS", "ActivityExtension"]

logger = logging.getLogger("meshroom.activity")

#: Fields of tool-call events left out unless `tool_details` is on (they may quote documents).
DETAIL_FIELDS = ("summary", "arguments", "result")
#: Default retention: 30 days.
DEFAULT_RETENTION = 30 * 24 * 3600.0


class ActivityExtension(Extension):
    """Log each room session's activity through `store` (see the module docstring).

    ```py
    storage = FsspecStorage("./rooms")
    server = Server(extensions=[StorageExtension(storage), ActivityExtension(storage)])
    ```

    Args:
        store: where logs go: an `ActivityStore` (`FsspecStorage`, or your own).
        tool_details: also log tool-call arguments and short results (off: they may
            quote document contents).
        retention: seconds a session's log is kept after it started (default 30 days;
            None keeps logs forever). Older logs of closed sessions are deleted when
            the server starts and when their room's next session closes.
        flush_interval: longest wait, in seconds, before a buffered event is appended.
        max_buffered: events held while the store fails; past it they are dropped.
    """

    #: After the other extensions: the last to hear of an event, the first to stop.
    priority = -100

    def __init__(
        self,
        store: ActivityStore,
        *,
        tool_details: bool = False,
        retention: float | None = DEFAULT_RETENTION,
        flush_interval: float = 0.25,
        max_buffered: int = 10_000,
        retry: tuple[float, float] = (0.5, 30.0),
    ) -> None:
        if not isinstance(store, ActivityStore):
            raise TypeError(f"{type(store).__name__} keeps no activity logs (no append_activity)")
        if retention is not None and retention <= 0:
            raise ValueError("retention must be a positive number of seconds, or None")
        if flush_interval < 0 or max_buffered < 1:
            raise ValueError("need flush_interval >= 0 and max_buffered >= 1")
        self.store = store
        self.tool_details = tool_details
        self.retention = retention
        self.flush_interval = flush_interval
        self.max_buffered = max_buffered
        self._backoff = Backoff(initial=retry[0], maximum=retry[1], jitter=0.0)
        #: Events dropped because the store failed for too long (the buffer was full).
        self.dropped = 0
        #: Events appended to the store.
        self.written = 0
        #: Failed append attempts since the server started.
        self.failures = 0
        self._buffers: dict[tuple[str, str], list[bytes]] = {}
        self._buffered = 0
        #: Sessions whose room closed: their segment is closed once they are written.
        self._closing: set[tuple[str, str]] = set()
        #: Sessions this process logs to and did not close (never deleted by retention).
        self._open: set[tuple[str, str]] = set()
        self._wake = anyio.Event()
        self._flushed = anyio.Event()
        self._flushed.set()
        self._group: TaskGroup | None = None
        self._stack: contextlib.AsyncExitStack | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def on_startup(self) -> None:
        """Start the writer, and sweep logs older than the retention in the background."""
        async with contextlib.AsyncExitStack() as stack:
            self._group = await stack.enter_async_context(anyio.create_task_group())
            self._stack = stack.pop_all()
        self._group.start_soon(self._writer)
        if self.retention is not None:
            self._group.start_soon(self._sweep_all)

    async def on_shutdown(self) -> None:
        """Write what is buffered (for a few seconds at most), then stop."""
        if self._group is None or self._stack is None:
            return
        with anyio.move_on_after(5):
            await self.flush()
        if self._buffered:
            logger.warning("activity: %d events could not be written at shutdown", self._buffered)
        self._group.cancel_scope.cancel()
        await self._stack.aclose()
        self._group = self._stack = None

    # -- events ----------------------------------------------------------------------------

    async def on_activity(self, payload: ActivityPayload) -> None:
        """Buffer the event for its session's log (never waits for the store)."""
        key = (payload.room, payload.session)
        if payload.type == "room.closed":
            self._open.discard(key)
            self._closing.add(key)
        else:
            self._open.add(key)
        if self._buffered >= self.max_buffered:
            self.dropped += 1
            return
        self._buffers.setdefault(key, []).append(self.encode(payload.event))
        self._buffered += 1
        if self._flushed.is_set():
            self._flushed = anyio.Event()
        self._wake.set()

    async def on_load_thread(self, payload: LoadThreadPayload) -> list[dict[str, Any]] | None:
        """The messages of the latest ``thread.saved`` event of this agent and thread.

        Sessions are read newest first (what is still buffered here is written first), so
        a conversation goes on where it was left, in this session or an earlier one.
        """
        with anyio.move_on_after(5):  # a failing store: read what was written
            await self.flush()
        log = ActivityLog(self.store)
        for session in reversed(await log.sessions(payload.room)):
            for event in reversed(await log.events(payload.room, session)):
                if (
                    event.get("type") == "thread.saved"
                    and event.get("agent") == payload.participant
                    and event.get("thread") == payload.thread
                    and isinstance(event.get("messages"), list)
                ):
                    return list(event["messages"])
        return None

    def encode(self, event: dict[str, Any]) -> bytes:
        """The event as logged: one compact JSON object, without tool details unless asked."""
        if not self.tool_details and event.get("type") == "agent.tool_call":
            event = {key: value for key, value in event.items() if key not in DETAIL_FIELDS}
        return json.dumps(event, ensure_ascii=False, separators=(",", ":"), default=str).encode()

    async def flush(self) -> None:
        """Wait until every buffered event is written (retrying while the store fails)."""
        self._wake.set()
        await self._flushed.wait()

    @property
    def events_dropped(self) -> int:
        """Events dropped so far (what a metrics exporter adds to the server's own)."""
        return self.dropped

    @property
    def buffered(self) -> int:
        """Events waiting to be written."""
        return self._buffered

    # -- writing ---------------------------------------------------------------------------

    async def _writer(self) -> None:
        failures = 0
        while True:
            if not self._buffers:
                self._flushed.set()
                self._wake = anyio.Event()
                await self._wake.wait()
            await anyio.sleep(self.flush_interval)  # gather a batch
            try:
                await self._write_all()
            except Exception as error:
                failures += 1
                self.failures += 1
                delay = self._backoff.delay(failures)
                level = logging.WARNING if failures == 1 else logging.DEBUG
                logger.log(
                    level,
                    "activity: writing the log failed (%d events wait, %d dropped; retry in "
                    "%.1f s): %s",
                    self._buffered,
                    self.dropped,
                    delay,
                    error,
                )
                await anyio.sleep(delay)
                continue
            if failures:
                logger.info("activity: the log is written again after %d failures", failures)
            failures = 0

    async def _write_all(self) -> None:
        for key in list(self._buffers):
            lines = self._buffers.get(key)
            if not lines:
                self._buffers.pop(key, None)
                continue
            batch = list(lines)
            await self.store.append_activity(key[0], key[1], batch)
            del lines[: len(batch)]
            self._buffered -= len(batch)
            self.written += len(batch)
            if not lines:
                del self._buffers[key]
                if key in self._closing:
                    self._closing.discard(key)
                    self._close_session(key)

    def _close_session(self, key: tuple[str, str]) -> None:
        close = getattr(self.store, "close_activity", None)
        if close is not None:
            close(*key)
        if self.retention is not None and self._group is not None:
            self._group.start_soon(self._sweep, key[0])

    # -- retention -------------------------------------------------------------------------

    async def _sweep_all(self) -> None:
        lister = getattr(self.store, "list_rooms", None)
        if lister is None:
            return
        try:
            rooms = await lister()
        except Exception as error:
            logger.warning("activity: listing rooms for the retention sweep failed: %s", error)
            return
        for room in rooms:
            await self._sweep(room)

    async def _sweep(self, room: str) -> None:
        """Delete the room's closed sessions that started before the retention."""
        assert self.retention is not None
        cutoff = time.time() - self.retention
        try:
            sessions: Sequence[str] = await self.store.list_activity(room)
            for session in sessions:
                started = session_started(session)
                key = (room, session)
                if started is None or started >= cutoff or key in self._open:
                    continue
                if key in self._buffers:
                    continue
                await self.store.delete_activity(room, session)
                logger.info("activity: deleted the log of %s/%s (retention)", room, session)
        except Exception as error:
            logger.warning("activity: retention sweep of %r failed: %s", room, error)
