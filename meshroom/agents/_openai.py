"""`OpenAILLM`: any OpenAI-compatible endpoint, through the `openai` package.

The adapter sends the conversation either to Chat Completions, which every compatible
server speaks, or to the Responses API when asked (or, with `api="auto"`, when the
endpoint has it); the requests and replies of each are `_openai_requests`'.

Retries are the `openai` SDK's own, so there is one retry policy: rate limits,
timeouts, dropped connections, 408, 409 and 5xx answers are retried
`max_retries` times with the SDK's exponential backoff (0.5 s doubling to 8 s,
less up to a quarter at random), or after the server's `Retry-After` when it
sends one; other errors (bad request, bad key) fail at once, since retrying
cannot fix them. The adapter only watches the attempts go by, through the
HTTP client it hands the SDK, to count them and to tell `on_retry` what the SDK
is about to do; how each failure reads is `_openai_failures`'.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ._exceptions import LLMError
from ._llm import LLMReply
from ._openai_failures import (
    describe_error,
    llm_error,
    no_answer,
    retry_delay,
    sdk_retries,
    status_line,
)
from ._openai_requests import chat_reply, chat_request, responses_reply, responses_request
from ._openai_streams import TextCallback, read_chat_stream, read_responses_stream

if TYPE_CHECKING:
    from ._toolkit import Toolkit

__all__ = ["OpenAILLM"]

#: Where the `openai` package sends requests when given no base URL.
OPENAI_BASE_URL = "https://api.openai.com/v1"

Api = Literal["chat", "responses", "auto"]
RetryCallback = Callable[[int, Exception, float], None]


@dataclass
class _Attempts:
    """The HTTP requests one SDK call made so far (first try and retries)."""

    count: int = 0


#: The attempts of the `complete()` running in this task: the HTTP client's `send` runs in
#: the task that awaits the SDK, so concurrent calls on one `OpenAILLM` count apart.
_current_attempts: ContextVar[_Attempts | None] = ContextVar("meshroom_llm_attempts", default=None)


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
        on_text: TextCallback | None = None,
    ) -> LLMReply:
        """One model turn; the SDK retries transient failures.

        With `on_text`, the turn is streamed and each piece of its text is passed to
        `on_text` as it arrives (`_openai_streams`); the reply is the same either way.

        Raises:
            LLMError: the endpoint refused the request, or kept failing past `max_retries`.
        """
        import openai

        while True:
            attempts = _Attempts()
            token = _current_attempts.set(attempts)
            try:
                if self.api == "chat":
                    reply = await self._chat(instructions, messages, toolkits, on_text)
                else:
                    reply = await self._responses(instructions, messages, toolkits, on_text)
                return LLMReply(reply.text, reply.tool_calls, reply.usage, max(1, attempts.count))
            except openai.NotFoundError as error:
                if self.api != "auto":
                    raise llm_error(error, attempts.count) from error
                self.api = "chat"  # no Responses API here: stay on Chat Completions
            except openai.OpenAIError as error:
                raise llm_error(error, attempts.count) from error
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
            failure = LLMError(describe_error(no_answer(request, error)), attempts=attempts.count)
        elif response.status_code >= 400 and sdk_retries(response):
            await response.aread()  # for the endpoint's message; the SDK reads it from the cache
            failure = LLMError(
                status_line(response), status=response.status_code, attempts=attempts.count
            )
        else:
            return
        self.on_retry(attempts.count, failure, retry_delay(attempts.count, response))

    async def _chat(
        self,
        instructions: str,
        messages: Sequence[dict[str, Any]],
        toolkits: Sequence[Toolkit],
        on_text: TextCallback | None,
    ) -> LLMReply:
        request = chat_request(self.model, instructions, messages, toolkits, self.temperature)
        if on_text is None:
            return chat_reply(await self._client.chat.completions.create(**request))
        request |= {"stream": True, "stream_options": {"include_usage": True}}
        stream = await self._client.chat.completions.create(**request)
        return await read_chat_stream(stream, on_text)

    async def _responses(
        self,
        instructions: str,
        messages: Sequence[dict[str, Any]],
        toolkits: Sequence[Toolkit],
        on_text: TextCallback | None,
    ) -> LLMReply:
        request = responses_request(self.model, instructions, messages, toolkits, self.temperature)
        if on_text is None:
            return responses_reply(await self._client.responses.create(**request))
        stream = await self._client.responses.create(**request, stream=True)
        return await read_responses_stream(stream, on_text)


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
