"""The agent loop and the OpenAI adapter, driven through the real `openai` client.

Every test talks HTTP to a `ScriptedLLMServer` on 127.0.0.1: the SDK builds real
requests and parses real responses (plain, streamed, Responses API), so the
adapter's conversion, retries and tool-call parsing are what is tested.
"""

from __future__ import annotations

import itertools
import json
import time

import anyio
import pytest
from conftest import free_port

from meshroom.agents import ErrorResponse, LLMError, OpenAILLM, ToolContext, Toolkit, run_loop, tool
from meshroom.testing import Call, ScriptedLLMServer, call, fail, reply, tool_calls

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


def make_toolkit(log: list[str]) -> Toolkit:
    notes: dict[str, str] = {}

    @tool(read_only=True)
    async def read_note(key: str) -> str:
        """Read a note.

        Args:
            key: Which note.
        """
        log.append(f"start read {key}")
        await anyio.sleep(0.05)
        log.append(f"end read {key}")
        return notes.get(key, "")

    @tool
    async def write_note(key: str, text: str) -> str:
        """Write a note."""
        log.append(f"write {key}")
        notes[key] = text
        return "written"

    return Toolkit("notes", [read_note, write_note], rules=["Keep notes short."])


async def run(
    server: ScriptedLLMServer,
    toolkit: Toolkit,
    *,
    api="chat",
    llm: OpenAILLM | None = None,
    **options,
):
    llm = llm or OpenAILLM("scripted", base_url=server.base_url, api=api)
    async with llm:
        messages = [{"role": "user", "content": "take notes"}]
        return await run_loop(
            llm=llm,
            instructions="You are a note taker.",
            messages=messages,
            toolkits=[toolkit],
            context=ToolContext(room="r", caller="agent"),
            **options,
        )


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_multi_step_tool_loop(api):
    log: list[str] = []

    def answer_from_results(request):
        assert request.tool_results() == ["hello", "hello"]
        return reply(f"both notes say {request.tool_results()[0]}")

    script = [
        tool_calls(
            call("write_note", key="a", text="hello"), call("write_note", key="b", text="hello")
        ),
        tool_calls(call("read_note", key="a"), call("read_note", key="b")),
        answer_from_results,
    ]
    async with ScriptedLLMServer(script) as server:
        result = await run(server, make_toolkit(log), api=api)
    assert result.completed and result.text == "both notes say hello"
    assert result.steps == 3
    assert [record.name for record in result.tool_calls] == ["write_note"] * 2 + ["read_note"] * 2
    # writes run in order, alone; the two reads run concurrently
    assert log[:2] == ["write a", "write b"]
    assert log[2:4] == ["start read a", "start read b"]
    # the model saw instructions, the tool specs in the API's own format, and the results
    first, third = server.requests[0], server.requests[2]
    assert first.api == api
    assert sorted(first.tool_names) == ["read_note", "write_note"]
    assert first.messages[0]["role"] == "system"
    assert "note taker" in first.messages[0]["content"]
    assert [m["role"] for m in third.messages].count("tool") == 4
    assert result.usage["total_tokens"] > 0


async def test_invalid_arguments_are_fed_back_and_corrected():
    log: list[str] = []

    def check_error(request):
        errors = [json.loads(text) for text in request.tool_results()]
        assert "not valid JSON" in errors[0]["error"]
        assert "do not match its schema" in errors[1]["error"]
        assert "unknown tool" in errors[2]["error"]
        return tool_calls(call("write_note", key="a", text="fixed"))

    script = [
        tool_calls(
            Call("write_note", '{"key": "a", "text": '),
            call("write_note", key="a"),
            call("erase_everything"),
        ),
        check_error,
        reply("done"),
    ]
    async with ScriptedLLMServer(script) as server:
        result = await run(server, make_toolkit(log))
    assert result.completed and result.text == "done"
    assert log == ["write a"]  # only the corrected call ran
    assert [record.ok for record in result.tool_calls] == [False, False, False, True]
    assert isinstance(result.tool_calls[0].response, ErrorResponse)


async def test_the_sdk_retries_rate_limits_and_server_errors_then_the_agent_succeeds():
    """429 and 5xx are retried by the openai SDK itself, after the server's Retry-After."""
    retries = []
    script = [
        fail(429, "slow down", retry_after=0.2),
        fail(500, "oops", retry_after=0.01),
        fail(503, "warming up", retry_after=0.01),
        tool_calls(call("write_note", key="a", text="hi")),
        reply("noted"),
    ]
    async with ScriptedLLMServer(script) as server:
        llm = OpenAILLM(
            "m",
            base_url=server.base_url,
            on_retry=lambda attempt, error, delay: retries.append((attempt, str(error), delay)),
        )
        endpoint = f"{server.base_url}/chat/completions"
        started = time.monotonic()
        result = await run(server, make_toolkit([]), llm=llm)
        waited = time.monotonic() - started
    assert result.completed and result.text == "noted"
    assert [record.name for record in result.tool_calls] == ["write_note"]
    assert retries == [
        (1, f"model endpoint {endpoint} answered 429: slow down", 0.2),
        (2, f"model endpoint {endpoint} answered 500: oops", 0.01),
        (3, f"model endpoint {endpoint} answered 503: warming up", 0.01),
    ]
    assert waited >= 0.2  # Retry-After honoured
    # the SDK made the retries: it numbers them, and a retry sends the same body
    counts = [request.headers.get("x-stainless-retry-count") for request in server.requests]
    assert counts == ["0", "1", "2", "3", "0"]
    assert server.requests[0].body == server.requests[3].body


