"""Toolkits other participants offer in the room, as toolkits an agent uses like its own.

Each entry of the room document's `toolkits` map becomes a `RemoteToolkit`: its
tools have the offered names, descriptions and schemas, the agent's toolkit
machinery validates the model's arguments against them before anything is sent,
and running one is a room call to the offerer (`RoomClient.call_tool`). A failure
of any kind (the tool's error, a timeout, the offerer gone) comes back as an
`ErrorResponse` the model can reason about, as a local tool's would.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from ._exceptions import ToolDefinitionError
from ._remote_wire import decode_result
from ._toolkit import Toolkit
from ._tools import ErrorResponse, Tool, ToolContext, ToolResponse

__all__ = ["RemoteTool", "RemoteToolkit", "room_toolkits"]

logger = logging.getLogger("meshroom.agents")

_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]+")
#: Seconds a remote tool may take (a person answering a form needs minutes).
REMOTE_TIMEOUT = 600.0


class RemoteTool(Tool):
    """One tool offered by another participant; `execute` calls it through the room."""

    def __init__(self, key: str, spec: Mapping[str, Any], *, name: str, offered_by: str) -> None:
        description = str(spec.get("description") or spec["name"])
        super().__init__(
            name=name,
            description=f"{description} (offered in the room by {offered_by})",
            input_schema=dict(spec["inputSchema"]),
        )
        self.key = key
        self.remote_name = str(spec["name"])

    async def execute(self, context: ToolContext, **arguments: Any) -> ToolResponse:
        from ..client._calls import RoomCallError

        try:
            result = await context.client.call_tool(
                self.key, self.remote_name, arguments, timeout=REMOTE_TIMEOUT
            )
        except RoomCallError as error:
            details = {"reason": error.reason}
            if error.details is not None:
                details["details"] = error.details
            return ErrorResponse(str(error), details=details)
        return decode_result(result)


class RemoteToolkit(Toolkit):
    """A toolkit offered in the room by another participant (see the module docstring).

    Tools whose schema is not strict (OpenAI's strict mode would refuse the request)
    are left out, with a warning.
    """

    def __init__(self, key: str, entry: Mapping[str, Any], *, prefix: str) -> None:
        offered_by = str(entry.get("offeredBy", key.split("/", 1)[0]))
        tools = []
        for spec in entry.get("tools", []):
            name = _tool_name(prefix, str(spec.get("name", "")))
            try:
                tools.append(RemoteTool(key, spec, name=name, offered_by=offered_by))
            except (ToolDefinitionError, KeyError, TypeError) as error:
                logger.warning("left out tool %s of %s: %s", spec.get("name"), key, error)
        name = str(entry.get("name", key))
        rules = [
            f"The {name} tools ({prefix}_*) run in another participant's process "
            f"({offered_by}); they may take a while, and may fail if that participant leaves."
        ]
        super().__init__(name, tools, rules, description=str(entry.get("description", "")))
        self.key = key
        self.offered_by = offered_by


def _tool_name(prefix: str, tool: str) -> str:
    return f"{prefix}_{tool}"[:64]


def room_toolkits(
    entries: Mapping[str, Mapping[str, Any]],
    participants: Mapping[str, Mapping[str, Any]],
    *,
    exclude: str,
    taken: set[str],
) -> list[RemoteToolkit]:
    """Toolkits of the room's `toolkits` map, except those `exclude` (our id) offers.

    Tool names are ``NAME_TOOL``; when several participants offer a toolkit of the
    same name, ``NAME_OFFERER_TOOL`` (the offerer's display name), so the model picks
    whose (whose page asks Ann, whose asks Bob). A name that would clash with one in
    `taken` (the agent's own tools) is left out.
    """
    mine = {key: entry for key, entry in entries.items() if entry.get("offeredBy") != exclude}
    counts: dict[str, int] = {}
    for entry in mine.values():
        counts[str(entry.get("name"))] = counts.get(str(entry.get("name")), 0) + 1
    kits = []
    for key, entry in sorted(mine.items()):
        name = str(entry.get("name"))
        prefix = _UNSAFE.sub("_", name)
        if counts[name] > 1:
            offerer = str(entry.get("offeredBy", ""))
            who = str(participants.get(offerer, {}).get("name") or offerer)
            prefix = f"{prefix}_{_UNSAFE.sub('_', who)}"
        kit = RemoteToolkit(key, entry, prefix=prefix)
        clashes = {tool.name for tool in kit} & taken
        if clashes:
            logger.warning("left out room toolkit %s: tool names %s taken", key, sorted(clashes))
            continue
        taken |= {tool.name for tool in kit}
        kits.append(kit)
    return kits
