"""meshroom agents: LLMs that join rooms and edit documents as peers, through tool calls.

Tools (`Tool`, `@tool`) are grouped in toolkits (`Toolkit`) that validate calls
and export OpenAI function specs; `OpenAILLM` talks to any OpenAI-compatible
endpoint; `Agent` joins a room and runs the loop. `ScriptedLLMServer` is an
OpenAI-compatible HTTP server with replies written in advance, for tests,
examples and benchmarks.
"""

from __future__ import annotations

from ._agent import Agent as Agent
from ._agent import AgentOrigin as AgentOrigin
from ._embedded import EmbeddedPeer as EmbeddedPeer
from ._exceptions import AgentError as AgentError
from ._exceptions import LLMError as LLMError
from ._exceptions import ToolDefinitionError as ToolDefinitionError
from ._llm import LLM as LLM
from ._llm import LLMReply as LLMReply
from ._llm import LLMToolCall as LLMToolCall
from ._llm import OpenAILLM as OpenAILLM
from ._loop import AgentEvent as AgentEvent
from ._loop import AgentResult as AgentResult
from ._loop import ToolCallRecord as ToolCallRecord
from ._loop import run_loop as run_loop
from ._scripted import ScriptedLLMServer as ScriptedLLMServer
from ._scripted import ScriptedRequest as ScriptedRequest
from ._scripted import call as call
from ._scripted import fail as fail
from ._scripted import reply as reply
from ._scripted import tool_calls as tool_calls
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
    "ScriptedLLMServer",
    "ScriptedRequest",
    "TextResponse",
    "Tool",
    "ToolCallRecord",
    "ToolContext",
    "ToolDefinitionError",
    "ToolResponse",
    "Toolkit",
    "call",
    "fail",
    "reply",
    "run_loop",
    "tool",
    "tool_calls",
]
