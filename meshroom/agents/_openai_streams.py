"""Streamed model turns: text as it is written, read into the same `LLMReply` at the end.

With `stream=True` both APIs send the turn in pieces: Chat Completions as chunks whose
deltas carry text and pieces of tool calls (by index), and a last chunk with the usage
when `stream_options.include_usage` asks for it; the Responses API as typed events, of
which the text deltas matter on the way and `response.completed` carries the whole
response. Each text piece goes to `on_text` as it arrives, so an agent's answer can grow
in the room while the model writes it.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from ._exceptions import LLMError
from ._llm import LLMReply, LLMToolCall
from ._openai_requests import responses_reply

__all__ = ["TextCallback", "read_chat_stream", "read_responses_stream"]

TextCallback = Callable[[str], "Awaitable[None] | None"]


async def _tell(on_text: TextCallback, piece: str) -> None:
    outcome = on_text(piece)
    if inspect.isawaitable(outcome):
        await outcome


async def read_chat_stream(stream: Any, on_text: TextCallback) -> LLMReply:
    """Read a streamed Chat Completions turn, telling `on_text` each piece of text."""
    text: list[str] = []
    calls: dict[int, dict[str, str]] = {}
    usage: dict[str, int] = {}
    async for chunk in stream:
        if getattr(chunk, "usage", None):
            usage = {k: v for k, v in chunk.usage.model_dump().items() if isinstance(v, int)}
        for choice in chunk.choices or ():
            delta = choice.delta
            if delta.content:
                text.append(delta.content)
                await _tell(on_text, delta.content)
            for piece in delta.tool_calls or ():
                call = calls.setdefault(piece.index, {"id": "", "name": "", "arguments": ""})
                if piece.id:
                    call["id"] = piece.id
                function = piece.function
                if function is not None:
                    call["name"] += function.name or ""
                    call["arguments"] += function.arguments or ""
    tool_calls = tuple(
        LLMToolCall(call["id"], call["name"], call["arguments"])
        for _, call in sorted(calls.items())
        if call["name"]
    )
    return LLMReply("".join(text) or None, tool_calls, usage)


async def read_responses_stream(stream: Any, on_text: TextCallback) -> LLMReply:
    """Read a streamed Responses turn, telling `on_text` each piece of text."""
    try:
        return await _read_events(stream, on_text)
    finally:
        await stream.close()  # returned at `response.completed`: release the connection


async def _read_events(stream: Any, on_text: TextCallback) -> LLMReply:
    async for event in stream:
        kind = getattr(event, "type", "")
        if kind == "response.output_text.delta" and event.delta:
            await _tell(on_text, event.delta)
        elif kind == "response.completed":
            return responses_reply(event.response)
        elif kind in ("response.failed", "response.incomplete", "error"):
            raise LLMError(f"the endpoint ended the streamed response: {kind}")
    raise LLMError("the streamed response ended without response.completed")
