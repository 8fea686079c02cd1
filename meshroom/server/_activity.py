"""`ActivityFeed`: the server's stream of activity events, handed to `on_activity` hooks.

Activity is what happened in a room session, for people debugging it later: who joined
and left, which documents were opened and saved, what was asked of agents and what they
did, who was refused, when storage failed. The server core only *produces* events (plain
JSON-ready dicts); extensions consume them (``meshroom.activity`` writes them to a log,
``meshroom.metrics`` counts them, an application's own extension can post them to a
webhook).

Recording never waits and never raises: `record` puts the event on a bounded queue and
one task of the server hands queued events to the hooks in order. When the hooks fall
`capacity` events behind (a webhook hanging, a log that cannot write), new events are
dropped and counted in `dropped`, so editing never waits for activity. With no
`on_activity` hook at all, `record` returns at once and nothing is queued.

A *session* is one stay of a room in this process: from the first connection that opened
it to its close. Its id sorts by time (``20260105T101500123Z-3f9a1c``). Events about a room
that is not open here (a refused connection, which opens nothing) go to the process's
own session id, so that a refusal flood never opens rooms.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import anyio
from anyio.abc import TaskGroup

from ._hooks import ActivityPayload, Extension

__all__ = ["ActivityFeed", "agent_event_of", "new_session_id"]

log = logging.getLogger("meshroom.server")

#: Events queued for the hooks before new ones are dropped (and counted).
DEFAULT_CAPACITY = 10_000
#: The JSON message types agents post to the room about their work (see `meshroom.agents`).
AGENT_PROGRESS = "agent.progress"
AGENT_RUN = "agent.run"


def new_session_id(now: float | None = None) -> str:
    """A new session id: its UTC start time to the millisecond, then random hex.

    Ids sort by start time (``20260105T101500123Z-3f9a1c``: 10:15:00.123).
    """
    moment = datetime.fromtimestamp(time.time() if now is None else now, tz=timezone.utc)
    return f"{moment:%Y%m%dT%H%M%S}{moment.microsecond // 1000:03d}Z-{secrets.token_hex(3)}"


def session_started(session: str) -> float | None:
    """The Unix time a session id says it started at, or None if it is not one."""
    stamp = session.split("-", 1)[0].removesuffix("Z")
    try:
        moment = datetime.strptime(stamp[:15], "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc)
        millis = int(stamp[15:] or 0)
    except ValueError:
        return None
    return moment.timestamp() + millis / 1000


def _listens(extension: Extension) -> bool:
    hook = getattr(extension, "on_activity", None)
    return getattr(hook, "__func__", None) is not Extension.on_activity


class ActivityFeed:
    """Activity events of one server, queued for its extensions' `on_activity` hooks.

    Args:
        extensions: the server's extensions; those overriding `on_activity` listen.
        session_of: the session id of an open room, or None when it is not open here.
        capacity: events queued before new ones are dropped.
    """

    def __init__(
        self,
        extensions: Sequence[Extension],
        session_of: Callable[[str], str | None],
        *,
        capacity: int = DEFAULT_CAPACITY,
    ) -> None:
        self.listeners = [extension for extension in extensions if _listens(extension)]
        self._session_of = session_of
        #: Where this process runs, named in join events (a cluster has several).
        self.process = f"{socket.gethostname()}:{os.getpid()}"
        #: The session of events about rooms not open in this process.
        self.process_session = new_session_id()
        #: Events dropped because the hooks were `capacity` events behind.
        self.dropped = 0
        #: Events recorded (queued) since the server started.
        self.recorded = 0
        self.capacity = capacity
        send, receive = anyio.create_memory_object_stream[ActivityPayload](math.inf)
        self._send = send
        self._receive = receive
        self._queued = 0
        self._idle = anyio.Event()
        self._idle.set()

    @property
    def enabled(self) -> bool:
        """Whether anyone listens (when nobody does, events are not even built)."""
        return bool(self.listeners)

    def record(self, room: str, type: str, *, session: str | None = None, **fields: Any) -> None:
        """Queue one event of `room` (never waits, never raises; dropped when too far behind).

        `fields` must be JSON-ready. The event gets ``type``, ``time`` (Unix seconds),
        ``room`` and ``session`` (the room's open session unless `session` is given).
        """
        if not self.listeners:
            return
        if self._queued >= self.capacity:
            self.dropped += 1
            return
        if session is None:
            session = self._session_of(room) or self.process_session
        event = {"type": type, "time": round(time.time(), 3), "room": room, "session": session}
        event.update(fields)
        try:
            self._send.send_nowait(ActivityPayload(room=room, session=session, event=event))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self.dropped += 1  # the server stopped: nobody will read it
            return
        self.recorded += 1
        self._queued += 1
        if self._idle.is_set():
            self._idle = anyio.Event()

    def start(self, group: TaskGroup | None) -> None:
        """Start handing events over in `group` (the server's), if anyone listens."""
        if self.listeners and group is not None:
            group.start_soon(self.run)

    async def finish(self, within: float = 5.0) -> None:
        """Hand the queued events over (for `within` seconds at most), then stop."""
        with anyio.move_on_after(within):
            await self.drain()
        self.close()

    async def run(self) -> None:
        """Hand queued events to the hooks, in order, until `close`."""
        async with self._receive:
            async for payload in self._receive:
                for extension in self.listeners:
                    try:
                        await extension.on_activity(payload)
                    except Exception:
                        log.exception("on_activity of %s failed", type(extension).__name__)
                self._queued -= 1
                if self._queued == 0:
                    self._idle.set()

    async def drain(self) -> None:
        """Wait until every queued event went through the hooks."""
        await self._idle.wait()

    def close(self) -> None:
        """No more events: `run` ends once the queued ones are handed over."""
        self._send.close()


def agent_event_of(
    message: Mapping[str, Any], participants: Mapping[str, Mapping[str, Any]]
) -> tuple[str, dict[str, Any]] | None:
    """The activity event a room message stands for, or None for a message to log nothing of.

    Room messages are people's conversation and are not logged, except what concerns
    agents: a text message addressed to an agent (sent to its id, or starting with
    ``@Name`` for everyone) is the question asked; an agent's ``agent.progress`` and
    ``agent.run`` JSON messages report its tool calls and runs. `participants` are the
    room's (id -> {"name", "kind"}): an agent report counts only from a participant
    admitted as an agent.
    """
    sender = message.get("from")
    text = message.get("text")
    if isinstance(text, str):
        target = message.get("to")
        if isinstance(target, str):
            entry = participants.get(target)
            if entry is not None and entry.get("kind") == "agent":
                return "message.to_agent", {"from": sender, "to": target, "text": text}
            return None
        lowered = text.lower()
        for participant, entry in participants.items():
            name = entry.get("name")
            if (
                entry.get("kind") == "agent"
                and isinstance(name, str)
                and name
                and lowered.startswith(f"@{name.lower()}")
            ):
                return "message.to_agent", {"from": sender, "to": participant, "text": text}
        return None
    report = message.get("json")
    if not isinstance(report, Mapping) or not isinstance(sender, str):
        return None
    if participants.get(sender, {}).get("kind") != "agent":
        return None
    kind = report.get("type")
    fields = {key: value for key, value in report.items() if key != "type"}
    if kind == AGENT_PROGRESS:
        return "agent.tool_call", {"agent": sender, **fields}
    if kind == AGENT_RUN:
        return "agent.run", {"agent": sender, **fields}
    return None
