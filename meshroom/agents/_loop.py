"""The agent loop: rules + conversation + tool specs → tool calls → results → … → answer.

Kept apart from `Agent` (which owns the room connection) so it runs, and is
tested, with nothing but a model and toolkits. Independent calls run
concurrently: consecutive read-only calls in one model turn share a task
group; a call that writes runs alone, in the order the model gave, so
"insert after X, then edit X" means what it says.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
import anyio.lowlevel

from ._llm import LLM, LLMToolCall
from ._toolkit import Toolkit, find_tool
from ._tools import ErrorResponse, ToolContext, ToolResponse

__all__ = ["AgentEvent", "AgentResult", "ToolCallRecord", "run_loop"]

StopReason = Literal["answer", "step_limit", "time_limit", "stopped"]


@dataclass(frozen=True)
class ToolCallRecord:
    """One executed call: what the model asked and what it got back."""

    id: str
    name: str
    arguments: str
    response: ToolResponse
    step: int

    @property
    def ok(self) -> bool:
        return not isinstance(self.response, ErrorResponse)


@dataclass
class AgentResult:
    """How a run ended: the final text (empty if a limit stopped it), calls, usage."""

    text: str
    stop_reason: StopReason
    steps: int
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def completed(self) -> bool:
        return self.stop_reason == "answer"


@dataclass(frozen=True)
class AgentEvent:
    """Progress of a run, for front ends and the CLI.

    `kind` is "tool_call" (about to run), "tool_result" (ran; `error` tells how),
    "answer", or "limit". `summary` is a one-line human description, shortened;
    `content` is a tool result whole (what the model reads), for front ends that
    must show an error's details in full.
    """

    kind: Literal["tool_call", "tool_result", "answer", "limit"]
    step: int
    summary: str
    name: str | None = None
    arguments: str | None = None
    error: bool = False
    content: str | None = None
    #: How long the tool call took, in milliseconds ("tool_result").
    ms: float | None = None
    #: The run's LLM token usage so far ("answer" and "limit": the whole run's).
    usage: dict[str, int] | None = None


EventCallback = Callable[[AgentEvent], Any]


def summarize_call(name: str, arguments: str, limit: int = 80) -> str:
    """`name(key=value, …)`, shortened to `limit` characters, for progress lines."""
    try:
        parsed = json.loads(arguments) if arguments else {}
    except json.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict):
        parts = [f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in parsed.items()]
        text = f"{name}({', '.join(parts)})"
    else:
        text = f"{name}({arguments})"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _batches(calls: Sequence[LLMToolCall], toolkits: Sequence[Toolkit]) -> list[list[int]]:
    """Indices of calls grouped so that only consecutive read-only calls share a batch."""
    batches: list[list[int]] = []
    previous_read_only = False
    for index, item in enumerate(calls):
        toolkit = find_tool(toolkits, item.name)
        tool = toolkit.get(item.name) if toolkit else None
        read_only = bool(tool and tool.read_only)
        if read_only and previous_read_only:
            batches[-1].append(index)
        else:
            batches.append([index])
        previous_read_only = read_only
    return batches


async def run_loop(
    *,
    llm: LLM,
    instructions: str,
    messages: list[dict[str, Any]],
    toolkits: Sequence[Toolkit],
    context: ToolContext,
    max_steps: int = 20,
    time_limit: float | None = None,
    on_event: EventCallback | None = None,
    on_text: Callable[[str], Any] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> AgentResult:
    """Run the model until it answers without tool calls, or a limit is reached.

    `messages` is extended in place (so a caller can keep the conversation).
    Model failures (`LLMError`) propagate; tool failures are fed back to the model.
    With `on_text`, each model turn streams its text to it as it is written. With
    `should_stop`, the run ends (``stopped``) at the next step boundary once it says
    so: before asking the model again, or before the next batch of tool calls.
    """
    result = AgentResult(text="", stop_reason="step_limit", steps=0, messages=messages)

    async def emit(event: AgentEvent) -> None:
        if on_event is not None:
            outcome = on_event(event)
            if hasattr(outcome, "__await__"):
                await outcome

    durations: dict[int, float] = {}

    async def execute(item: LLMToolCall, step: int, slot: list[ToolResponse | None]) -> None:
        started = time.perf_counter()
        try:
            await run_call(item, slot)
        finally:
            durations[id(item)] = time.perf_counter() - started

    async def run_call(item: LLMToolCall, slot: list[ToolResponse | None]) -> None:
        toolkit = find_tool(toolkits, item.name)
        if toolkit is None:
            available = sorted(tool.name for kit in toolkits for tool in kit)
            slot[0] = ErrorResponse(f"unknown tool {item.name!r}", details={"available": available})
        else:
            slot[0] = await toolkit.execute(context, item.name, item.arguments)

    with anyio.move_on_after(time_limit) as scope:
        for step in range(1, max_steps + 1):
            if should_stop is not None and should_stop():
                result.stop_reason = "stopped"
                break
            result.steps = step
            streaming = {} if on_text is None else {"on_text": on_text}
            reply = await llm.complete(
                instructions=instructions, messages=messages, toolkits=toolkits, **streaming
            )
            for key, value in reply.usage.items():
                result.usage[key] = result.usage.get(key, 0) + value
            messages.append(reply.as_message())
            if not reply.tool_calls:
                result.text = reply.text or ""
                result.stop_reason = "answer"
                await emit(AgentEvent("answer", step, result.text, usage=dict(result.usage)))
                return result
            slots: list[list[ToolResponse | None]] = [[None] for _ in reply.tool_calls]
            for batch in _batches(reply.tool_calls, toolkits):
                if should_stop is not None and should_stop():
                    break  # the calls left are answered as not run, below
                for index in batch:
                    item = reply.tool_calls[index]
                    summary = summarize_call(item.name, item.arguments)
                    await emit(AgentEvent("tool_call", step, summary, item.name, item.arguments))
                async with anyio.create_task_group() as group:
                    for index in batch:
                        group.start_soon(execute, reply.tool_calls[index], step, slots[index])
                for index in batch:
                    item = reply.tool_calls[index]
                    response = slots[index][0]
                    assert response is not None
                    record = ToolCallRecord(item.id, item.name, item.arguments, response, step)
                    result.tool_calls.append(record)
                    line = response.to_content()
                    await emit(
                        AgentEvent(
                            "tool_result",
                            step,
                            line if len(line) <= 120 else line[:119] + "…",
                            item.name,
                            item.arguments,
                            error=not record.ok,
                            content=line,
                            ms=round(durations.get(id(item), 0.0) * 1000, 2),
                        )
                    )
            # let the room peer send the edits now, before the next model request
            await anyio.lowlevel.checkpoint()
            for item, slot in zip(reply.tool_calls, slots, strict=True):
                response = slot[0] or ErrorResponse("not run: the run was stopped")
                messages.append(
                    {"role": "tool", "tool_call_id": item.id, "content": response.to_content()}
                )
    if scope.cancelled_caught:
        result.stop_reason = "time_limit"
    await emit(
        AgentEvent(
            "limit", result.steps, f"stopped: {result.stop_reason}", usage=dict(result.usage)
        )
    )
    return result
