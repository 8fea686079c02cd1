"""Steps of a model script: replies, tool calls, failures, and the requests they answer."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Union

__all__ = [
    "Call",
    "Fail",
    "Reply",
    "ScriptedRequest",
    "Step",
    "ToolCalls",
    "call",
    "fail",
    "reply",
    "tool_calls",
]


@dataclass(frozen=True)
class Reply:
    """A final text answer."""

    text: str


@dataclass(frozen=True)
class Call:
    """One tool call; `arguments` is the raw JSON text (may be deliberately broken)."""

    name: str
    arguments: str


@dataclass(frozen=True)
class ToolCalls:
    """A model turn that calls tools (optionally with some text)."""

    calls: tuple[Call, ...]
    text: str | None = None


@dataclass(frozen=True)
class Fail:
    """An HTTP error; `retry_after` (seconds) is sent as `retry-after-ms` and `retry-after`."""

    status: int
    message: str = "scripted failure"
    retry_after: float | None = None


Step = Union[Reply, ToolCalls, Fail, Callable[["ScriptedRequest"], "Step"]]  # noqa: UP007


def reply(text: str) -> Reply:
    return Reply(text)


def call(name: str, /, **arguments: Any) -> Call:
    return Call(name, json.dumps(arguments))


def tool_calls(*calls: Call, text: str | None = None) -> ToolCalls:
    return ToolCalls(tuple(calls), text)


def fail(status: int, message: str = "scripted failure", retry_after: float | None = None) -> Fail:
    return Fail(status, message, retry_after)


@dataclass
class ScriptedRequest:
    """One request the server received, with methods to read the conversation."""

    api: str  # "chat" or "responses"
    body: dict[str, Any]
    messages: list[dict[str, Any]] = field(default_factory=list)  # Chat Completions shape

    @property
    def tool_names(self) -> list[str]:
        names = []
        for spec in self.body.get("tools") or []:
            names.append(spec.get("name") or spec.get("function", {}).get("name"))
        return names

    def tool_results(self) -> list[str]:
        """Contents of the tool results after the last model turn (the fresh ones)."""
        results: list[str] = []
        for message in reversed(self.messages):
            if message.get("role") != "tool":
                break
            results.insert(0, message.get("content") or "")
        return results

    def last_json(self) -> Any:
        """The last fresh tool result parsed as JSON (None if there is none or it is not JSON)."""
        results = self.tool_results()
        if not results:
            return None
        try:
            return json.loads(results[-1])
        except json.JSONDecodeError:
            return None

    @property
    def user_text(self) -> str:
        users = [m for m in self.messages if m.get("role") == "user"]
        content = users[-1].get("content") if users else ""
        return content if isinstance(content, str) else json.dumps(content)
