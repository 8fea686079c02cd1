"""Errors raised by meshroom agents.

The tree (under `meshroom.MeshroomError`, so one `except` catches every meshroom failure)::

    MeshroomError
    └── AgentError             an agent cannot run
        ├── LLMError           the model endpoint failed, after retries (carries the HTTP status)
        └── ToolDefinitionError  a tool cannot be built (untyped parameter, bad name, duplicate)

A tool that fails while the agent runs never raises out of the loop: the toolkit
turns the failure into an `ErrorResponse` the model reads and can correct.
"""

from __future__ import annotations

from .._exceptions import MeshroomError

__all__ = ["AgentError", "LLMError", "ToolDefinitionError"]


class AgentError(MeshroomError):
    """Base class of the errors an agent raises to its caller."""


class LLMError(AgentError):
    """The model endpoint refused or failed; `status` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None, attempts: int = 1) -> None:
        super().__init__(message)
        self.status = status
        self.attempts = attempts


class ToolDefinitionError(AgentError, TypeError):
    """A tool or toolkit is malformed: raised when it is defined, never while the agent runs."""

    def __init__(self, message: str, *, tool: str | None = None) -> None:
        super().__init__(message)
        self.tool = tool
