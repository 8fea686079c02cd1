"""The model adapter: any OpenAI-compatible endpoint through the `openai` package.

The agent keeps its conversation in Chat Completions shape (system/user/
model/tool messages); the adapter sends it either to Chat Completions,
which every compatible server speaks, or to the Responses API when asked (or,
with `api="auto"`, when the endpoint has it).

Retries are the `openai` SDK's own, so there is one retry policy: rate limits,
timeouts, dropped connections, 408, 409 and 5xx answers are retried
`max_retries` times with the SDK's exponential backoff (0.5 s doubling to 8 s,
less up to a quarter at random), or after the server's `Retry-After` when it
sends one; other errors (bad request, bad key) fail at once, since retrying
cannot fix them. The adapter only watches the attempts go by, through the
HTTP client it hands the SDK, to count them and to tell `on_retry` what the SDK
is about to do.

Every error names what failed: the URL requested, the HTTP status and the
endpoint's own message (or, when no answer came, why not), on one line, so a
person can tell a wrong `--base-url` from a wrong model.
"""

from __future__ import annotations

import email.utils
import functools
import json
import time
import warnings
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ._exceptions import LLMError

if TYPE_CHECKING:
    from ._toolkit import Toolkit

__all__ = ["LLM", "LLMReply", "LLMToolCall", "OpenAILLM", "describe_error"]

#: Where the `openai` package sends requests when given no base URL.
OPENAI_BASE_URL = "https://api.openai.com/v1"

Api = Literal["chat", "responses", "auto"]
RetryCallback = Callable[[int, Exception, float], None]

#: The SDK's backoff without its jitter, and the longest `Retry-After` it waits for (a
#: longer one is not retried). Used only to tell `on_retry` what the SDK will do.
_SDK_FIRST_DELAY = 0.5
_SDK_MAX_DELAY = 8.0
_SDK_MAX_RETRY_AFTER = 120.0


@dataclass
class _Attempts:
    """The HTTP requests one SDK call made so far (first try and retries)."""

    count: int = 0


#: The attempts of the `complete()` running in this task: the HTTP client's `send` runs in
#: the task that awaits the SDK, so concurrent calls on one `OpenAILLM` count apart.
_current_attempts: ContextVar[_Attempts | None] = ContextVar("meshroom_llm_attempts", default=None)


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
        max_retries: Retries the `openai` SDK makes after a rate limit, timeout, connection
            error, 408, 409 or 5xx (0: none). Default 4: with the SDK's backoff that rides
            out about 7 s of trouble.
        timeout: Seconds per request before it counts as a timeout (and is retried).
        on_retry: Called with (attempt, error, delay) before the SDK waits to retry, for
            progress output: `error` is an `LLMError` whose text is the line to show, `delay`
            the server's `Retry-After`, else the SDK's backoff before its jitter takes up to
            a quarter off.
        retry_delay: Deprecated and ignored: the SDK's backoff is used.
        max_retry_delay: Deprecated and ignored: the SDK's backoff is used.

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
        retry_delay: float | None = None,
        max_retry_delay: float | None = None,
        timeout: float = 120.0,
        temperature: float | None = None,
        on_retry: RetryCallback | None = None,
    ) -> None:
        import os

        import openai

        if api not in ("chat", "responses", "auto"):
            raise ValueError(f"api must be 'chat', 'responses' or 'auto', not {api!r}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, got {max_retries}")
        for option, value in (("retry_delay", retry_delay), ("max_retry_delay", max_retry_delay)):
            if value is not None:
                warnings.warn(
                    f"OpenAILLM({option}=...) is ignored and will be removed: retries use the "
                    "openai SDK's backoff (0.5 s doubling to 8 s, or the server's Retry-After); "
                    "max_retries sets how many",
                    DeprecationWarning,
                    stacklevel=2,
                )
        self.model = model
        self.api: Api = api
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
            base_url=base_url,
            api_key=key,
            max_retries=max_retries,
            timeout=timeout,
            http_client=_watched_http_client(self._attempted),
        )

    @property
    def max_retries(self) -> int:
        """Retries after a transient failure: the SDK client's own setting, read from it."""
        return int(self._client.max_retries)

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
        """One model turn; the SDK retries transient failures.

        Raises:
            LLMError: the endpoint refused the request, or kept failing past `max_retries`.
        """
        import openai

        while True:
            attempts = _Attempts()
            token = _current_attempts.set(attempts)
            try:
                if self.api == "chat":
                    reply = await self._chat(instructions, messages, toolkits)
                else:
                    reply = await self._responses(instructions, messages, toolkits)
                return LLMReply(reply.text, reply.tool_calls, reply.usage, max(1, attempts.count))
            except openai.NotFoundError as error:
                if self.api != "auto":
                    raise _llm_error(error, attempts.count) from error
                self.api = "chat"  # no Responses API here: stay on Chat Completions
            except openai.OpenAIError as error:
                raise _llm_error(error, attempts.count) from error
            finally:
                _current_attempts.reset(token)

    async def _attempted(self, request: Any, response: Any, error: Exception | None) -> None:
        """Count one HTTP attempt and, if the SDK will retry it, tell `on_retry` first."""
        attempts = _current_attempts.get()
        if attempts is None:  # a request made outside `complete()`
            return
        attempts.count += 1
        if self.on_retry is None or attempts.count > self.max_retries:
            return
        if response is None:
            failure = LLMError(describe_error(_no_answer(request, error)), attempts=attempts.count)
        elif response.status_code >= 400 and _sdk_retries(response):
            await response.aread()  # for the endpoint's message; the SDK reads it from the cache
            failure = LLMError(
                _status_line(response), status=response.status_code, attempts=attempts.count
            )
        else:
            return
        retry_after = _retry_after(response.headers) if response is not None else None
        if retry_after is not None and 0 < retry_after <= _SDK_MAX_RETRY_AFTER:
            delay = retry_after
        else:
            delay = min(_SDK_FIRST_DELAY * 2 ** (attempts.count - 1), _SDK_MAX_DELAY)
        self.on_retry(attempts.count, failure, delay)

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


