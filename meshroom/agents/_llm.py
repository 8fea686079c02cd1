"""What an agent needs from a model: one turn (`LLM.complete`) and its reply (`LLMReply`).

Apart from the adapters because the agent loop, its tests and any other model client
depend on this shape alone: the conversation is kept in Chat Completions shape
(system/user/model/tool messages), and a reply is text and/or tool calls, with token
usage and how many attempts it took. `OpenAILLM` (`_openai`) is the shipped
implementation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ._toolkit import Toolkit

__all__ = ["LLM", "LLMReply", "LLMToolCall"]


@dataclass(frozen=True)
class LLMToolCall:
    """A tool call the model asked for; `arguments` is its raw JSON text."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class LLMReply:
    """One model turn: text and/or tool calls, token usage, and how many attempts it took."""

    text: str | None
    tool_calls: tuple[LLMToolCall, ...] = ()
    usage: dict[str, int] = field(default_factory=dict)
    attempts: int = 1

    def as_message(self) -> dict[str, Any]:
        """The turn as a Chat Completions message of the model, to append to the conversation."""
        message: dict[str, Any] = {"role": "assistant", "content": self.text}
        if self.tool_calls:
            message["tool_calls"] = [
                {
                    "id": item.id,
                    "type": "function",
                    "function": {"name": item.name, "arguments": item.arguments},
                }
                for item in self.tool_calls
            ]
        return message


class LLM(Protocol):
    """What the agent needs from a model; `OpenAILLM` is the shipped implementation.

    An agent that streams its answers passes `on_text` (called with each piece of the
    turn's text as the model writes it); a model that cannot stream may take the keyword
    and call it once with the whole text.
    """

    async def complete(
        self,
        *,
        instructions: str,
        messages: Sequence[dict[str, Any]],
        toolkits: Sequence[Toolkit],
    ) -> LLMReply: ...
