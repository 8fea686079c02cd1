"""The HTTP side of the scripted model server: OpenAI's wire format, request by request.

Chat Completions (plain JSON, or server-sent events when the request asks to
stream) and the Responses API, with the same ids, objects and usage fields the
`openai` SDK parses; errors carry OpenAI's `{"error": {...}}` body and
`retry-after` headers.

The handler knows the server only as a `ScriptPlayer` (a model name, a latency
and the next step), so this module never imports the server that imports it.
"""

from __future__ import annotations

import json
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any, Protocol

from ._steps import Fail, Reply, ScriptedRequest, ToolCalls

__all__ = ["ScriptPlayer", "ScriptedHandler", "responses_to_messages"]


class ScriptPlayer(Protocol):
    """What the handler asks of the server: whom to report, how slow, and what to answer."""

    model: str
    latency: float
    #: Seconds between the events of a streamed answer (0: all at once).
    chunk_delay: float

    def next_step(self, request: ScriptedRequest) -> Reply | ToolCalls | Fail | None: ...


def responses_to_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
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


class ScriptedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    scripted: ScriptPlayer

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

    def _stream(self, events: list[str]) -> None:
        """Server-sent events, one write each, `chunk_delay` apart (chunked encoding)."""
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for index, event in enumerate(events):
            if index and self.scripted.chunk_delay > 0:
                time.sleep(self.scripted.chunk_delay)
            data = event.encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

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
        headers = {key.lower(): value for key, value in self.headers.items()}
        if path.endswith("/chat/completions"):
            request = ScriptedRequest("chat", body, list(body.get("messages") or []), headers)
        elif path.endswith("/responses"):
            request = ScriptedRequest("responses", body, responses_to_messages(body), headers)
        else:
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        step = self.scripted.next_step(request)
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
        elif request.api == "responses" and body.get("stream"):
            self._stream(self._responses_stream(step))
        elif request.api == "responses":
            self._json(200, self._response_body(step))
        elif body.get("stream"):
            self._stream(self._chat_stream(step, bool(body.get("stream_options"))))
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

    def _chat_stream(self, step: Reply | ToolCalls, usage: bool) -> list[str]:
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
        if usage:  # stream_options.include_usage: a last chunk with no choices
            lines.append(head | {"choices": [], "usage": whole["usage"]})
        return [f"data: {json.dumps(line)}\n\n" for line in lines] + ["data: [DONE]\n\n"]

    def _responses_stream(self, step: Reply | ToolCalls) -> list[str]:
        """The Responses API's typed events: created, text deltas, completed."""
        whole = self._response_body(step)
        events: list[dict[str, Any]] = [
            {"type": "response.created", "response": whole | {"status": "in_progress"}}
        ]
        text = step.text or ""
        item_id = whole["output"][0]["id"] if text else ""
        events += [
            {
                "type": "response.output_text.delta",
                "item_id": item_id,
                "output_index": 0,
                "content_index": 0,
                "delta": text[i : i + 8],
                "logprobs": [],
            }
            for i in range(0, len(text), 8)
        ]
        events.append({"type": "response.completed", "response": whole})
        return [
            f"event: {event['type']}\ndata: {json.dumps(event | {'sequence_number': n})}\n\n"
            for n, event in enumerate(events)
        ]

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
