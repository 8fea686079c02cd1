"""The model adapter: any OpenAI-compatible endpoint through the `openai` package.

The agent keeps its conversation in Chat Completions shape (system/user/
model/tool messages); the adapter sends it either to Chat Completions,
which every compatible server speaks, or to the Responses API when asked (or,
with `api="auto"`, when the endpoint has it). Rate limits, timeouts, dropped
connections and 5xx answers are retried with exponential backoff that honours
the server's `retry-after`; other errors (bad request, bad key) fail at once,
since retrying cannot fix them. Every error names what failed: the URL
requested, the HTTP status and the endpoint's own message (or, when no answer
came, why not), so a person can tell a wrong `--base-url` from a wrong model.
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

__all__ = ["LLM", "LLMReply", "LLMToolCall", "OpenAILLM", "describe_error"]

#: Where the `openai` package sends requests when given no base URL.
OPENAI_BASE_URL = "https://api.openai.com/v1"

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
        api_key: Key; None reads `OPENAI_API_KEY`, or sends a placeholder for local servers
            (OpenAI's own endpoint always needs one: without it the constructor raises).
        api: "chat" (Chat Completions), "responses", or "auto" (Responses when the
            endpoint answers it, otherwise Chat Completions from then on).
        max_retries: Retries after a rate limit, timeout, connection error or 5xx. Default 4:
            with the default delays that rides out about 8 s of trouble.
        retry_delay: First backoff in seconds, doubled per retry, capped by `max_retry_delay`.
        timeout: Seconds per request before it counts as a timeout (and is retried).
        on_retry: Called with (attempt, error, delay) before each retry, for progress output
            (`describe_error(error)` is the line to show).

    Raises:
        LLMError: no key for OpenAI's own endpoint (no `base_url`, no `OPENAI_BASE_URL`).
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
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if not key and not (base_url or os.environ.get("OPENAI_BASE_URL")):
            raise LLMError(
                f"no API key for {OPENAI_BASE_URL}: pass one (--api-key) or set "
                "OPENAI_API_KEY, or give the base URL of a local server"
            )
        key = key or "unused"  # local servers take any key
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
                    raise LLMError(describe_error(error), status=404, attempts=attempt) from error
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
                        f"{describe_error(error)} (gave up after {attempt} attempts)",
                        status=status,
                        attempts=attempt,
                    ) from error
                delay = self._delay(attempt, error)
                if self.on_retry is not None:
                    self.on_retry(attempt, error, delay)
                await anyio.sleep(delay)
            except openai.APIStatusError as error:
                raise LLMError(
                    describe_error(error), status=error.status_code, attempts=attempt
                ) from error
            except openai.OpenAIError as error:
                raise LLMError(describe_error(error), attempts=attempt) from error

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


def _endpoint_message(error: Exception) -> str:
    """The endpoint's own words: the `message` of its JSON error, else its text, else why."""
    body = getattr(error, "body", None)
    if isinstance(body, dict) and body.get("message"):
        return " ".join(str(body["message"]).split())
    if isinstance(body, str) and body.strip():
        text = " ".join(body.split())
        return text if len(text) <= 300 else text[:299] + "…"  # an HTML error page
    cause = error.__cause__ or error.__context__
    cause_text = " ".join(str(cause).split()) if cause is not None else ""
    text = " ".join(str(getattr(error, "message", "") or error).split())
    if cause_text and cause_text not in text:
        text = f"{text.rstrip('.')} ({cause_text})" if text else cause_text
    return text or type(error).__name__


def describe_error(error: Exception) -> str:
    """One line for a failed model request: the URL, the HTTP status, the endpoint's message.

    ```text
    model endpoint http://127.0.0.1:8000/v1/chat/completions answered 400: model 'x' not found
    model endpoint http://127.0.0.1:9/v1/chat/completions: Connection error (connection refused)
    ```
    """
    if isinstance(error, LLMError):
        return str(error)
    request = getattr(error, "request", None)
    url = getattr(request, "url", None)
    where = f"model endpoint {url}" if url else "model endpoint"
    status = getattr(error, "status_code", None)
    message = _endpoint_message(error)
    return f"{where} answered {status}: {message}" if status else f"{where}: {message}"
