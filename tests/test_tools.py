"""Tools and toolkits: schemas from type hints, strict-mode checks, validation, OpenAI specs."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Annotated, Literal, TypedDict

import pytest
from jsonschema import Draft202012Validator

from meshroom.agents import (
    ErrorResponse,
    FileResponse,
    JsonResponse,
    LinkResponse,
    TextResponse,
    Tool,
    ToolContext,
    ToolDefinitionError,
    Toolkit,
    tool,
)

pytestmark = pytest.mark.anyio


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Span(TypedDict):
    start: int
    text: str


@dataclass
class Point:
    x: float
    y: float = 0.0


@tool(read_only=True, rules=["Count before you guess."])
async def word_count(context: ToolContext, text: str, minimum: int = 1) -> int:
    """Count the words of a text.

    Args:
        text: The text to count.
        minimum: Words shorter than this many letters
            are not counted.
    """
    return sum(1 for word in text.split() if len(word) >= minimum)


@tool
def paint(
    color: Color,
    spans: list[Span],
    where: Point,
    mode: Literal["fill", "stroke"],
    note: Annotated[str | None, "Free text"] = None,
) -> dict:
    """Paint spans."""
    return {"color": color.value, "n": len(spans), "x": where.x, "y": where.y, "mode": mode}


def test_schema_from_type_hints_is_strict_and_documented():
    schema = word_count.input_schema
    assert schema == {
        "type": "object",
        "properties": {
            "text": {"type": "string", "description": "The text to count."},
            "minimum": {
                "type": ["integer", "null"],
                "description": "Words shorter than this many letters are not counted. "
                "(null means 1)",
            },
        },
        "required": ["text", "minimum"],
        "additionalProperties": False,
    }
    assert word_count.description == "Count the words of a text."
    assert word_count.read_only
    assert word_count.rules == ("Count before you guess.",)
    Draft202012Validator.check_schema(schema)


def test_nested_types():
    properties = paint.input_schema["properties"]
    assert properties["color"] == {"type": "string", "enum": ["red", "blue"]}
    assert properties["mode"] == {"type": "string", "enum": ["fill", "stroke"]}
    span = properties["spans"]["items"]
    assert span["required"] == ["start", "text"] and span["additionalProperties"] is False
    assert properties["where"]["properties"]["y"] == {"type": ["number", "null"]}
    assert properties["note"] == {"type": ["string", "null"], "description": "Free text"}


@pytest.mark.parametrize(
    "annotation", ["dict[str, int]", "list", "typing.Any", "tuple[int, str]"], ids=str
)
def test_types_without_strict_schema_are_refused(annotation):
    import typing  # noqa: F401  (used by eval)

    namespace: dict = {}
    exec(f"import typing\ndef f(x: {annotation}) -> None:\n    'Doc.'\n", namespace)
    with pytest.raises(ToolDefinitionError):
        tool(namespace["f"])


def test_bad_definitions():
    def untyped(x):
        """Doc."""

    with pytest.raises(ToolDefinitionError, match="type hint"):
        tool(untyped)

    def nodoc(x: int) -> None:
        pass

    with pytest.raises(ToolDefinitionError, match="description"):
        tool(nodoc)
    with pytest.raises(ToolDefinitionError, match="must match"):
        tool(name="has space")(word_count.function)
    with pytest.raises(ToolDefinitionError, match="duplicate"):
        Toolkit("twice", [word_count, word_count])


def test_custom_tool_schema_must_be_strict():
    class Loose(Tool):
        async def execute(self, context, **arguments):
            return TextResponse("x")

    loose = {"type": "object", "properties": {"a": {"type": "string"}}, "required": []}
    with pytest.raises(ToolDefinitionError, match="additionalProperties"):
        Loose(name="loose", description="d", input_schema=loose)
    with pytest.raises(ToolDefinitionError, match="required"):
        Loose(name="loose", description="d", input_schema={**loose, "additionalProperties": False})


def test_openai_specs():
    toolkit = Toolkit("text", [word_count, paint], rules=["Be brief."])
    chat = toolkit.chat_completions_tools()
    assert chat[0] == {
        "type": "function",
        "function": {
            "name": "word_count",
            "description": "Count the words of a text.",
            "parameters": word_count.input_schema,
            "strict": True,
        },
    }
    responses = toolkit.responses_tools()
    assert responses[1]["name"] == "paint" and responses[1]["strict"] is True
    assert responses[1]["type"] == "function" and "function" not in responses[1]
    assert toolkit.all_rules == ["Be brief.", "Count before you guess."]
    assert len(toolkit) == 2 and "paint" in toolkit


async def test_toolkit_executes_valid_calls_and_converts_arguments():
    toolkit = Toolkit("text", [word_count, paint])
    context = ToolContext(room="r")
    result = await toolkit.execute(context, "word_count", '{"text": "a bb ccc", "minimum": null}')
    assert result == JsonResponse(3)
    result = await toolkit.execute(context, "word_count", {"text": "a bb ccc", "minimum": 2})
    assert result.to_content() == "2"
    arguments = {
        "color": "blue",
        "spans": [{"start": 0, "text": "x"}],
        "where": {"x": 1.5, "y": None},
        "mode": "fill",
        "note": None,
    }
    result = await toolkit.execute(context, "paint", json.dumps(arguments))
    assert result == JsonResponse({"color": "blue", "n": 1, "x": 1.5, "y": 0.0, "mode": "fill"})


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ('{"text": "a"', "not valid JSON"),
        ("[1]", "must be a JSON object"),
        ('{"text": 3, "minimum": null}', "do not match its schema"),
        ('{"text": "a"}', "do not match its schema"),
        ('{"text": "a", "minimum": 1, "extra": true}', "do not match its schema"),
    ],
)
async def test_bad_calls_become_error_responses(arguments, message):
    calls = []

    @tool
    def spy(text: str, minimum: int | None) -> str:
        """Record calls."""
        calls.append(text)
        return text

    toolkit = Toolkit("t", [spy])
    result = await toolkit.execute(ToolContext(), "spy", arguments)
    assert isinstance(result, ErrorResponse)
    assert message in result.message
    assert calls == []  # nothing ran
    body = json.loads(result.to_content())
    assert body["error"] == result.message


async def test_unknown_tool_and_raising_tool():
    @tool
    def explode(x: int) -> None:
        """Always fails."""
        raise ValueError(f"cannot handle {x}")

    toolkit = Toolkit("t", [explode])
    unknown = await toolkit.execute(ToolContext(), "nope", "{}")
    assert isinstance(unknown, ErrorResponse) and unknown.details == {"available": ["explode"]}
    failed = await toolkit.execute(ToolContext(), "explode", {"x": 4})
    assert isinstance(failed, ErrorResponse)
    assert "cannot handle 4" in failed.message and failed.details == {"type": "ValueError"}


def test_responses_render_for_the_model():
    assert TextResponse("hi").to_content() == "hi"
    assert JsonResponse({"é": [1]}).to_content() == '{"é":[1]}'
    assert FileResponse("a.md", b"# T", "text/markdown").to_content() == "# T"
    assert FileResponse("a.bin", b"\x00\x01").to_content() == (
        "[file a.bin: application/octet-stream, 2 bytes]"
    )
    assert LinkResponse("https://x.test/a", "A").to_content() == "A: https://x.test/a"
    assert ErrorResponse("bad", details=["x"]).to_content() == '{"error":"bad","details":["x"]}'


async def test_context_is_injected_and_hidden():
    seen = []

    @tool
    async def who(context: ToolContext) -> str:
        """Say who calls."""
        seen.append(context)
        return context.caller

    assert who.input_schema["properties"] == {}
    context = ToolContext(room="r", caller="agent-1", on_behalf_of="ann")
    assert await Toolkit("t", [who]).execute(context, "who", "") == TextResponse("agent-1")
    assert seen == [context]
