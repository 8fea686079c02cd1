"""Failed model requests: which ones the `openai` SDK retries, after how long, and how each reads.

Apart from the client wiring because it follows the SDK's documented retry rule and
error shapes, which change with the SDK, not with how the adapter is assembled. Every
error names what failed: the URL requested, the HTTP status and the endpoint's own
message (or, when no answer came, why not), on one line, so a person can tell a wrong
`--base-url` from a wrong model.
"""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any

from ._exceptions import LLMError

__all__ = [
    "describe_error",
    "llm_error",
    "no_answer",
    "retry_delay",
    "sdk_retries",
    "status_line",
]

#: The SDK's backoff without its jitter, and the longest `Retry-After` it waits for (a
#: longer one is not retried). Used only to tell `on_retry` what the SDK will do.
_SDK_FIRST_DELAY = 0.5
_SDK_MAX_DELAY = 8.0
_SDK_MAX_RETRY_AFTER = 120.0


def retry_delay(attempt: int, response: Any) -> float:
    """Seconds the SDK waits before retrying `attempt` (the server's `Retry-After`, if any).

    The SDK's backoff is given before its jitter, which takes up to a quarter off.
    """
    after = _retry_after(response.headers) if response is not None else None
    if after is not None and 0 < after <= _SDK_MAX_RETRY_AFTER:
        return after
    return min(_SDK_FIRST_DELAY * 2 ** (attempt - 1), _SDK_MAX_DELAY)


def _retry_after(headers: Any) -> float | None:
    """Seconds the server asked to wait (`retry-after-ms`, `retry-after` seconds or date)."""
    for header, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            return float(headers.get(header, "")) * scale
        except ValueError:
            continue
    parsed = email.utils.parsedate_tz(headers.get("retry-after") or "")
    return email.utils.mktime_tz(parsed) - time.time() if parsed is not None else None


def sdk_retries(response: Any) -> bool:
    """Whether the SDK retries this answer (its documented rule, while retries remain)."""
    after = _retry_after(response.headers)
    if after is not None and after > _SDK_MAX_RETRY_AFTER:
        return False
    should_retry = response.headers.get("x-should-retry")
    if should_retry in ("true", "false"):
        return should_retry == "true"
    return response.status_code in (408, 409, 429) or response.status_code >= 500


def status_line(response: Any) -> str:
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


def no_answer(request: Any, error: Exception | None) -> Exception:
    """The SDK's error for a request that got no answer (it raises the same one)."""
    import openai

    timed_out = any(cls.__name__ == "TimeoutException" for cls in type(error).__mro__)
    failure = (openai.APITimeoutError if timed_out else openai.APIConnectionError)(request=request)
    failure.__cause__ = error
    return failure


def llm_error(error: Exception, attempts: int) -> LLMError:
    """The SDK's final error as an `LLMError`; one the SDK retries says it gave up."""
    import openai

    attempts = max(1, attempts)
    text = describe_error(error)
    retried = isinstance(error, openai.APIConnectionError) or (
        isinstance(error, openai.APIStatusError) and sdk_retries(error.response)
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
