"""`Agent`: an LLM that joins a room as a participant and works through tools.

The agent is a peer like any browser tab: it joins as kind "agent" (so every
client lists it as one), edits documents through the same CRDT (so its edits
merge with people's), publishes where it works in awareness, posts its tool
calls to the room as they happen, and answers room messages addressed to it::

    agent = Agent("Editor", rules="Keep the plan short.", toolkits=[documents_toolkit()],
                  llm=OpenAILLM("gpt-4.1-mini"))
    async with agent.connect("ws://127.0.0.1:8765", "team"):
        result = await agent.run("Add a risks section to notes/plan")

It joins one of two ways, the same agent either way:

- `agent.connect(url, room)`, a *connected* agent: a `RoomClient` over
  WebSocket, for an agent in any other process (a worker, the CLI, another
  machine); the server admits it as it admits anyone, token and all.
- `agent.embed(server, room)`, an *embedded* agent: an `EmbeddedPeer` inside
  the process that runs the `Server`, with no socket and no token, for an
  application that hosts its own server and its agents together.

Every edit it makes carries `agent.origin`, so per-origin undo removes the
agent's work and only the agent's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.abc import TaskGroup

from ._conversation import (
    DEFAULT_HISTORY_TOKENS,
    AnswerStream,
    StopSignal,
    ThreadMemory,
    sendable,
    undo_run,
)
from ._llm import LLM
from ._loop import AgentEvent, AgentResult, run_loop
from ._remote import room_toolkits
from ._reporting import RunReporter
from ._toolkit import Toolkit
from ._tools import ToolContext

__all__ = ["Agent", "AgentOrigin"]

logger = logging.getLogger("meshroom.agents")


@dataclass(frozen=True)
class AgentOrigin:
    """Transaction origin of an agent's edits (hashable, so undo managers can track it)."""

    participant_id: str
    name: str
    kind: str = "agent"