async def test_a_persistent_server_error_fails_on_one_line_after_the_sdk_retries():
    async with ScriptedLLMServer(itertools.repeat(fail(500, "down", retry_after=0.01))) as server:
        llm = OpenAILLM("m", base_url=server.base_url, max_retries=2)
        with pytest.raises(LLMError) as caught:
            await run(server, make_toolkit([]), llm=llm)
        endpoint = f"{server.base_url}/chat/completions"
    assert str(caught.value) == (
        f"model endpoint {endpoint} answered 500: down (gave up after 3 attempts)"
    )
    assert caught.value.status == 500 and caught.value.attempts == 3
    assert len(server.requests) == 3


async def test_client_errors_fail_at_once():
    async with ScriptedLLMServer([fail(400, "bad schema"), reply("never")]) as server:
        llm = OpenAILLM("m", base_url=server.base_url, on_retry=pytest.fail)
        with pytest.raises(LLMError) as caught:
            await llm.complete(instructions="i", messages=[], toolkits=[])
        await llm.aclose()
        endpoint = f"{server.base_url}/chat/completions"
    assert str(caught.value) == f"model endpoint {endpoint} answered 400: bad schema"
    assert caught.value.status == 400 and caught.value.attempts == 1
    assert len(server.requests) == 1


async def test_no_answer_is_retried_and_reported_with_the_reason():
    """A dead endpoint: connection errors are retried, each retry and the end said in one line."""
    endpoint = f"http://127.0.0.1:{free_port()}/v1"
    retries = []
    llm = OpenAILLM(
        "m",
        base_url=endpoint,
        max_retries=1,
        on_retry=lambda attempt, error, delay: retries.append((attempt, str(error), delay)),
    )
    async with llm:
        with anyio.fail_after(10), pytest.raises(LLMError) as caught:
            await llm.complete(instructions="i", messages=[], toolkits=[])
    ((attempt, line, delay),) = retries
    assert attempt == 1 and delay == 0.5  # the SDK's first backoff, before its jitter
    assert line.startswith(f"model endpoint {endpoint}/chat/completions: Connection error")
    message = str(caught.value)
    assert "\n" not in message and caught.value.status is None and caught.value.attempts == 2
    assert message.startswith(f"model endpoint {endpoint}/chat/completions: Connection error")
    assert message.endswith("(gave up after 2 attempts)")


def test_own_backoff_options_are_deprecated():
    for option in ("retry_delay", "max_retry_delay"):
        with pytest.warns(DeprecationWarning, match=rf"{option}=.*ignored"):
            OpenAILLM("m", base_url="http://127.0.0.1:9/v1", **{option: 0.01})
    with pytest.raises(ValueError, match="max_retries"):
        OpenAILLM("m", base_url="http://127.0.0.1:9/v1", max_retries=-1)


async def test_loop_surfaces_llm_errors():
    async with ScriptedLLMServer([fail(401, "bad key")]) as server:
        with pytest.raises(LLMError, match="bad key"):
            await run(server, make_toolkit([]))


async def test_step_limit():
    log: list[str] = []
    events = []
    script = itertools.repeat(tool_calls(call("write_note", key="k", text="again")))
    async with ScriptedLLMServer(script) as server:
        result = await run(server, make_toolkit(log), max_steps=3, on_event=events.append)
    assert result.stop_reason == "step_limit" and not result.completed
    assert result.steps == 3 and len(server.requests) == 3 and log == ["write k"] * 3
    assert [event.kind for event in events].count("tool_call") == 3
    assert events[-1].kind == "limit"


async def test_time_limit():
    @tool
    async def slow() -> str:
        """Take a long time."""
        await anyio.sleep(10)
        return "late"

    script = itertools.repeat(tool_calls(call("slow")))
    async with ScriptedLLMServer(script) as server:
        with anyio.fail_after(5):
            result = await run(server, Toolkit("slow", [slow]), time_limit=0.3)
    assert result.stop_reason == "time_limit"


async def test_auto_api_falls_back_to_chat_completions():
    """An endpoint without /responses (404) is used through Chat Completions from then on."""

    async with ScriptedLLMServer([fail(404, "no such route"), reply("via chat")]) as server:
        llm = OpenAILLM("m", base_url=server.base_url, api="auto")
        answer = await llm.complete(instructions="i", messages=[], toolkits=[])
        await llm.aclose()
    assert answer.text == "via chat" and llm.api == "chat"
    assert [request.api for request in server.requests] == ["responses", "chat"]


async def test_progress_events_name_each_call():
    events = []
    script = [tool_calls(call("write_note", key="a", text="x" * 200)), reply("fine")]
    async with ScriptedLLMServer(script) as server:
        await run(server, make_toolkit([]), on_event=events.append)
    kinds = [(event.kind, event.name) for event in events]
    assert kinds == [("tool_call", "write_note"), ("tool_result", "write_note"), ("answer", None)]
    assert events[0].summary.startswith('write_note(key="a", text="xxx')
    assert len(events[0].summary) <= 80


async def test_streamed_chat_completions_speak_the_wire_format():
    """The scripted server's SSE stream parses with the SDK's own stream reader."""
    import openai

    script = [tool_calls(call("write_note", key="a", text="streamed text"), text="thinking")]
    async with ScriptedLLMServer(script) as server:
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="x")
        stream = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "go"}], stream=True
        )
        text, arguments, finish = "", "", None
        async for chunk in stream:
            delta = chunk.choices[0].delta
            text += delta.content or ""
            for item in delta.tool_calls or []:
                arguments += item.function.arguments or ""
            finish = chunk.choices[0].finish_reason or finish
        await client.close()
    assert text == "thinking" and finish == "tool_calls"
    assert json.loads(arguments) == {"key": "a", "text": "streamed text"}
