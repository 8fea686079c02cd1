"""The room toolkit: who is here, what was said, and talking back.

Participants are addressed by id or by display name (models remember names);
a name that matches several participants is refused with the candidates, so
a message never reaches the wrong person.
"""

from __future__ import annotations

from typing import Any

from .._toolkit import Toolkit
from .._tools import ErrorResponse, ToolContext, tool

__all__ = ["room_toolkit"]

_MAX_MESSAGES = 100


def _client(context: ToolContext) -> Any:
    if context.client is None:
        raise RuntimeError("the agent is not connected to a room")
    return context.client


def resolve_participant(context: ToolContext, who: str) -> str | ErrorResponse:
    """A participant id from an id or a display name (case-insensitive)."""
    participants: dict[str, dict[str, Any]] = _client(context).participants
    if who in participants:
        return who
    matches = [
        pid for pid, p in participants.items() if str(p.get("name", "")).lower() == who.lower()
    ]
    if len(matches) == 1:
        return matches[0]
    known = [{"id": pid, "name": p.get("name")} for pid, p in participants.items()]
    reason = "several participants are named" if matches else "no participant is"
    return ErrorResponse(f"{reason} {who!r}", details={"participants": known})


@tool(read_only=True)
async def list_participants(context: ToolContext) -> list[dict[str, Any]]:
    """List who is in the room: id, name, kind ("person" or "agent"), and which one is you."""
    participants = _client(context).participants
    return [
        {
            "id": pid,
            "name": entry.get("name"),
            "kind": entry.get("kind"),
            "you": pid == context.caller,
        }
        for pid, entry in participants.items()
    ]


@tool
async def send_message(
    context: ToolContext, text: str, to: str | None = None
) -> str | ErrorResponse:
    """Send a chat message to the room, or to one participant.

    Args:
        text: The message.
        to: Participant id or name; null sends it to everyone.
    """
    if not text.strip():
        return ErrorResponse("the message is empty")
    target = None
    if to is not None:
        target = resolve_participant(context, to)
        if isinstance(target, ErrorResponse):
            return target
    await _client(context).send_message(text, to=target)
    return f"sent to {target or 'everyone'}"


@tool(read_only=True)
async def read_messages(context: ToolContext, limit: int = 20) -> list[dict[str, Any]]:
    """Read the most recent room messages, oldest first (your own progress notes are left out).

    Args:
        limit: How many messages, at most 100.
    """
    client = _client(context)
    names = {pid: entry.get("name") for pid, entry in client.participants.items()}
    recent = []
    for message in client.messages:
        data = message.get("json")
        if isinstance(data, dict) and data.get("type") == "agent.progress":
            continue
        recent.append(
            {
                "from": message.get("from"),
                "from_name": names.get(message.get("from")),
                "to": message.get("to"),
                "text": message.get("text") if "text" in message else None,
                "json": data,
                "time": message.get("time"),
            }
        )
    return recent[-max(1, min(limit, _MAX_MESSAGES)) :]


def room_toolkit() -> Toolkit:
    """Participants and messages of the agent's room."""
    return Toolkit(
        "room",
        [list_participants, send_message, read_messages],
        rules=["Address people by name; keep room messages short."],
    )
