"""A scripted OpenAI-compatible HTTP server: real wire format, replies decided in advance.

Tests, the example and the benchmark drive the real `openai` client against
it, so the adapter, retries and tool-call parsing are exercised exactly as
against a hosted model, without patching the SDK. It speaks Chat Completions
(plain and streamed) and the Responses API on `127.0.0.1`, in a thread, so it
runs beside any event loop::

    with ScriptedLLMServer([tool_calls(call("word_count", text="a b")), reply("2 words")]) as llm:
        llm.base_url  # "http://127.0.0.1:PORT/v1"

Each request takes the next step of the script: a `reply`, `tool_calls`, a
`fail` (HTTP error, e.g. 429 with a retry delay), or a function of the
`ScriptedRequest` returning one of those (to answer from tool results).
Running out of script is answered with HTTP 500, so a test sees it.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Union

__all__ = [
    "Call",
    "Fail",
    "Reply",
    "ScriptedLLMServer",
    "ScriptedRequest",
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
    """An assistant turn that calls tools (optionally with some text)."""

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
    """One request the server received, with helpers to read the conversation."""

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
        """Contents of the tool results after the last assistant turn (the fresh ones)."""
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


def _responses_to_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if body.get("instructions"):
        messages.append({"role": "system", "content": body["instructions"]})
    items = body.get("input")
    if isinstance(items, str):
        return [*messages, {"role": "user", "content": items}]
    for item in items or []:
        kind = item.get("type", "message")
        if kind == "function_call_output":
            messages.append(
                {"role": "tool", "tool_call_id": item["call_id"], "content": item["output"]}
            )
        elif kind == "function_call":
            messages.append({"role": "assistant", "tool_calls": [item]})
        else:
            content = item.get("content")
            if isinstance(content, list):
                content = "".join(part.get("text", "") for part in content)
            messages.append({"role": item.get("role", "user"), "content": content})
    return messages


class ScriptedLLMServer:
    """Serve a script of model replies over HTTP on 127.0.0.1 (a context manager, sync or async).

    Args:
        script: Steps, taken one per request; any iterable (e.g. `itertools.repeat`).
        model: The model name reported back.
        port: 0 picks a free port.
        latency: Seconds each answer takes, as a model's thinking would (default 0).
    """

    def __init__(
        self,
        script: Iterable[Step] = (),
        *,
        model: str = "scripted",
        port: int = 0,
        latency: float = 0.0,
    ) -> None:
        self.model = model
        self.latency = latency
        self.requests: list[ScriptedRequest] = []
        #: Exceptions raised by function steps (answered with HTTP 400, which is not retried).
        self.errors: list[Exception] = []
        self._script: Iterator[Step] = iter(script)
        self._lock = threading.Lock()
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the scripted server is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def extend(self, steps: Iterable[Step]) -> None:
        """Append steps to what is left of the script."""
        with self._lock:
            self._script = itertools.chain(self._script, list(steps))

    def start(self) -> None:
        handler = type("Handler", (_Handler,), {"scripted": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ScriptedLLMServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> ScriptedLLMServer:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        import anyio

        await anyio.to_thread.run_sync(self.stop)

    def _next_step(self, request: ScriptedRequest) -> Step | None:
        with self._lock:
            self.requests.append(request)
            step = next(self._script, None)
        try:
            while callable(step):
                step = step(request)
        except Exception as error:  # a broken script fails the run, visibly and without retries
            self.errors.append(error)
            return Fail(400, f"scripted step raised {type(error).__name__}: {error}")
        return step


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    scripted: ScriptedLLMServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(data).encode(), "application/json", headers or {})

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._json(
                200,
                {
                    "object": "list",
                    "data": [
                        {
                            "id": self.scripted.model,
                            "object": "model",
                            "created": 0,
                            "owned_by": "scripted",
                        }
                    ],
                },
            )
        else:
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError:
            self._json(
                400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}}
            )
            return
        path = self.path.rstrip("/")
        if path.endswith("/chat/completions"):
            request = ScriptedRequest("chat", body, list(body.get("messages") or []))
        elif path.endswith("/responses"):
            request = ScriptedRequest("responses", body, _responses_to_messages(body))
        else:
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        step = self.scripted._next_step(request)
        if self.scripted.latency > 0:
            time.sleep(self.scripted.latency)  # this handler's own thread: nothing else waits
        if step is None:
            self._json(
                500, {"error": {"message": "the script is exhausted", "type": "server_error"}}
            )
        elif isinstance(step, Fail):
            headers = {}
            if step.retry_after is not None:
                headers["retry-after-ms"] = str(int(step.retry_after * 1000))
                headers["retry-after"] = str(step.retry_after)
            kind = "rate_limit_exceeded" if step.status == 429 else "server_error"
            self._json(
                step.status,
                {"error": {"message": step.message, "type": kind, "code": kind}},
                headers,
            )
        elif request.api == "responses":
            self._json(200, self._response_body(step))
        elif body.get("stream"):
            self._send(200, self._chat_stream(step), "text/event-stream", {})
        else:
            self._json(200, self._chat_body(step))

    def _usage(self, step: Reply | ToolCalls) -> tuple[int, int]:
        prompt = int(self.headers.get("content-length") or 0) // 4  # a rough token count
        text = (
            step.text or ""
            if isinstance(step, Reply)
            else json.dumps([c.arguments for c in step.calls])
        )
        return prompt, max(1, len(text) // 4)

    def _chat_body(self, step: Reply | ToolCalls) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": step.text}
        if isinstance(step, ToolCalls):
            message["tool_calls"] = [
                {
                    "id": f"call_{uuid.uuid4().hex[:12]}",
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in step.calls
            ]
        prompt, completion = self._usage(step)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.scripted.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": "tool_calls" if isinstance(step, ToolCalls) else "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }

    def _chat_stream(self, step: Reply | ToolCalls) -> bytes:
        whole = self._chat_body(step)
        head = {key: whole[key] for key in ("id", "created", "model")} | {
            "object": "chat.completion.chunk"
        }
        chunks: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        text = step.text or ""
        chunks += [{"content": text[i : i + 8]} for i in range(0, len(text), 8)]
        for index, item in enumerate(whole["choices"][0]["message"].get("tool_calls") or []):
            arguments = item["function"]["arguments"]
            chunks.append(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": item["id"],
                            "type": "function",
                            "function": {"name": item["function"]["name"], "arguments": ""},
                        }
                    ]
                }
            )
            chunks += [
                {"tool_calls": [{"index": index, "function": {"arguments": arguments[i : i + 16]}}]}
                for i in range(0, len(arguments), 16)
            ]
        lines = [
            head | {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
            for delta in chunks
        ]
        lines.append(
            head
            | {
                "choices": [
                    {"index": 0, "delta": {}, "finish_reason": whole["choices"][0]["finish_reason"]}
                ]
            }
        )
        events = "".join(f"data: {json.dumps(line)}\n\n" for line in lines) + "data: [DONE]\n\n"
        return events.encode()

    def _response_body(self, step: Reply | ToolCalls) -> dict[str, Any]:
        output: list[dict[str, Any]] = []
        if step.text:
            output.append(
                {
                    "type": "message",
                    "id": f"msg_{uuid.uuid4().hex[:12]}",
                    "role": "assistant",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": step.text, "annotations": []}],
                }
            )
        if isinstance(step, ToolCalls):
            output += [
                {
                    "type": "function_call",
                    "id": f"fc_{uuid.uuid4().hex[:12]}",
                    "call_id": f"call_{uuid.uuid4().hex[:12]}",
                    "name": c.name,
                    "arguments": c.arguments,
                    "status": "completed",
                }
                for c in step.calls
            ]
        prompt, completion = self._usage(step)
        return {
            "id": f"resp_{uuid.uuid4().hex[:12]}",
            "object": "response",
            "created_at": int(time.time()),
            "model": self.scripted.model,
            "status": "completed",
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": {
                "input_tokens": prompt,
                "output_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }
