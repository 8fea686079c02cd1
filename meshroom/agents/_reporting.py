"""What a run tells as it goes: the caller's `on_event`, the agent's status, progress messages.

Each `AgentEvent` of a run goes, in order, to the agent's `on_event` (the CLI prints
them), to its status in the room (thinking, calling a tool on a path, waiting for the
person whose tool it called), to the answer being streamed (words the model said with
tool calls are not the answer: the stream starts again), and, with `progress`, to the
room as JSON messages the server logs in the room's activity (docs/activity.md):

- ``agent.progress`` after each tool call: ``{step, tool, summary, ok, ms}``;
- ``agent.run`` when the run ends: ``{steps, stop, ms, tools, errors, tokens, model}``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ._conversation import AnswerStream, calling_status
from ._loop import AgentEvent, summarize_call
from ._remote import RemoteToolkit
from ._toolkit import Toolkit

#: The agent is an `Agent` (`_agent`), named `Any` here: `_agent` imports this module.
Agent = Any

__all__ = ["PROGRESS_TYPE", "RUN_TYPE", "RunReporter"]

#: Progress messages are posted as JSON room messages of this type.
PROGRESS_TYPE = "agent.progress"
#: With `progress`, each run ends with a JSON room message of this type: its steps, how it
#: stopped, how long it took, its tool calls, LLM tokens and model. The server logs both
#: kinds in the room's activity, whether the agent is connected or embedded.
RUN_TYPE = "agent.run"


class RunReporter:
    """The `on_event` of one run (see the module docstring)."""

    def __init__(
        self,
        agent: Agent,
        toolkits: Sequence[Toolkit],
        instruction: str,
        on_behalf_of: str | None,
        stream: AnswerStream | None,
        thread: str | None,
        *,
        started: float,
    ) -> None:
        self.agent = agent
        self.instruction = instruction
        self.on_behalf_of = on_behalf_of
        self.stream = stream
        self.thread = thread
        self.started = started
        self.tools = 0
        self.errors = 0
        #: Tool name -> who offers it, for the tools other participants offer.
        self.offerers = {
            tool.name: kit.offered_by
            for kit in toolkits
            if isinstance(kit, RemoteToolkit)
            for tool in kit
        }

    async def __call__(self, event: AgentEvent) -> None:
        agent = self.agent
        if agent.on_event is not None:
            outcome = agent.on_event(event)
            if hasattr(outcome, "__await__"):
                await outcome
        if event.kind == "tool_call":
            if self.stream is not None:
                self.stream.reset()
            agent._show_status(calling_status(event, self.offerers, self.thread))
        elif event.kind == "tool_result":
            agent._show_status({"state": "thinking", "thread": self.thread})
            self.tools += 1
            self.errors += int(event.error)
            if agent.progress:  # once the call ran: its edit reaches the room before the note
                await agent._post(self._progress(event), to=self.on_behalf_of)
        elif agent.progress and event.kind in ("answer", "limit"):
            await agent._post(self._report(event), to=self.on_behalf_of)

    def _progress(self, event: AgentEvent) -> dict[str, Any]:
        return {
            "type": PROGRESS_TYPE,
            "step": event.step,
            "tool": event.name,
            "summary": summarize_call(event.name or "", event.arguments or ""),
            "ok": not event.error,
            "ms": event.ms,
        }

    def _report(self, event: AgentEvent) -> dict[str, Any]:
        stop = event.summary.removeprefix("stopped: ") if event.kind == "limit" else "answer"
        report: dict[str, Any] = {
            "type": RUN_TYPE,
            "steps": event.step,
            "stop": stop,
            "ms": round((time.perf_counter() - self.started) * 1000, 1),
            "tools": self.tools,
            "errors": self.errors,
            "tokens": event.usage or {},
            "model": getattr(self.agent.llm, "model", None),
        }
        if self.on_behalf_of is None:  # a run asked in code, not by a room message
            report["instruction"] = self.instruction[:200]
        return report
