"""`McpToolkit`: any MCP server's tools as a meshroom toolkit, for an agent or for the room.

The MCP ecosystem has servers for files, issue trackers, browsers, databases. A
`McpToolkit` connects to one through the official SDK's client (a command run
over stdio, or a streamable HTTP URL), lists its tools and gives them to a
meshroom `Agent` like any toolkit: the model's arguments are validated against
the tool's schema before anything is sent, and every failure (the tool's error,
the server gone) comes back as an error the model reads.

Offered to a room (`RoomClient.offer(toolkit)`, or `meshroom offer-mcp`), the
same toolkit's `run_remote` calls the MCP server for any participant, so every
agent there can use it. When the server says its tools changed, the toolkit
lists them again and calls `on_change` (the CLI offers the toolkit again).

Schemas are made strict where that keeps their meaning (`_strict`); a tool whose
schema has no strict form takes its arguments as one JSON string, checked
against the server's schema before the call.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any

import anyio
import anyio.lowlevel
import mcp_types as types
from anyio.abc import TaskGroup

from ..agents import ErrorResponse, Tool, ToolContext, Toolkit, ToolResponse
from ..agents._toolkit import validation_errors
from ._results import to_tool_response
from ._strict import json_argument_schema, server_arguments, strict_schema

__all__ = ["McpTool", "McpToolkit"]

logger = logging.getLogger("meshroom.mcp")

_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]+")
#: Seconds one call may take (a tool that asks a person needs minutes).
CALL_TIMEOUT = 600.0


class McpTool(Tool):
    """One tool of an MCP server; `execute` calls it there."""

    def __init__(self, toolkit: McpToolkit, spec: types.Tool, *, name: str) -> None:
        self.toolkit = toolkit
        self.remote_name = spec.name
        self.server_schema: dict[str, Any] = dict(spec.input_schema or {})
        strict = strict_schema(self.server_schema)
        #: True when the model sends the arguments as one JSON string (no strict form).
        self.json_arguments = strict is None
        description = spec.description or spec.title or spec.name
        if self.json_arguments:
            description += " (Pass the arguments as one JSON string.)"
        hints = spec.annotations
        super().__init__(
            name=name,
            title=spec.title or (hints.title if hints else None),
            description=description,
            input_schema=strict if strict is not None else json_argument_schema(self.server_schema),
            read_only=bool(hints and hints.read_only_hint),
        )

    async def execute(self, context: ToolContext, **arguments: Any) -> ToolResponse:
        if self.json_arguments:
            try:
                sent = json.loads(arguments["arguments"])
            except json.JSONDecodeError as error:
                return ErrorResponse(f"'arguments' is not valid JSON: {error}")
            if not isinstance(sent, dict):
                return ErrorResponse("'arguments' must be a JSON object")
            errors = validation_errors(self.server_schema, sent)
            if errors:
                return ErrorResponse(
                    f"arguments of {self.name} do not match its schema", details=errors
                )
        else:
            sent = server_arguments(arguments, self.server_schema)
        return await self.toolkit.call(self.remote_name, sent)


class McpToolkit(Toolkit):
    """The tools of an MCP server, as a toolkit (an async context manager: it connects).

    ```py
    async with McpToolkit("files", ["python", "-m", "files_server"]) as files:
        agent = Agent("Editor", toolkits=[documents_toolkit(), files], llm=llm)
    ```

    Args:
        name: The toolkit's name (in logs, progress, and the room when offered).
        server: What to connect to: a command (a list: the program and its
            arguments, run over stdio), a streamable HTTP URL (``http://…/mcp``), or
            anything `mcp.Client` takes (`StdioServerParameters`, a transport, an
            in-process `mcp` server).
        description: What the toolkit is for, shown to the room when offered
            (default: the server's own instructions or name).
        prefix: Put before every tool name (``"gh_"``), to keep names apart.
        env: Environment of a command (default: the MCP SDK's safe subset).
        cwd: Working directory of a command.
        timeout: Seconds one call may take.
        on_change: Called after the server's tools changed and were listed again.
    """

    def __init__(
        self,
        name: str,
        server: Sequence[str] | str | Any,
        *,
        description: str = "",
        prefix: str = "",
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        timeout: float = CALL_TIMEOUT,
        on_change: Callable[[McpToolkit], Any] | None = None,
    ) -> None:
        super().__init__(name, [], description=description)
        self.server = server
        self.prefix = prefix
        self.env = env
        self.cwd = cwd
        self.timeout = timeout
        self.on_change = on_change
        self.server_info: types.Implementation | None = None
        self._client: Any = None
        self._stack: AsyncExitStack | None = None
        self._group: TaskGroup | None = None
        self._refreshing = anyio.Lock()

    # -- connection ----------------------------------------------------------------------

    def _target(self) -> Any:
        if isinstance(self.server, (list, tuple)):
            from mcp import StdioServerParameters

            if not self.server:
                raise ValueError("an MCP server command needs a program")
            return StdioServerParameters(
                command=self.server[0], args=list(self.server[1:]), env=self.env, cwd=self.cwd
            )
        return self.server

    async def __aenter__(self) -> McpToolkit:
        """Connect, list the tools, and follow the server's tool-list changes.

        Raises:
            ConnectionError: the MCP server could not be started or reached, or
                refused the handshake (the message says which server and why).
        """
        from mcp import Client

        stack = AsyncExitStack()
        try:
            client = Client(
                self._target(),
                message_handler=self._on_message,
                read_timeout_seconds=self.timeout,
            )
            self._client = await stack.enter_async_context(client)
            self.server_info = client.server_info
            if not self.description:
                info = client.server_info
                self.description = client.instructions or (info.title or info.name if info else "")
            await self.refresh()
            self._group = await stack.enter_async_context(anyio.create_task_group())
            if _listens(client):
                await self._group.start(self._listen)
        except BaseException as error:
            await stack.aclose()
            self._client = None
            if isinstance(error, Exception) and not isinstance(error, ConnectionError):
                raise ConnectionError(f"MCP server {self.label}: {_reason(error)}") from error
            raise
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        if self._group is not None:
            self._group.cancel_scope.cancel()
            self._group = None
        self._client = None
        if stack is not None:
            await stack.aclose()

    @property
    def label(self) -> str:
        """The server as a person would name it: its command or URL."""
        if isinstance(self.server, (list, tuple)):
            return " ".join(self.server)
        return str(self.server)

    # -- tools ---------------------------------------------------------------------------

    async def refresh(self) -> None:
        """List the server's tools again (every page) and make them this toolkit's."""
        if self._client is None:
            raise ConnectionError(f"MCP server {self.label} is not connected")
        async with self._refreshing:
            specs: list[types.Tool] = []
            cursor: str | None = None
            while True:
                page = await self._client.list_tools(cursor=cursor, cache_mode="refresh")
                specs += page.tools
                cursor = page.next_cursor
                if not cursor:
                    break
            tools = []
            for spec in specs:
                name = (self.prefix + _UNSAFE.sub("_", spec.name))[:64]
                if any(item.name == name for item in tools):
                    logger.warning("%s: left out tool %r (its name is taken)", self.name, spec.name)
                    continue
                tools.append(McpTool(self, spec, name=name))
            self.replace_tools(tools)

    async def call(self, tool: str, arguments: dict[str, Any]) -> ToolResponse:
        """Call `tool` of the MCP server (its own name) with `arguments`; never raises."""
        client = self._client
        if client is None:
            return ErrorResponse(f"MCP server {self.label} is not connected")
        try:
            result = await client.call_tool(tool, arguments, read_timeout_seconds=self.timeout)
        except Exception as error:  # the model reads why, and the run goes on
            logger.debug("MCP call %s failed", tool, exc_info=True)
            return ErrorResponse(
                f"MCP server {self.label} failed {tool}: {_reason(error)}",
                details={"type": type(error).__name__},
            )
        return to_tool_response(result)

    async def _changed(self) -> None:
        try:
            await self.refresh()
        except Exception:
            logger.warning("%s: cannot list the MCP server's tools again", self.name, exc_info=True)
            return
        if self.on_change is not None:
            outcome = self.on_change(self)
            if hasattr(outcome, "__await__"):
                await outcome

    async def _on_message(self, message: Any) -> None:
        """Handshake-era servers announce tool changes as a notification on the session."""
        if isinstance(message, types.ToolListChangedNotification) and self._group is not None:
            self._group.start_soon(self._changed)
        await anyio.lowlevel.checkpoint()

    async def _listen(self, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        """2026-era servers announce them on a ``subscriptions/listen`` stream."""
        assert self._client is not None
        started = False
        try:
            async with self._client.listen(tools_list_changed=True) as events:
                task_status.started()
                started = True
                async for _event in events:
                    await self._changed()
        except Exception:
            logger.info("%s: the MCP server stopped telling tool changes", self.name, exc_info=True)
            if not started:
                task_status.started()


def _listens(client: Any) -> bool:
    """Whether the connection is of the 2026 era, whose changes come on listen streams."""
    from mcp_types.version import MODERN_PROTOCOL_VERSIONS

    capabilities = client.server_capabilities
    changes = bool(capabilities.tools and capabilities.tools.list_changed)
    return client.protocol_version in MODERN_PROTOCOL_VERSIONS and changes


def _reason(error: BaseException) -> str:
    """One line saying why, from an MCP or transport error (nested groups included)."""
    nested = getattr(error, "exceptions", None)  # an exception group
    if nested:
        return _reason(nested[0])
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
