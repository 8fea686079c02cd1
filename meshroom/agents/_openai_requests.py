"""Chat Completions and Responses requests built from the conversation, and replies read back.

Apart from the client wiring because it changes with the two APIs' shapes, not with
how requests are sent or retried: the agent keeps its conversation in Chat Completions
shape, so a Chat Completions request sends it as it is (after the instructions as the
system message), a Responses request turns it into input items, and each API's answer
is read into an `LLMReply`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._exceptions import LLMError
from ._llm import LLMReply, LLMToolCall

if TYPE_CHECKING:
    from ._toolkit import Toolkit

__all__ = ["chat_reply", "chat_request", "responses_reply", "responses_request"]


def chat_request(
    model: str,
    instructions: str,
    messages: Sequence[dict[str, Any]],
    toolkits: Sequence[Toolkit],
    temperature: float | None,
) -> dict[str, Any]:
    """The arguments of a Chat Completions request for one turn."""
    tools = [spec for toolkit in toolkits for spec in toolkit.chat_completions_tools()]
    request: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "system", "content": instructions}, *messages],
    }
    if tools:
        request["tools"] = tools
    if temperature is not None:
        request["temperature"] = temperature
    return request


def chat_reply(completion: Any) -> LLMReply:
    """The turn a Chat Completions answer holds.

    Raises:
        LLMError: the answer has no choices.
    """
    if not completion.choices:
        raise LLMError("the endpoint returned no choices")
    message = completion.choices[0].message
    calls = tuple(
        LLMToolCall(item.id, item.function.name, item.function.arguments or "")
        for item in message.tool_calls or ()
        if getattr(item, "function", None) is not None
    )
    usage = completion.usage.model_dump() if completion.usage else {}
    return LLMReply(message.content, calls, _ints(usage))


def responses_request(
    model: str,
    instructions: str,
    messages: Sequence[dict[str, Any]],
    toolkits: Sequence[Toolkit],
    temperature: float | None,
) -> dict[str, Any]:
    """The arguments of a Responses request for one turn."""
    tools = [spec for toolkit in toolkits for spec in toolkit.responses_tools()]
    request: dict[str, Any] = {
        "model": model,
        "instructions": instructions,
        "input": _to_responses_input(messages),
    }
    if tools:
        request["tools"] = tools
    if temperature is not None:
        request["temperature"] = temperature
    return request


def responses_reply(response: Any) -> LLMReply:
    """The turn a Responses answer holds."""
    texts: list[str] = []
    calls: list[LLMToolCall] = []
    for item in response.output or []:
        if item.type == "function_call":
            calls.append(LLMToolCall(item.call_id, item.name, item.arguments or ""))
        elif item.type == "message":
            texts += [part.text for part in item.content if getattr(part, "text", None)]
    usage = response.usage.model_dump() if response.usage else {}
    return LLMReply("".join(texts) or None, tuple(calls), _ints(usage))


def _to_responses_input(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role == "tool":
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": message["tool_call_id"],
                    "output": message.get("content") or "",
                }
            )
            continue
        if message.get("content"):
            items.append({"role": role, "content": message["content"]})
        for item in message.get("tool_calls") or []:
            items.append(
                {
                    "type": "function_call",
                    "call_id": item["id"],
                    "name": item["function"]["name"],
                    "arguments": item["function"]["arguments"],
                }
            )
    return items


def _ints(usage: dict[str, Any]) -> dict[str, int]:
    return {key: value for key, value in usage.items() if isinstance(value, int)}
