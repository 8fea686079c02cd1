"""Steps of a model script: replies, tool calls, failures, and the requests they answer.

A script can also be written as JSON (what `meshroom agent --script FILE` reads),
a list with one object per model turn, taken in order::

    [
      {"tool_calls": [{"name": "read_document",
                       "arguments": {"path": "notes/plan", "format": "outline"}}]},
      {"tool_calls": [{"name": "insert_markdown",
                       "arguments": {"path": "notes/plan", "position": "last_child",
                                     "target_id": null, "markdown": "Risks: none."}}],
       "text": "Adding the risks."},
      {"fail": 429, "message": "slow down", "retry_after": 0.5},
      {"reply": "Added a risks line."}
    ]

- ``tool_calls``: the tools to call, each a ``name`` and its ``arguments`` (an
  object, or a string sent as it is, so broken JSON can be tried); ``text``
  is optional words said with the calls;
- ``fail``: an HTTP status to answer with, an optional ``message`` and
  ``retry_after`` seconds (429 and 5xx are retried by the ``openai`` client);
- ``reply``: the final answer, which ends the agent's run.

`steps_from_json` turns that list into steps; its errors name the step.
"""

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
    "steps_from_json",
    "tool_calls",
]

_STEP_KINDS = ("tool_calls", "reply", "fail")


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
    """A final answer: a turn without tool calls, which ends the agent's run."""
    return Reply(text)


def call(name: str, /, **arguments: Any) -> Call:
    """A call of tool `name` with `arguments` as JSON (`Call(name, text)` sends broken JSON)."""
    return Call(name, json.dumps(arguments))


def tool_calls(*calls: Call, text: str | None = None) -> ToolCalls:
    """A turn that calls `calls` in one go (read-only ones may run concurrently)."""
    return ToolCalls(tuple(calls), text)


def fail(status: int, message: str = "scripted failure", retry_after: float | None = None) -> Fail:
    """An HTTP error with OpenAI's error body; `retry_after` seconds keeps retrying tests fast."""
    return Fail(status, message, retry_after)


@dataclass
class ScriptedRequest:
    """One request the server received, with methods to read the conversation."""

    api: str  # "chat" or "responses"
    body: dict[str, Any]
    messages: list[dict[str, Any]] = field(default_factory=list)  # Chat Completions shape
    #: The HTTP headers, lower-cased (the SDK's retries say which they are, for instance).
    headers: dict[str, str] = field(default_factory=dict)

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


def _call_from_json(item: Any, where: str) -> Call:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
        raise ValueError(f'{where}: a tool call is an object with a "name" and "arguments"')
    unknown = sorted(set(item) - {"name", "arguments"})
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r} (a call has name, arguments)")
    arguments = item.get("arguments", {})
    if isinstance(arguments, dict):
        return Call(item["name"], json.dumps(arguments))
    if isinstance(arguments, str):
        return Call(item["name"], arguments)  # raw text, deliberately broken JSON included
    raise ValueError(f'{where}: "arguments" must be an object or a string')


def _step_from_json(item: Any, where: str) -> Reply | ToolCalls | Fail:
    kinds = [kind for kind in _STEP_KINDS if isinstance(item, dict) and kind in item]
    if len(kinds) != 1:
        raise ValueError(f"{where}: a step is an object with one of {', '.join(_STEP_KINDS)}")
    kind = kinds[0]
    allowed = {"tool_calls": {"tool_calls", "text"}, "reply": {"reply"}}.get(
        kind, {"fail", "message", "retry_after"}
    )
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r} in a {kind} step")
    if kind == "reply":
        if not isinstance(item["reply"], str):
            raise ValueError(f'{where}: "reply" must be a string')
        return Reply(item["reply"])
    if kind == "fail":
        status, message = item["fail"], item.get("message", "scripted failure")
        retry_after = item.get("retry_after")
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError(f'{where}: "fail" must be an HTTP error status (400-599)')
        if not isinstance(message, str):
            raise ValueError(f'{where}: "message" must be a string')
        if retry_after is not None and (
            isinstance(retry_after, bool)
            or not isinstance(retry_after, int | float)
            or retry_after < 0
        ):
            raise ValueError(f'{where}: "retry_after" must be a number of seconds >= 0')
        return Fail(status, message, retry_after)
    calls, text = item["tool_calls"], item.get("text")
    if not isinstance(calls, list) or not calls:
        raise ValueError(f'{where}: "tool_calls" must be a non-empty list')
    if text is not None and not isinstance(text, str):
        raise ValueError(f'{where}: "text" must be a string')
    parsed = tuple(_call_from_json(call, f"{where}, call {i}") for i, call in enumerate(calls, 1))
    return ToolCalls(parsed, text)


def steps_from_json(data: Any) -> list[Reply | ToolCalls | Fail]:
    """The steps of a script written as JSON (see the module docstring for the format).

    Raises:
        ValueError: `data` is not a list of steps; the message names the step (from 1).
    """
    if not isinstance(data, list) or not data:
        raise ValueError("a script is a non-empty JSON list of steps")
    return [_step_from_json(item, f"step {i}") for i, item in enumerate(data, 1)]
