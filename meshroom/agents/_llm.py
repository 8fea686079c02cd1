"""The model adapter: any OpenAI-compatible endpoint through the `openai` package.

The agent keeps its conversation in Chat Completions shape (system/user/
model/tool messages); the adapter sends it either to Chat Completions,
which every compatible server speaks, or to the Responses API when asked (or,
with `api="auto"`, when the endpoint has it). Rate limits, timeouts, dropped
connections and 5xx answers are retried with exponential backoff that honours
the server's `retry-after`; other errors (bad request, bad key) fail at once,
since retrying cannot fix them.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import anyio

from ._exceptions import LLMError

if TYPE_CHECKING:
    from ._toolkit import Toolkit

__all__ = ["LLM", "LLMReply", "LLMToolCall", "OpenAILLM"]

Api = Literal["chat", "responses", "auto"]
RetryCallback = Callable[[int, Exception, float], None]


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
    """What the agent needs from a model; `OpenAILLM` is the shipped implementation."""

    async def complete(
        self,
        *,
        instructions: str,
        messages: Sequence[dict[str, Any]],
        toolkits: Sequence[Toolkit],
    ) -> LLMReply: ...


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


class OpenAILLM:
    """A model behind an OpenAI-compatible endpoint.

    Args:
        model: Model name, as the endpoint knows it.
        base_url: Endpoint root (e.g. `http://127.0.0.1:8000/v1`); None means OpenAI's.
        api_key: Key; None reads `OPENAI_API_KEY`, or sends a placeholder for local servers.
        api: "chat" (Chat Completions), "responses", or "auto" (Responses when the
            endpoint answers it, otherwise Chat Completions from then on).
        max_retries: Retries after a rate limit, timeout, connection error or 5xx. Default 4:
            with the default delays that rides out about 8 s of trouble.
        retry_delay: First backoff in seconds, doubled per retry, capped by `max_retry_delay`.
        timeout: Seconds per request before it counts as a timeout (and is retried).
        on_retry: Called with (attempt, error, delay) before each retry, for progress output.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        api: Api = "chat",
        max_retries: int = 4,
        retry_delay: float = 0.5,
        max_retry_delay: float = 20.0,
        timeout: float = 120.0,
        temperature: float | None = None,
        on_retry: RetryCallback | None = None,
    ) -> None:
        import os

        import openai

        if api not in ("chat", "responses", "auto"):
            raise ValueError(f"api must be 'chat', 'responses' or 'auto', not {api!r}")
        self.model = model
        self.api: Api = api
        self.max_retries = max_retries
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.temperature = temperature
        self.on_retry = on_retry
        key = api_key or os.environ.get("OPENAI_API_KEY") or "unused"
        self._client = openai.AsyncOpenAI(
            base_url=base_url, api_key=key, max_retries=0, timeout=timeout
        )

    async def aclose(self) -> None:
        await self._client.close()

    async def __aenter__(self) -> OpenAILLM:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def complete(
        self,
        *,
        instructions: str,
        messages: Sequence[dict[str, Any]],
        toolkits: Sequence[Toolkit],
    ) -> LLMReply:
        """One model turn, retried on transient failures.

        Raises:
            LLMError: the endpoint refused the request, or kept failing past `max_retries`.
        """
        import openai

        attempt = 0
        while True:
            attempt += 1
            try:
                if self.api == "chat":
                    reply = await self._chat(instructions, messages, toolkits)
                else:
                    reply = await self._responses(instructions, messages, toolkits)
                return LLMReply(reply.text, reply.tool_calls, reply.usage, attempt)
            except openai.NotFoundError as error:
                if self.api != "auto":
                    raise LLMError(_describe(error), status=404, attempts=attempt) from error
                self.api = "chat"  # no Responses API here: stay on Chat Completions
                attempt -= 1
            except (
                openai.RateLimitError,
                openai.InternalServerError,
                openai.APITimeoutError,
                openai.APIConnectionError,
                openai.ConflictError,
            ) as error:
                status = getattr(error, "status_code", None)
                if attempt > self.max_retries:
                    raise LLMError(
                        f"{_describe(error)} (gave up after {attempt} attempts)",
                        status=status,
                        attempts=attempt,
                    ) from error
                delay = self._delay(attempt, error)
                if self.on_retry is not None:
                    self.on_retry(attempt, error, delay)
                await anyio.sleep(delay)
            except openai.APIStatusError as error:
                raise LLMError(
                    _describe(error), status=error.status_code, attempts=attempt
                ) from error
            except openai.OpenAIError as error:
                raise LLMError(_describe(error), attempts=attempt) from error

    def _delay(self, attempt: int, error: Exception) -> float:
        response = getattr(error, "response", None)
        headers = response.headers if response is not None else {}
        for header, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
            try:
                value = float(headers.get(header, ""))
            except ValueError:
                continue
            if 0 <= value * scale <= 60:
                return value * scale
        base = min(self.max_retry_delay, self.retry_delay * 2 ** (attempt - 1))
        return base * (0.75 + random.random() / 2)

    async def _chat(
        self, instructions: str, messages: Sequence[dict[str, Any]], toolkits: Sequence[Toolkit]
    ) -> LLMReply:
        tools = [spec for toolkit in toolkits for spec in toolkit.chat_completions_tools()]
        extra: dict[str, Any] = {"tools": tools} if tools else {}
        if self.temperature is not None:
            extra["temperature"] = self.temperature
        completion = await self._client.chat.completions.create(
            model=self.model,
            messages=[{"role": "system", "content": instructions}, *messages],
            **extra,
        )
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

    async def _responses(
        self, instructions: str, messages: Sequence[dict[str, Any]], toolkits: Sequence[Toolkit]
    ) -> LLMReply:
        tools = [spec for toolkit in toolkits for spec in toolkit.responses_tools()]
        extra: dict[str, Any] = {"tools": tools} if tools else {}
        if self.temperature is not None:
            extra["temperature"] = self.temperature
        response = await self._client.responses.create(
            model=self.model,
            instructions=instructions,
            input=_to_responses_input(messages),
            **extra,
        )
        texts: list[str] = []
        calls: list[LLMToolCall] = []
        for item in response.output or []:
            if item.type == "function_call":
                calls.append(LLMToolCall(item.call_id, item.name, item.arguments or ""))
            elif item.type == "message":
                texts += [part.text for part in item.content if getattr(part, "text", None)]
        usage = response.usage.model_dump() if response.usage else {}
        return LLMReply("".join(texts) or None, tuple(calls), _ints(usage))


def _ints(usage: dict[str, Any]) -> dict[str, int]:
    return {key: value for key, value in usage.items() if isinstance(value, int)}


def _describe(error: Exception) -> str:
    status = getattr(error, "status_code", None)
    body = getattr(error, "body", None)
    message = body.get("message") if isinstance(body, dict) else None
    text = message or str(error) or type(error).__name__
    return f"model endpoint error {status}: {text}" if status else f"model endpoint error: {text}"
