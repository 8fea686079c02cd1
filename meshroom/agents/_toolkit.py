"""Toolkits: named groups of tools that validate calls and speak OpenAI's function format.

The model is not trusted: its arguments may be malformed JSON, miss a field or
break the schema even in strict mode (local endpoints often ignore it). The
toolkit checks every call against the tool's schema before running it, and
turns every failure into an `ErrorResponse` the model reads, so a bad call
costs one step, never the loop.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from ._exceptions import ToolDefinitionError
from ._remote_wire import encode_response
from ._tools import ErrorResponse, Tool, ToolContext, ToolResponse

__all__ = ["Toolkit", "find_tool", "validation_errors"]

logger = logging.getLogger("meshroom.agents")
_MAX_ERRORS = 5


def validation_errors(schema: dict[str, Any], arguments: Any) -> list[str]:
    """Readable reasons why `arguments` break `schema` ("at /path: message"), empty when valid."""
    validator = Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(arguments), key=lambda error: list(error.path))
    reasons = []
    for error in errors[:_MAX_ERRORS]:
        error = _deepest(error)
        where = "/" + "/".join(str(part) for part in error.absolute_path)
        reasons.append(f"at {where}: {error.message}")
    return reasons


def _deepest(error: ValidationError) -> ValidationError:
    """For anyOf/oneOf failures, the alternative that matched furthest says what is wrong."""
    while error.context:
        error = max(error.context, key=lambda item: len(item.absolute_path))
    return error


class Toolkit:
    """A named group of tools, plus rules that go into the agent's instructions.

    A toolkit can also be offered to a whole room (`RoomClient.offer(toolkit)`): its
    tools then run here when any participant calls them, validated the same way.

    Args:
        name: What the toolkit is called (shown in logs and progress, and its name in
            the room when offered: letters, digits, ``_ . -``).
        tools: Its tools; names must be unique.
        rules: Sentences added to the agent's instructions when the toolkit is offered.
        description: What the toolkit is for, shown to the room when offered.
    """

    def __init__(
        self,
        name: str,
        tools: Iterable[Tool],
        rules: Sequence[str] = (),
        *,
        description: str = "",
    ) -> None:
        self.name = name
        self.description = description
        self.rules = tuple(rules)
        self._tools: dict[str, Tool] = {}
        self._validators: dict[str, Draft202012Validator] = {}
        self.replace_tools(tools)

    def replace_tools(self, tools: Iterable[Tool]) -> None:
        """Make `tools` the toolkit's tools, checked as at construction.

        For toolkits whose tools are only known at run time and may change (an MCP
        server's): an agent reads a toolkit's tools when each run starts.

        Raises:
            ToolDefinitionError: an item is not a `Tool`, or two share a name.
        """
        found: dict[str, Tool] = {}
        for item in tools:
            if not isinstance(item, Tool):
                raise ToolDefinitionError(f"{self.name}: {item!r} is not a Tool (use @tool)")
            if item.name in found:
                raise ToolDefinitionError(
                    f"{self.name}: duplicate tool {item.name!r}", tool=item.name
                )
            found[item.name] = item
        self._tools = found
        self._validators = {}

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    @property
    def all_rules(self) -> list[str]:
        """The toolkit's rules followed by each tool's own rules."""
        return [*self.rules, *(rule for item in self for rule in item.rules)]

    def chat_completions_tools(self) -> list[dict[str, Any]]:
        """Function specs for the Chat Completions API (`tools=`), strict mode."""
        return [
            {
                "type": "function",
                "function": {
                    "name": item.name,
                    "description": item.description,
                    "parameters": item.input_schema,
                    "strict": True,
                },
            }
            for item in self
        ]

    def responses_tools(self) -> list[dict[str, Any]]:
        """Function specs for the Responses API (`tools=`), strict mode."""
        return [
            {
                "type": "function",
                "name": item.name,
                "description": item.description,
                "parameters": item.input_schema,
                "strict": True,
            }
            for item in self
        ]

    def check(self, name: str, arguments: str | dict[str, Any]) -> dict[str, Any] | ErrorResponse:
        """Parse and validate a call: the arguments as a dict, or the error for the model."""
        item = self._tools.get(name)
        if item is None:
            return ErrorResponse(
                f"unknown tool {name!r}", details={"available": sorted(self._tools)}
            )
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except json.JSONDecodeError as error:
                return ErrorResponse(f"arguments of {name} are not valid JSON: {error}")
        if not isinstance(arguments, dict):
            return ErrorResponse(f"arguments of {name} must be a JSON object")
        validator = self._validators.get(name)
        if validator is None:
            validator = self._validators[name] = Draft202012Validator(item.input_schema)
        if not validator.is_valid(arguments):
            return ErrorResponse(
                f"arguments of {name} do not match its schema",
                details=validation_errors(item.input_schema, arguments),
            )
        return arguments

    async def execute(
        self, context: ToolContext, name: str, arguments: str | dict[str, Any]
    ) -> ToolResponse:
        """Validate and run one call; every failure comes back as an `ErrorResponse`."""
        checked = self.check(name, arguments)
        if isinstance(checked, ErrorResponse):
            return checked
        try:
            return await self._tools[name].execute(context, **checked)
        except Exception as error:  # the model reads the failure and may correct its call
            logger.debug("tool %s failed", name, exc_info=True)
            return ErrorResponse(f"{name} failed: {error}", details={"type": type(error).__name__})

    # -- offered to a room -------------------------------------------------------------

    def offer_spec(self) -> dict[str, Any]:
        """What the room lists when this toolkit is offered (docs/room-document.md)."""
        return {
            "name": self.name,
            "description": self.description,
            "tools": [
                {
                    "name": item.name,
                    "description": item.description,
                    "inputSchema": item.input_schema,
                }
                for item in self
            ],
        }

    async def run_remote(
        self, tool: str, arguments: dict[str, Any], *, caller: str, peer: Any
    ) -> dict[str, Any]:
        """Run a call another participant made through the room; the wire reply.

        The tool runs as `peer` (the client the toolkit was offered on) on behalf of
        `caller`; its response travels as `encode_response` writes it.
        """
        context = ToolContext(
            room=str(getattr(peer, "room", "")),
            caller=str(getattr(peer, "participant_id", "")),
            on_behalf_of=caller,
            client=peer,
        )
        return encode_response(await self.execute(context, tool, arguments))


def find_tool(toolkits: Iterable[Toolkit], name: str) -> Toolkit | None:
    """The toolkit that offers `name`, if any."""
    return next((toolkit for toolkit in toolkits if name in toolkit), None)