Observer = Callable[[Any, Any, "Exception | None"], Awaitable[None]]


@functools.cache
def _watched_client_class() -> type:
    """The SDK's default HTTP client class, extended to report every attempt it sends."""
    import openai

    class WatchedHttpClient(openai.DefaultAsyncHttpxClient):  # type: ignore[misc, valid-type]
        def __init__(self, observe: Observer, **options: Any) -> None:
            super().__init__(**options)
            self._observe = observe

        async def send(self, request: Any, **options: Any) -> Any:
            try:
                response = await super().send(request, **options)
            except Exception as error:  # no answer: the SDK decides whether to retry
                await self._observe(request, None, error)
                raise
            await self._observe(request, response, None)
            return response

    return WatchedHttpClient


def _watched_http_client(observe: Observer) -> Any:
    """An HTTP client for the SDK that calls `observe(request, response, error)` per attempt.

    `send` is the one method the SDK calls for a request, first try and retries
    alike, so watching it sees every attempt without touching the SDK's internals.
    """
    return _watched_client_class()(observe)


def _retry_after(headers: Any) -> float | None:
    """Seconds the server asked to wait (`retry-after-ms`, `retry-after` seconds or date)."""
    for header, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            return float(headers.get(header, "")) * scale
        except ValueError:
            continue
    parsed = email.utils.parsedate_tz(headers.get("retry-after") or "")
    return email.utils.mktime_tz(parsed) - time.time() if parsed is not None else None


def _sdk_retries(response: Any) -> bool:
    """Whether the SDK retries this answer (its documented rule, while retries remain)."""
    retry_after = _retry_after(response.headers)
    if retry_after is not None and retry_after > _SDK_MAX_RETRY_AFTER:
        return False
    should_retry = response.headers.get("x-should-retry")
    if should_retry in ("true", "false"):
        return should_retry == "true"
    return response.status_code in (408, 409, 429) or response.status_code >= 500


def _status_line(response: Any) -> str:
    """`describe_error`'s line for an error answer, built as the SDK builds its error."""
    import openai

    try:
        body: Any = json.loads(response.text)
    except ValueError:
        body = response.text
    if isinstance(body, dict):
        body = body.get("error", body)
    error = openai.APIStatusError(
        f"Error code: {response.status_code}", response=response, body=body
    )
    return describe_error(error)


def _no_answer(request: Any, error: Exception | None) -> Exception:
    """The SDK's error for a request that got no answer (it raises the same one)."""
    import openai

    timed_out = any(cls.__name__ == "TimeoutException" for cls in type(error).__mro__)
    failure = (openai.APITimeoutError if timed_out else openai.APIConnectionError)(request=request)
    failure.__cause__ = error
    return failure


def _llm_error(error: Exception, attempts: int) -> LLMError:
    """The SDK's final error as an `LLMError`; one the SDK retries says it gave up."""
    import openai

    attempts = max(1, attempts)
    text = describe_error(error)
    retried = isinstance(error, openai.APIConnectionError) or (
        isinstance(error, openai.APIStatusError) and _sdk_retries(error.response)
    )
    if retried:
        text += f" (gave up after {attempts} attempt{'' if attempts == 1 else 's'})"
    return LLMError(text, status=getattr(error, "status_code", None), attempts=attempts)


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