class Agent:
    """An LLM participant that uses toolkits to work in a room.

    Args:
        name: Display name in the room (participants, awareness, messages).
        rules: Instructions (one string or several); toolkit rules are added after them.
        toolkits: What the agent can do. Tool names must be unique across toolkits.
        llm: The model (`OpenAILLM`, or anything with the `LLM` protocol).
        max_steps: Model turns per run before it stops (default 20: enough for a
            read-plan-edit-check cycle on a few sections, small enough to bound cost).
        time_limit: Seconds per run, or None for no limit.
        progress: Post each tool call to the room, as it completes, as a JSON message
            `{"type": "agent.progress", "step", "tool", "summary", "ok"}`, so front
            ends can show what the agent is doing.
        on_event: Called with every `AgentEvent` (the CLI prints them).
        answer_messages: While connected, answer room messages addressed to the
            agent (sent `to` its id, or to everyone starting with `@name`).
        participant_id: The agent's participant id (default: the client's UUID).
        room_tools: Also use the toolkits other participants offer in the room (a
            browser's `ui` toolkit, another agent offered as a tool), as they are
            listed when each run starts.
        stream: Show answers to room messages in the room while they are written.
        history_tokens: Tokens of a thread's earlier conversation sent with its next
            question (older turns are summarised in one line).
    """

    def __init__(
        self,
        name: str,
        *,
        rules: str | Sequence[str] = (),
        toolkits: Sequence[Toolkit] = (),
        llm: LLM,
        max_steps: int = 20,
        time_limit: float | None = None,
        progress: bool = True,
        on_event: Callable[[AgentEvent], Any] | None = None,
        answer_messages: bool = True,
        participant_id: str | None = None,
        room_tools: bool = True,
        stream: bool = True,
        history_tokens: int = DEFAULT_HISTORY_TOKENS,
    ) -> None:
        if not name.strip():
            raise ValueError("an agent needs a name")
        if max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {max_steps}")
        names = [tool.name for toolkit in toolkits for tool in toolkit]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"tool names offered twice: {duplicates}")
        self.name = name
        self.rules = [rules] if isinstance(rules, str) else list(rules)
        self.toolkits = list(toolkits)
        self.llm = llm
        self.max_steps = max_steps
        self.time_limit = time_limit
        self.progress = progress
        self.on_event = on_event
        self.answer_messages = answer_messages
        self._participant_id = participant_id
        self.room_tools = room_tools
        self.stream = stream
        #: One conversation per thread of room messages (see `_conversation`).
        self.threads = ThreadMemory(history_tokens)
        self.client: Any = None
        self._busy = anyio.Lock()
        self._stop = StopSignal()

    # -- identity ----------------------------------------------------------------------------

    @property
    def id(self) -> str:
        """The agent's participant id (its client's, once connected)."""
        if self.client is not None:
            return str(self.client.participant_id)
        return self._participant_id or self.name

    @property
    def origin(self) -> AgentOrigin:
        """The origin every edit of this agent carries."""
        return AgentOrigin(self.id, self.name)

    @property
    def room(self) -> str:
        return str(self.client.room) if self.client is not None else ""

    def instructions(self, toolkits: Sequence[Toolkit] | None = None) -> str:
        """The system prompt: who the agent is, its rules, then each toolkit's rules."""
        lines = [f"You are {self.name}, an AI agent working in a shared room"]
        if self.room:
            lines[0] += f" named {self.room!r}"
        lines[0] += (
            " alongside people who edit the same documents at the same time. Work through "
            "the tools; re-read before editing, because documents change under you. When the "
            "work is done, answer with a short summary and no tool calls."
        )
        lines += self.rules
        for toolkit in self.available_toolkits() if toolkits is None else toolkits:
            lines += toolkit.all_rules
        return "\n\n".join(line for line in lines if line)

    def available_toolkits(self) -> list[Toolkit]:
        """The agent's own toolkits, then (with `room_tools`) those offered in the room."""
        kits = list(self.toolkits)
        listed = getattr(self.client, "toolkits", None) if self.room_tools else None
        if listed:
            taken = {tool.name for toolkit in kits for tool in toolkit}
            participants = getattr(self.client, "participants", {}) or {}
            kits += room_toolkits(listed, participants, exclude=self.id, taken=taken)
        return kits

    # -- joining a room ----------------------------------------------------------------------

    @asynccontextmanager
    async def connect(
        self, url: str, room: str, *, token: str | None = None, **client_options: Any
    ) -> AsyncIterator[Agent]:
        """Join `room` on the server at `url` over WebSocket, as a participant of kind "agent".

        The way for an agent that runs in a process other than the server's: it is a
        `RoomClient` (`client_options` go to it), so auth, limits and reconnection
        apply to it as to any client.

        Raises:
            ClientError: the server cannot be reached or refused the agent.
        """
        from ..client._client import RoomClient

        options: dict[str, Any] = {"name": self.name, "kind": "agent", "token": token}
        if self._participant_id is not None:
            options["id"] = self._participant_id
        client = RoomClient(url, room, **options, **client_options)
        async with client, self.attach(client):
            yield self

    @asynccontextmanager
    async def embed(self, server: Any, room: str) -> AsyncIterator[Agent]:
        """Join `room` of `server`, in its process, as a participant of kind "agent".

        The way for an agent that lives beside the `Server` it works in: an
        `EmbeddedPeer` edits the live documents directly, with no socket, no token and
        no reconnection to care for (it is trusted as the server's own code). Its edits
        reach every connection and the storage hooks as a client's would.

        Raises:
            RoomNameError: `room` is not a valid room name.
        """
        from ._embedded import EmbeddedPeer

        peer = EmbeddedPeer(server, room, name=self.name, id=self._participant_id)
        async with peer, self.attach(peer):
            yield self

    @asynccontextmanager
    async def attach(self, client: Any) -> AsyncIterator[Agent]:
        """Work through a peer you opened yourself: a `RoomClient` or an `EmbeddedPeer`.

        `connect` and `embed` end here; use it directly only to share one peer between
        the agent and your own code. The agent leaves the peer open when it is done.
        """
        if self.client is not None:
            raise RuntimeError(f"agent {self.name!r} is already in room {self.room!r}")
        self.client = client
        try:
            async with anyio.create_task_group() as group:
                if self.answer_messages:
                    await group.start(self._answer_messages, group)
                yield self
                group.cancel_scope.cancel()
        finally:
            self.client = None

    # -- running -----------------------------------------------------------------------------

    async def run(
        self,
        instruction: str,
        *,
        on_behalf_of: str | None = None,
        history: Sequence[dict[str, Any]] = (),
        toolkits: Sequence[Toolkit] = (),
        stream: AnswerStream | None = None,
        thread: str | None = None,
    ) -> AgentResult:
        """Work on `instruction` until a final answer or a limit; return how it ended.

        Runs are serialised: a second run waits for the first (one agent, one train of
        thought, one cursor). `stream` shows the answer in the room as it is written;
        `stop()` ends the run at its next step boundary (``stopped``). While it runs, the
        agent's awareness on the room document says what it does (`_conversation`).

        Raises:
            LLMError: the model endpoint kept failing (tool failures never raise).
        """
        context = ToolContext(
            room=self.room,
            caller=self.id,
            on_behalf_of=on_behalf_of,
            client=self.client,
            origin=self.origin,
            agent=self,
        )
        messages = [*sendable(list(history)), {"role": "user", "content": instruction}]
        asked = time.perf_counter()  # a run's time counts from when it was asked

        async with self._busy:
            self._stop.clear()
            self._show_status({"state": "thinking", "thread": thread})
            toolkits = [*self.available_toolkits(), *toolkits]
            on_event = RunReporter(
                self, toolkits, instruction, on_behalf_of, stream, thread, started=asked
            )
            try:
                result = await run_loop(
                    llm=self.llm,
                    instructions=self.instructions(toolkits),
                    messages=messages,
                    toolkits=toolkits,
                    context=context,
                    max_steps=self.max_steps,
                    time_limit=self.time_limit,
                    on_event=on_event,
                    on_text=stream.on_text if stream is not None else None,
                    should_stop=lambda: self._stop.requested,
                )
                if result.stop_reason == "stopped" and self._stop.undo:
                    undo_run(context)
                return result
            finally:
                self._stop.clear()
                self._show_status({"state": "idle"})

    def stop(self, *, undo: bool = False) -> None:
        """End the running answer at its next step boundary; `undo` also undoes the edits
        it made so far (each document's, through the agent's own undo)."""
        if self._busy.locked():
            self._stop.request(undo=undo)

    def _show_status(self, status: dict[str, Any]) -> None:
        if self.client is None:
            return
        try:
            self.client.set_awareness("", {"status": {k: v for k, v in status.items() if v}})
        except Exception:  # status is best effort
            logger.debug("could not show the agent's status", exc_info=True)

    def as_toolkit(self, name: str, **options: Any) -> Toolkit:
        """This agent as a one-tool toolkit, JSON in and JSON out: offer it to the room and
        other agents delegate to it. `options` are `agent_toolkit`'s (`description`,
        `output_schema`, `input_schema`, `tool`)."""
        from ._delegate import agent_toolkit

        return agent_toolkit(self, name=name, **options)

    async def work_queue(
        self, queue: str, *, results: str | None = None, limit: int | None = None
    ) -> int:
        """Work through the room's work queue `queue`, one item at a time; return how many.

        Each item (a string, or JSON shown to the model as such) is one run. The item is
        acknowledged after its run, so one the agent did not finish (a failure, the
        agent stopped or disconnected) goes back to the queue for another worker. With
        `results`, ``{"item", "answer", "completed"}`` is sent to that queue after each
        run. Stops after `limit` items, or runs until cancelled.
        """
        from ._worker import work_through

        return await work_through(self, queue, results=results, limit=limit)

    async def _post(
        self, content: Any, *, to: str | None = None, thread: str | None = None
    ) -> None:
        if self.client is None:
            return
        try:
            if thread is None:
                await self.client.send_message(content, to=to)
            else:
                await self.client.send_message(content, to=to, thread=thread)
        except Exception:  # progress is best effort: never stop the work for it
            logger.debug("could not post to the room", exc_info=True)

    # -- answering room messages -------------------------------------------------------------

    async def _answer_messages(
        self, group: TaskGroup, *, task_status: anyio.abc.TaskStatus[None]
    ) -> None:
        from ._answering import follow_messages

        await follow_messages(self, group, task_status=task_status)
