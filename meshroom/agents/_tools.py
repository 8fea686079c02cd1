"""Tools: what an agent can do, described to the model by a strict JSON Schema.

A tool has a name, a title, a description, rules (sentences added to the
agent's instructions when the tool is offered), an input schema, and an async
`execute(context, **arguments)` that returns a response. `@tool` builds one
from a typed function, so the signature is the schema::

    @tool(read_only=True)
    async def word_count(text: str) -> int:
        \"\"\"Count the words of a text.

        Args:
            text: The text to count.
        \"\"\"
        return len(text.split())

Responses are what the model reads back: text, JSON, a file, a link, or an
error it can act on (a refused edit says why, so the model can fix its call).
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import inspect
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, get_type_hints, overload

from ._exceptions import ToolDefinitionError
from ._schema import check_strict, function_schema

__all__ = [
    "ErrorResponse",
    "FileResponse",
    "FunctionTool",
    "JsonResponse",
    "LinkResponse",
    "TextResponse",
    "Tool",
    "ToolContext",
    "ToolResponse",
    "as_response",
    "tool",
]

_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")


@dataclass(frozen=True)
class TextResponse:
    """Plain text for the model."""

    text: str

    def to_content(self) -> str:
        return self.text


@dataclass(frozen=True)
class JsonResponse:
    """A JSON value for the model (sent as compact JSON text)."""

    data: Any

    def to_content(self) -> str:
        return json.dumps(self.data, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class FileResponse:
    """A file: text files are shown to the model, binary ones are described."""

    name: str
    data: bytes
    mime_type: str = "application/octet-stream"

    def to_content(self) -> str:
        if self.mime_type.startswith(_TEXT_TYPES):
            try:
                return self.data.decode("utf-8")
            except UnicodeDecodeError:
                pass
        return f"[file {self.name}: {self.mime_type}, {len(self.data)} bytes]"


@dataclass(frozen=True)
class LinkResponse:
    """A link to something the tool made or found."""

    url: str
    name: str = ""

    def to_content(self) -> str:
        return f"{self.name}: {self.url}" if self.name else self.url


@dataclass(frozen=True)
class ErrorResponse:
    """A failed call, worded for the model to correct: `message` plus optional `details`."""

    message: str
    details: Any = None

    def to_content(self) -> str:
        body: dict[str, Any] = {"error": self.message}
        if self.details is not None:
            body["details"] = self.details
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


ToolResponse = TextResponse | JsonResponse | FileResponse | LinkResponse | ErrorResponse
_RESPONSES = (TextResponse, JsonResponse, FileResponse, LinkResponse, ErrorResponse)


def as_response(value: Any) -> ToolResponse:
    """Wrap what a tool function returned: str → text, None → "ok", other values → JSON."""
    if isinstance(value, _RESPONSES):
        return value
    if value is None:
        return TextResponse("ok")
    if isinstance(value, str):
        return TextResponse(value)
    return JsonResponse(value)


@dataclass
class ToolContext:
    """Who runs a tool, where, and for whom.

    Attributes:
        room: The room the agent is in.
        caller: Participant id of who executes the tool (the agent).
        on_behalf_of: Participant id of who asked for the work, if someone did.
        client: The agent's room peer (a `RoomClient` when the agent is connected, an
            `EmbeddedPeer` when it is embedded): documents, messages, presence.
        origin: Transaction origin the agent's edits carry (per-origin undo).
        agent: The running agent, if any.
        state: Per-run scratch space shared by the tools of one run.
    """

    room: str = ""
    caller: str = ""
    on_behalf_of: str | None = None
    client: Any = None
    origin: Any = None
    agent: Any = None
    state: dict[str, Any] = field(default_factory=dict)


class Tool(abc.ABC):
    """A capability offered to the model; subclass and implement `execute`, or use `@tool`."""

    def __init__(
        self,
        *,
        name: str,
        description: str,
        input_schema: dict[str, Any],
        title: str | None = None,
        rules: Sequence[str] = (),
        read_only: bool = False,
    ) -> None:
        if not _NAME.match(name):
            raise ToolDefinitionError(
                f"tool name {name!r} must match {_NAME.pattern} (OpenAI function names)", tool=name
            )
        if not description.strip():
            raise ToolDefinitionError(f"tool {name!r} needs a description", tool=name)
        check_strict(input_schema, where=name)
        self.name = name
        self.title = title or name.replace("_", " ").capitalize()
        self.description = description.strip()
        self.input_schema = input_schema
        self.rules = tuple(rules)
        #: True when the tool changes nothing: the agent runs such calls concurrently.
        self.read_only = read_only

    @abc.abstractmethod
    async def execute(self, context: ToolContext, **arguments: Any) -> ToolResponse:
        """Run the tool with validated arguments."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class FunctionTool(Tool):
    """A tool made from a typed (async or sync) function by `@tool`."""

    def __init__(
        self,
        function: Callable[..., Any],
        *,
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        rules: Sequence[str] = (),
        read_only: bool = False,
    ) -> None:
        hints = get_type_hints(function, include_extras=True)
        parameters = inspect.signature(function).parameters
        self._context_parameter = next(
            (
                key
                for key in parameters
                if hints.get(key) is ToolContext or (key == "context" and key not in hints)
            ),
            None,
        )
        skip = [self._context_parameter] if self._context_parameter else []
        summary, schema = function_schema(function, skip=skip)
        self.function = function
        self._signature = parameters
        self._hints = hints
        super().__init__(
            name=name or function.__name__,
            title=title,
            description=description or summary,
            input_schema=schema,
            rules=rules,
            read_only=read_only,
        )

    async def execute(self, context: ToolContext, **arguments: Any) -> ToolResponse:
        call: dict[str, Any] = {}
        for key, parameter in self._signature.items():
            if key == self._context_parameter:
                call[key] = context
                continue
            value = arguments.get(key)
            if value is None and parameter.default is not parameter.empty:
                value = parameter.default
            elif value is not None:
                value = _convert(self._hints.get(key), value)
            call[key] = value
        result = self.function(**call)
        if inspect.isawaitable(result):
            result = await result
        return as_response(result)


def _convert(annotation: Any, value: Any) -> Any:
    """Turn JSON back into the annotated Python type where they differ (Enum, dataclass)."""
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return annotation(value)
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        hints = get_type_hints(annotation)
        return annotation(
            **{
                key: _convert(hints.get(key), item)
                for key, item in value.items()
                if item is not None
            }
        )
    return value


ToolFunction = Callable[..., Any | Awaitable[Any]]


@overload
def tool(function: ToolFunction, /) -> FunctionTool: ...


@overload
def tool(
    *,
    name: str | None = None,
    title: str | None = None,
    description: str | None = None,
    rules: Sequence[str] = (),
    read_only: bool = False,
) -> Callable[[ToolFunction], FunctionTool]: ...


def tool(
    function: ToolFunction | None = None,
    /,
    *,
    name: str | None = None,
    title: str | None = None,
    description: str | None = None,
    rules: Sequence[str] = (),
    read_only: bool = False,
) -> FunctionTool | Callable[[ToolFunction], FunctionTool]:
    """Build a `Tool` from a typed function: type hints + docstring become its strict schema.

    A parameter annotated `ToolContext` (or named `context`) receives the context
    and is hidden from the model. Parameters with defaults are nullable.

    Raises:
        ToolDefinitionError: a parameter has no type hint or no strict JSON Schema.
    """

    def build(target: ToolFunction) -> FunctionTool:
        return FunctionTool(
            target,
            name=name,
            title=title,
            description=description,
            rules=rules,
            read_only=read_only,
        )

    return build(function) if function is not None else build
