"""An agent as a tool: JSON in, JSON out, so another agent (or anyone) can delegate to it.

`agent_toolkit(agent, ...)` wraps an agent in a one-tool toolkit: the tool's input is
the task (a strict JSON Schema, by default one ``task`` string), and its output is a
JSON value that matches `output_schema`. During the run the agent has one extra tool,
``submit_result``, whose input schema *is* the output schema, so the model hands over
its result as a validated tool call instead of prose (the way agent platforms get
structured output from a model that also uses tools). Offer the toolkit to the room
(`RoomClient.offer`) and every agent there can delegate to it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ._loop import AgentResult
from ._schema import check_strict
from ._toolkit import Toolkit, validation_errors
from ._tools import ErrorResponse, JsonResponse, TextResponse, Tool, ToolContext, ToolResponse

__all__ = ["SUBMIT_RESULT", "agent_toolkit"]

#: The tool a delegated agent hands its structured result over with.
SUBMIT_RESULT = "submit_result"

_TASK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"task": {"type": "string", "description": "What to do, in plain words."}},
    "required": ["task"],
    "additionalProperties": False,
}


class Delegate(Protocol):
    """What a delegated agent offers (`Agent` has it): a name and runs with extra tools."""

    name: str

    async def run(
        self, instruction: str, *, on_behalf_of: str | None = ..., toolkits: Sequence[Toolkit] = ...
    ) -> AgentResult: ...


class _SubmitResult(Tool):
    def __init__(self, output_schema: dict[str, Any]) -> None:
        super().__init__(
            name=SUBMIT_RESULT,
            description="Hand over the result of the task (call it once, when done).",
            input_schema=output_schema,
        )

    async def execute(self, context: ToolContext, **arguments: Any) -> ToolResponse:
        return TextResponse("Result recorded. Answer with one short sentence and no tool calls.")


class AgentTool(Tool):
    """Runs `agent` on the task its arguments describe; its result is the output JSON."""

    def __init__(
        self,
        agent: Delegate,
        *,
        name: str,
        description: str,
        input_schema: dict[str, Any],
        output_schema: dict[str, Any],
    ) -> None:
        super().__init__(name=name, description=description, input_schema=input_schema)
        check_strict(output_schema, where=f"{name} output")
        self.agent = agent
        self.output_schema = output_schema
        self._submit = Toolkit("result", [_SubmitResult(output_schema)])

    async def execute(self, context: ToolContext, **arguments: Any) -> ToolResponse:
        task = arguments["task"] if set(arguments) == {"task"} else json.dumps(arguments)
        instruction = (
            f"{task}\n\nWhen you have the result, call {SUBMIT_RESULT} with it "
            "(its schema is the shape of the answer), then answer in one sentence."
        )
        asker = context.on_behalf_of or context.caller
        result = await self.agent.run(instruction, on_behalf_of=asker, toolkits=[self._submit])
        submitted = [
            record for record in result.tool_calls if record.name == SUBMIT_RESULT and record.ok
        ]
        if submitted:
            return JsonResponse(json.loads(submitted[-1].arguments))
        return self._from_text(result.text, result.stop_reason)

    def _from_text(self, text: str, stop_reason: str) -> ToolResponse:
        """A model that answered with the JSON instead of the tool still delivered it."""
        try:
            value = json.loads(text)
        except (TypeError, ValueError):
            value = None
        if value is not None and not validation_errors(self.output_schema, value):
            return JsonResponse(value)
        return ErrorResponse(
            f"{self.agent.name} finished without a result ({stop_reason})",
            details={"answer": text[:500]},
        )


def agent_toolkit(
    agent: Delegate,
    *,
    name: str,
    description: str,
    output_schema: Mapping[str, Any],
    input_schema: Mapping[str, Any] | None = None,
    tool: str = "run",
) -> Toolkit:
    """A toolkit named `name` with one tool (`tool`) that delegates its input to `agent`.

    Args:
        agent: The agent doing the work (connected or embedded when called).
        name: The toolkit's name (in the room: ``"OFFERER/NAME"``).
        description: What the agent does, for the models that will call it.
        output_schema: Strict JSON Schema of the result.
        input_schema: Strict JSON Schema of the input (default: one ``task`` string).
        tool: The tool's name.

    Raises:
        ToolDefinitionError: a schema is not strict.
    """
    delegate = AgentTool(
        agent,
        name=tool,
        description=description,
        input_schema=dict(input_schema or _TASK_SCHEMA),
        output_schema=dict(output_schema),
    )
    return Toolkit(name, [delegate], description=description)
