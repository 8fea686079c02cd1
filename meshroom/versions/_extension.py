"""`VersionsExtension`: the server saves versions by itself, at the moments one wants back.

- **End of a room session**: when a room closes (or the server shuts down), after storage
  wrote each document, a ``session-end`` version of every document that changed since its
  newest version.
- **Before an agent edits**: the state a document had just before an agent's first edit
  in a run, as an ``agent-run`` version, so "undo everything the agent did" is one
  restore. Where the edit comes in decides how it is caught:
  a connected agent's first update (a session admitted with kind ``agent``) is seen by the
  document before it is applied (`LiveDocument.before_apply`), which copies the state
  then, and the copy is saved once that update proves to change the document; an
  embedded agent asks for it itself when its documents toolkit first opens a document in
  a run (`save_agent_version`). A run ends (and the next edit starts a new one) with the
  agent's ``agent.run`` report or a new question to it; an agent that reports nothing is
  one long run per connection.
- **Every `interval` seconds of editing** (600 by default): the first change after a
  version starts the clock, and `interval` later an ``interval`` version is saved. A
  quiet document gets none.

Each is skipped when the document equals its newest version, and each new automatic
version thins the older ones by `retention`. A version that cannot be written is logged
and recorded as ``version.failed`` activity; editing and the room's close never wait on it.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from meshdoc.updates import unsettled_of

from ..server._hooks import (
    ActivityPayload,
    ChangePayload,
    Extension,
    LoadDocumentPayload,
    StoreDocumentPayload,
)
from ._model import Reason
from ._retention import Retention
from ._store import version_store
from ._versions import RestoreOrigin, Versions

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

__all__ = ["VersionsExtension"]

logger = logging.getLogger("meshroom.versions")


@dataclass
class _Tracked:
    """What the extension follows of one open document."""

    doc: Any
    live: Any
    #: When the first change not in a version arrived (None: none since the last one).
    editing_since: float | None = None
    #: Agents (participant ids) whose run already has its version of this document.
    versioned_agents: set[str] = field(default_factory=set)
    #: Agent -> the state copied before its first update, until that update is seen.
    before_agent: dict[str, bytes] = field(default_factory=dict)
    timer: anyio.CancelScope | None = None


class VersionsExtension(Extension):
    """Automatic versions of every document the server stores (see the module docstring).

    ```py
    storage = FsspecStorage("./rooms")
    server = Server(extensions=[StorageExtension(storage), VersionsExtension(storage)])
    ```

    Its `versions` (a `Versions` over the live documents) is what the HTTP routes, the
    agent tools and applications use.

    Args:
        store: the provider (with the `VersionStore` methods) versions are written to.
        interval: seconds of editing between automatic versions (None: none).
        retention: how older automatic versions are thinned (None: all are kept).
        agents: save a version before each agent run's first edit of a document.
        fragment: the documents' root fragment name.

    Raises:
        VersionsUnsupported: `store` keeps no versions.
    """

    priority = 900  # after storage (1000) stored a closing room's documents

    def __init__(
        self,
        store: Any,
        *,
        interval: float | None = 600.0,
        retention: Retention | None = None,
        agents: bool = True,
        fragment: str = "default",
    ) -> None:
        if interval is not None and interval <= 0:
            raise ValueError(f"interval must be positive (or None), got {interval}")
        self.store = version_store(store)
        self.interval = interval
        self.retention = Retention() if retention is None else retention
        self.agents = agents
        self.fragment = fragment
        self.versions = Versions(store, retention=self.retention, fragment=fragment)
        self._docs: dict[tuple[str, str], _Tracked] = {}
        self._tg: TaskGroup | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._writing = 0
        self._idle = anyio.Event()
        self._idle.set()

    def attach_server(self, server: Any) -> None:
        """Use `server`'s live documents (the server calls it)."""
        self.versions = Versions(
            self.store, server=server, retention=self.retention, fragment=self.fragment
        )

    # -- lifecycle ---------------------------------------------------------------------

    async def on_startup(self) -> None:
        async with contextlib.AsyncExitStack() as stack:
            self._tg = await stack.enter_async_context(anyio.create_task_group())
            self._stack = stack.pop_all()

    async def on_shutdown(self) -> None:
        """Finish the versions being written (agents', intervals'), then stop."""
        with anyio.move_on_after(30):
            await self._idle.wait()
        if self._stack is not None and self._tg is not None:
            self._tg.cancel_scope.cancel()
            await self._stack.aclose()
            self._stack = self._tg = None
        self._docs.clear()

    # -- hooks -------------------------------------------------------------------------

    async def on_load_document(self, payload: LoadDocumentPayload) -> None:
        tracked = _Tracked(payload.doc, payload.document)
        self._docs[(payload.room, payload.path)] = tracked
        hooks = getattr(payload.document, "before_apply", None)
        if self.agents and hooks is not None:
            hooks.append(self._before_apply(payload.room, payload.path, tracked))

    def _before_apply(self, room: str, path: str, tracked: _Tracked) -> Any:
        def before(document: Any, origin: Any) -> None:
            agent = _agent_of(origin)
            if agent is None or agent in tracked.versioned_agents:
                return
            if agent not in tracked.before_agent:
                tracked.before_agent[agent] = document.unsettled.encode(document.doc)

        return before

    async def on_change(self, payload: ChangePayload) -> None:
        tracked = self._docs.get((payload.room, payload.path))
        if tracked is None or tracked.doc is not payload.doc:
            return
        agent = _agent_of(payload.origin)
        if agent is not None:
            state = tracked.before_agent.pop(agent, None)
            if state is not None and agent not in tracked.versioned_agents:
                tracked.versioned_agents.add(agent)
                self._spawn(payload.room, payload.path, "agent-run", state, agent)
        elif not isinstance(payload.origin, RestoreOrigin):
            # a copy taken before an agent's update that changed nothing is stale now
            tracked.before_agent.clear()
        if self.interval is not None and tracked.editing_since is None:
            tracked.editing_since = anyio.current_time()
            assert self._tg is not None
            self._tg.start_soon(self._interval_version, payload.room, payload.path, tracked)

    async def on_store_document(self, payload: StoreDocumentPayload) -> None:
        """At a room's close (and at shutdown) save the session's end state."""
        if payload.reason == "explicit":
            return
        key = (payload.room, payload.path)
        tracked = self._docs.pop(key, None)
        if tracked is not None and tracked.timer is not None:
            tracked.timer.cancel()
        state = unsettled_of(payload.doc).encode(payload.doc)
        await self._save(payload.room, payload.path, "session-end", state, None)

    async def on_activity(self, payload: ActivityPayload) -> None:
        """An agent's run report, or a question to it, ends its run: its next edit of
        each document gets a version again."""
        if payload.type == "agent.run":
            agent = payload.event.get("agent")
        elif payload.type in ("message.to_agent", "participant.left"):
            agent = payload.event.get("to") or payload.event.get("participant")
        else:
            return
        for (room, _), tracked in self._docs.items():
            if room == payload.room:
                tracked.versioned_agents.discard(agent)  # type: ignore[arg-type]
                tracked.before_agent.pop(agent, None)  # type: ignore[arg-type]

    # -- for embedded agents -------------------------------------------------------------

    async def save_agent_version(self, room: str, path: str, agent: str) -> None:
        """Save the document's state before an embedded agent's run edits it (the
        agent's documents toolkit calls it when it first opens `path` in a run)."""
        if not self.agents:
            return
        try:
            state = await self.versions.current_state(room, path)
        except Exception as error:  # the agent still works; its run has no version
            logger.warning(
                "%s/%s: reading the state before %s failed: %s", room, path, agent, error
            )
            return
        await self._save(room, path, "agent-run", state, agent)

    # -- internals ---------------------------------------------------------------------

    def _spawn(
        self, room: str, path: str, reason: Reason, state: bytes, detail: str | None
    ) -> None:
        assert self._tg is not None
        self._tg.start_soon(self._save, room, path, reason, state, detail)

    async def _interval_version(self, room: str, path: str, tracked: _Tracked) -> None:
        assert self.interval is not None and tracked.editing_since is not None
        with anyio.CancelScope() as scope:
            tracked.timer = scope
            await anyio.sleep_until(tracked.editing_since + self.interval)
            tracked.editing_since = None
            tracked.timer = None
            if self._docs.get((room, path)) is not tracked:
                return
            state = unsettled_of(tracked.doc).encode(tracked.doc)
            await self._save(room, path, "interval", state, None)

    async def _save(
        self, room: str, path: str, reason: Reason, state: bytes, detail: str | None
    ) -> None:
        self._writing += 1
        self._idle = anyio.Event() if self._writing == 1 else self._idle
        try:
            author = detail if reason == "agent-run" else None
            await self.versions.save(
                room,
                path,
                reason=reason,
                author=author,
                detail=detail,
                state=state,
                skip_unchanged=True,
            )
        except Exception as error:
            logger.warning("%s/%s: saving a %s version failed: %s", room, path, reason, error)
            server = self.versions.server
            if server is not None:
                server.record_activity(
                    room, "version.failed", path=path, reason=reason, error=str(error)[:200]
                )
        finally:
            self._writing -= 1
            if self._writing == 0:
                self._idle.set()


def _agent_of(origin: Any) -> str | None:
    """The participant id of an agent's session (None for anyone else)."""
    access = getattr(origin, "access", None)
    if access is not None and getattr(access, "kind", None) == "agent":
        return str(access.participant_id)
    return None
