"""meshroom agents: LLMs that join rooms and edit documents as peers, through tool calls.

Tools (`Tool`, `@tool`) are grouped in toolkits (`Toolkit`) that validate calls
and export OpenAI function specs; `OpenAILLM` talks to any OpenAI-compatible
endpoint; `Agent` joins a room and runs the loop. A model scripted in advance,
for tests, examples and benchmarks, is in `meshroom.testing`.
"""

from __future__ import annotations

import warnings
from typing import Any

from ._agent import Agent as Agent
from ._agent import AgentOrigin as AgentOrigin
from ._delegate import agent_toolkit as agent_toolkit
from ._embedded import EmbeddedPeer as EmbeddedPeer
from ._exceptions import AgentError as AgentError
from ._exceptions import LLMError as LLMError
from ._exceptions import ToolDefinitionError as ToolDefinitionError
from ._llm import LLM as LLM
from ._llm import LLMReply as LLMReply
from ._llm import LLMToolCall as LLMToolCall
from ._loop import AgentEvent as AgentEvent
from ._loop import AgentResult as AgentResult
from ._loop import ToolCallRecord as ToolCallRecord
from ._loop import run_loop as run_loop
from ._openai import OpenAILLM as OpenAILLM
from ._remote import RemoteToolkit as RemoteToolkit
from ._toolkit import Toolkit as Toolkit
from ._tools import ErrorResponse as ErrorResponse
from ._tools import FileResponse as FileResponse
from ._tools import FunctionTool as FunctionTool
from ._tools import JsonResponse as JsonResponse
from ._tools import LinkResponse as LinkResponse
from ._tools import TextResponse as TextResponse
from ._tools import Tool as Tool
from ._tools import ToolContext as ToolContext
from ._tools import ToolResponse as ToolResponse
from ._tools import tool as tool

__all__ = [
    "LLM",
    "Agent",
    "AgentError",
    "AgentEvent",
    "AgentOrigin",
    "AgentResult",
    "EmbeddedPeer",
    "ErrorResponse",
    "FileResponse",
    "FunctionTool",
    "JsonResponse",
    "LLMError",
    "LLMReply",
    "LLMToolCall",
    "LinkResponse",
    "OpenAILLM",
    "RemoteToolkit",
    "TextResponse",
    "Tool",
    "ToolCallRecord",
    "ToolContext",
    "ToolDefinitionError",
    "ToolResponse",
    "Toolkit",
    "agent_toolkit",
    "run_loop",
    "tool",
]

#: Test doubles that moved to `meshroom.testing`; importing them from here warns until
#: they are removed from this module in the next release.
_MOVED_TO_TESTING = frozenset(
    {"ScriptedLLMServer", "ScriptedRequest", "call", "fail", "reply", "tool_calls"}
)


def __getattr__(name: str) -> Any:
    """Resolve a test double that moved to `meshroom.testing`, with a DeprecationWarning.

    Module attribute lookup only reaches this for names the module does not define,
    so the rest of the package pays nothing for the shim.
    """
    if name in _MOVED_TO_TESTING:
        warnings.warn(
            f"meshroom.agents.{name} moved to meshroom.testing.{name}; import it from "
            "there (meshroom.agents stops providing it in the next release)",
            DeprecationWarning,
            stacklevel=2,
        )
        import meshroom.testing

        return getattr(meshroom.testing, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
